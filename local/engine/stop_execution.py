"""StopExecution: the abort recorded as AWS records it, with the caller's error and cause."""
import datetime
import time

from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionAbortedEventDetails,
    ExecutionStatus,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from local.engine.parser_backend import executes


def patch_stop_execution() -> None:
    # StateMachine.stop_execution (moto/stepfunctions/models.py) passes error="" and cause="",
    # and the response reads execution.stop_date before the worker thread has set it (null).
    # Worse, a task waiting on a token never notices the stop (the callback wait in
    # state_task_service_callback.py only wakes on an answer), so the execution stays RUNNING;
    # waking it instead makes moto write TaskTimedOut and ExecutionFailed over the abort.
    # So the abort is recorded here, as AWS does, and the history is closed at ExecutionAborted.
    # AWS keeps the caller's error/cause in DescribeExecution too (measured: floci-io/floci#2734)
    # and omits both keys when the stop gave none (floci-io/floci#2965).
    original_response = StepFunctionResponse.stop_execution
    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def stop_execution(backend, execution_arn, error=None, cause=None):
        execution = backend.describe_execution(execution_arn)
        if execution.exec_status != ExecutionStatus.RUNNING:
            return execution
        env = _wait_for_environment(execution)
        stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
        env.set_stop(stop_date=stop_date, cause=cause, error=error)
        if not isinstance(env.program_state(), ProgramStopped):
            return execution  # it ended on its own meanwhile
        execution.exec_status = ExecutionStatus.ABORTED
        execution.stop_date = stop_date
        execution.error = error
        execution.cause = cause
        publish = env.event_manager.add_event
        # Frames share this EventManager, so this silences the abandoned worker everywhere.
        env.event_manager.add_event = _drop_event
        publish(
            context=EventHistoryContext.of_program_start(),
            event_type=HistoryEventType.ExecutionAborted,
            event_details=EventDetails(
                executionAbortedEventDetails=ExecutionAbortedEventDetails(error=error, cause=cause)
            ),
            timestamp=stop_date,
        )
        # CallbackPoolManager keeps its endpoints private; waking them ends the worker thread.
        for endpoint in list(env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()
        return execution

    def handle(self):
        if not executes(self):
            return original_response(self)
        execution = self.stepfunction_backend.stop_execution(
            self._get_param("executionArn"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return ActionResult({"stopDate": execution.stop_date})

    def reflect_execution_status(self):
        # StopExecution already recorded the abort; the worker ending later must not overwrite it.
        if self.execution.exec_status != ExecutionStatus.ABORTED:
            original_reflect(self)

    StepFunctionsParserBackend.stop_execution = stop_execution
    StepFunctionResponse.stop_execution = handle
    BaseExecutionWorkerCommunication._reflect_execution_status = reflect_execution_status


def _drop_event(*args, **kwargs) -> int:
    return 0


def _wait_for_environment(execution, timeout: float = 2.0):
    # The worker thread builds its Environment just after StartExecution returns.
    deadline = time.monotonic() + timeout
    while execution.exec_worker.env is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if execution.exec_worker.env is None:
        raise RuntimeError(f"execution {execution.execution_arn} never started")
    return execution.exec_worker.env
