"""HTTP clients of the remote services vodflow drives: VideoSDK, Huawei Cloud MPC and VideoDB.

Each module separates pure request builders from the client that sends them through `http.ServiceClient`,
which owns timeouts, error mapping and the retry policy of `vodflow.net.retry`.
"""


class MissingCredentials(ValueError):
    """Neither a block name nor the environment gives a service's credentials (or they are incomplete)."""
