"""Prefect Blocks of vodflow: typed configuration that hands out clients.

Register them with `prefect block register -m vodflow.blocks`.
"""

from vodflow.blocks.api import VodflowApi  # noqa: F401
from vodflow.blocks.huawei_mpc import HuaweiMpcCredentials  # noqa: F401
from vodflow.blocks.keys import VodflowKeys  # noqa: F401
from vodflow.blocks.storage import VodflowStorage  # noqa: F401
from vodflow.blocks.videodb import VideoDBCredentials  # noqa: F401
from vodflow.blocks.videosdk import VideoSDKCredentials  # noqa: F401
from vodflow.blocks.webhook import VodflowWebhookSettings  # noqa: F401
