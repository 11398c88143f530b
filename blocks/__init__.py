"""Prefect Blocks of vodflow: typed configuration that hands out clients.

Register them with `prefect block register -m blocks`.
"""

from blocks.api import VodflowApi  # noqa: F401
from blocks.huawei_mpc import HuaweiMpcCredentials  # noqa: F401
from blocks.storage import VodflowStorage  # noqa: F401
from blocks.videodb import VideoDBCredentials  # noqa: F401
from blocks.videosdk import VideoSDKCredentials  # noqa: F401
from blocks.webhook import VodflowWebhookSettings  # noqa: F401
