"""Dev-only local Step Functions: moto's server running real ASL, with moto 5.2.5 gaps patched.

Never deployed: the Lambda package only holds app.py and chalicelib/. One module per patched
behaviour (sync_executions, history_paging, stop_execution, task_tokens, executions, redrive);
patches.py applies them all; local_engine.py holds the LocalEngine that runs the server.
"""
from local.engine.history_paging import HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX
from local.engine.local_engine import ACCOUNT_ID, APPROVAL_QUEUE_NAME, DEMO_ROLE_ARN, REGION, LocalEngine

__all__ = [
    "ACCOUNT_ID", "APPROVAL_QUEUE_NAME", "DEMO_ROLE_ARN", "HISTORY_PAGE_DEFAULT", "HISTORY_PAGE_MAX", "REGION", "LocalEngine",
]
