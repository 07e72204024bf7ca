"""Python client for sfn-gateway: `Gateway(url).start("hello", {"name": "Ada"}, wait=30)`."""
__version__ = "0.1.0"

from sfn_gateway_client.errors import *  # noqa: E402,F401,F403  (the exception classes are the public API)
from sfn_gateway_client.errors import ERROR_CLASSES, ApiError, SfnGatewayError  # noqa: E402,F401
from sfn_gateway_client.gateway import ENDED_STATUSES, Gateway, is_ended, region_from_url  # noqa: E402,F401
