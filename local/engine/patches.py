"""Every moto 5.2.5 gap the local engine patches, applied once per process."""
from local.engine.executions import (
    patch_describe_execution_input_details,
    patch_express_execution_arns,
    patch_start_execution_name,
)
from local.engine.history_paging import patch_execution_history_pagination
from local.engine.redrive import patch_redrive_not_implemented
from local.engine.stop_execution import patch_stop_execution
from local.engine.sync_executions import patch_start_sync_execution
from local.engine.task_tokens import (
    patch_closed_task_tokens,
    patch_heartbeat_race,
    patch_heartbeat_without_heartbeat_seconds,
    patch_send_task_failure_cause,
)

_patched = False


def apply_moto_patches() -> None:
    global _patched
    if _patched:
        return
    patch_start_sync_execution()
    patch_execution_history_pagination()
    patch_stop_execution()
    patch_send_task_failure_cause()
    patch_start_execution_name()
    patch_heartbeat_race()
    patch_heartbeat_without_heartbeat_seconds()
    patch_redrive_not_implemented()
    patch_closed_task_tokens()
    patch_describe_execution_input_details()
    patch_express_execution_arns()
    _patched = True
