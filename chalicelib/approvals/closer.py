"""Close the approvals of an execution that ended (EventBridge "Step Functions Execution Status Change")."""
import json
import logging
import time

from chalicelib.approvals.store import now_text
from chalicelib.webhooks.settings import WEBHOOK_STATUSES as ENDED_STATUSES

LOG = logging.getLogger("sfn_gateway.approvals")
LOG.setLevel(logging.INFO)


def close_ended_execution(event: dict, store) -> int:
    """Close every still-pending approval of the event's execution; how many were closed."""
    detail = event.get("detail") or {}
    execution_arn = detail.get("executionArn")
    if not isinstance(execution_arn, str) or detail.get("status") not in ENDED_STATUSES:
        return 0
    ended_ms = detail.get("stopDate") if isinstance(detail.get("stopDate"), int) else int(time.time() * 1000)
    closed = 0
    for approval_id in store.end_execution(execution_arn, ended_ms):
        # Conditional: an approval answered before the end keeps its answer.
        closed += store.close(approval_id, now_text())
    if closed:
        LOG.info(json.dumps({"event": "approvals-closed", "executionArn": execution_arn,
                             "executionStatus": detail.get("status"), "closed": closed}))
    return closed
