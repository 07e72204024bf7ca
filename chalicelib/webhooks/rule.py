"""The EventBridge rule of the webhooks function: read when app.py is imported, so it stays light.

Delivery (chalicelib/webhooks/delivery.py) needs http.client and ssl, about 25 ms of imports that the
API function's cold start should not pay; app.py imports it only inside the webhooks handler.
"""
from chalicelib.config import config_from_environ

EVENT_SOURCE = "aws.states"
EVENT_DETAIL_TYPE = "Step Functions Execution Status Change"


def event_pattern(environ) -> dict | None:
    """The EventBridge pattern for the stage's subscribed machines and statuses; None without WEBHOOKS."""
    if not environ.get("WEBHOOKS"):
        return None
    subscriptions = config_from_environ(environ).webhooks
    if not subscriptions:
        return None
    return {
        "source": [EVENT_SOURCE],
        "detail-type": [EVENT_DETAIL_TYPE],
        "detail": {
            "stateMachineArn": sorted({arn for s in subscriptions for arn in s.state_machine_arns}),
            "status": sorted({status for s in subscriptions for status in s.statuses}),
        },
    }
