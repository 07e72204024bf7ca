"""Task tokens: failure causes, heartbeats and closed tasks answered as AWS answers them."""
from moto.core.exceptions import AWSError
from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from local.engine.parser_backend import executes


class _TaskTimedOut(AWSError):
    # parser/api.py's TaskTimedOut sets `code`, not TYPE, like StateMachineTypeNotSupported.
    TYPE = "TaskTimedOut"


def patch_send_task_failure_cause() -> None:
    # StepFunctionResponse.send_task_failure reads only taskToken and error, so the
    # backend (which accepts cause) never gets it.
    original = StepFunctionResponse.send_task_failure

    def send_task_failure(self):
        if not executes(self):
            return original(self)
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def patch_heartbeat_race() -> None:
    # With HeartbeatSeconds, the task only listens to its HeartbeatEndpoint, created after the
    # SQS message is sent (state_task_service_callback.py _eval_integration_pattern). A token
    # answered before that (it is already in the TaskScheduled event) notifies no heartbeat
    # endpoint, so the task sleeps HeartbeatSeconds and fails States.HeartbeatTimeout.
    original = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self, heartbeat_seconds):
        heartbeat_endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            heartbeat_endpoint.notify()
        return heartbeat_endpoint

    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint


def patch_heartbeat_without_heartbeat_seconds() -> None:
    # moto's CallbackEndpoint.notify_heartbeat returns False (-> InvalidToken) when the task
    # has no HeartbeatSeconds; AWS accepts a heartbeat for any task still waiting on its token.
    original = CallbackEndpoint.notify_heartbeat

    def notify_heartbeat(self):
        if self._heartbeat_endpoint is None:
            return self.get_outcome() is None
        return original(self)

    CallbackEndpoint.notify_heartbeat = notify_heartbeat


def patch_closed_task_tokens() -> None:
    # AWS answers SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat on the token of a task
    # that has closed (answered, stopped, timed out) with TaskTimedOut ("the task token has
    # either expired or the task associated with the token has already been closed").
    # moto only looks at RUNNING executions for success and heartbeat (-> InvalidToken) and
    # accepts a second failure (200), since an answered endpoint stays in the callback pool.
    for name in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
        setattr(StepFunctionsParserBackend, name, _refusing_closed_tokens(
            getattr(StepFunctionsParserBackend, name)))


def _refusing_closed_tokens(original):
    def answer(self, task_token, *args, **kwargs):
        if _task_closed(self, task_token):
            raise _TaskTimedOut(
                "Task Timed Out: the task token has either expired or the task associated "
                "with the token has already been closed."
            )
        return original(self, task_token, *args, **kwargs)

    return answer


def _task_closed(backend, task_token) -> bool:
    for execution in backend._get_executions():
        env = execution.exec_worker.env if execution.exec_worker else None
        endpoint = env.callback_pool_manager.get(task_token) if env else None
        if endpoint is not None:
            return (
                execution.exec_status != ExecutionStatus.RUNNING
                or endpoint.get_outcome() is not None
                or endpoint.consumer_error is not None
            )
    return False
