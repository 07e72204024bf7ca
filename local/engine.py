"""Dev-only local Step Functions: moto's server running real ASL, with moto 5.2.5 gaps patched.

Never deployed: the Lambda package only holds app.py and chalicelib/.
"""

import base64
import binascii
import datetime
import json
import logging
import os
import time
import uuid
from pathlib import Path

import boto3
import requests
from botocore.config import Config
from moto.core.config import default_user_config
from moto.core.exceptions import AWSError, InvalidToken
from moto.core.responses import ActionResult, EmptyResult
from moto.server import ThreadedMotoServer
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.api import (
    ExecutionAbortedEventDetails,
    ExecutionStatus,
    HistoryEventType,
    StateMachineType,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
    SyncExecution,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
DEMO_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sfn-gateway-local"
APPROVAL_QUEUE_NAME = "sfn-gateway-approvals"
# AWS GetExecutionHistory limits: maxResults 0 means the default page of 100; at most 1000.
HISTORY_PAGE_DEFAULT = 100
HISTORY_PAGE_MAX = 1000
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# An ASL file carries no type, so the file name gives it: statemachines/<name>-express.asl.json
# is EXPRESS, any other <name>.asl.json STANDARD (docs/local-stack.md, "Your own workflow").
EXPRESS_SUFFIX = "-express"


def workflow_type(name: str) -> str:
    """The type the local stack gives the workflow in statemachines/<name>.asl.json."""
    return "EXPRESS" if name.endswith(EXPRESS_SUFFIX) else "STANDARD"


class LocalEngine:
    """A moto server on localhost that really executes state machines."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = REGION):
        self.host = host
        self.port = port
        # moto keeps one backend per region (taken from each request's signature): the
        # demo workflows, their SQS queue and every client must use this one.
        self.region = region
        self.url = None
        self._server = None
        self._previous_sfn_config = None
        self._previous_moto_port = None
        self.credentials = dict(_CREDENTIALS)

    @classmethod
    def at(cls, url: str, credentials: dict) -> "LocalEngine":
        """Deploy-only handle on a Step Functions endpoint run by someone else (e.g. LocalStack)."""
        engine = cls()
        engine.url = url
        engine.credentials = dict(credentials)
        return engine

    def start(self) -> "LocalEngine":
        """Start the server, patch moto's gaps and switch state-machine execution on."""
        _apply_moto_patches()
        # werkzeug logs every request at INFO; moto's ASL evaluator logs every expected
        # state failure (a Fail state, a missing optional path) at ERROR: both drown test output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(
            logging.CRITICAL
        )
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # Task states call AWS services (SQS for approval) through a boto3 client
        # pointed at localhost:$MOTO_PORT (moto/stepfunctions/parser/asl/utils/boto_client.py).
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(port)
        self._previous_sfn_config = dict(default_user_config.get("stepfunctions", {}))
        response = requests.post(
            f"{self.url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=5,
        )
        response.raise_for_status()
        return self

    def stop(self) -> None:
        """Stop the server; executions still waiting (daemon threads) are abandoned."""
        if self._server is None:
            return
        # ThreadedMotoServer.stop() only ends serve_forever(); without server_close() the
        # listening socket stays open and later connections hang instead of being refused.
        self._server.stop()
        self._server._server.server_close()
        self._server = None
        # Both are process-wide: give them back to whoever set them before (another engine,
        # in-process mock_aws users).
        default_user_config["stepfunctions"] = self._previous_sfn_config
        if self._previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_moto_port

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def client(self):
        """Return a boto3 Step Functions client for this engine."""
        # StartSyncExecution is modelled with host prefix "sync-": it must be off locally.
        return boto3.client(
            "stepfunctions",
            endpoint_url=self.url,
            region_name=self.region,
            config=Config(inject_host_prefix=False),
            **self.credentials,
        )

    def deploy_demo_state_machines(self, directory="statemachines") -> dict:
        """Create or update every <name>.asl.json in directory; return {name: {"arn", "type"}}."""
        boto3.client("sqs", endpoint_url=self.url, region_name=self.region, **self.credentials).create_queue(
            QueueName=APPROVAL_QUEUE_NAME
        )
        sfn = self.client()
        deployed = {}
        for path in sorted(Path(directory).glob("*.asl.json")):
            name = path.name[: -len(".asl.json")]
            sm_type = workflow_type(name)
            definition = path.read_text()
            arn = f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{name}"
            try:
                current = sfn.describe_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                sfn.create_state_machine(
                    name=name, definition=definition, roleArn=DEMO_ROLE_ARN, type=sm_type
                )
            else:
                if current["definition"] != definition:
                    sfn.update_state_machine(stateMachineArn=arn, definition=definition)
            deployed[name] = {"arn": arn, "type": sm_type}
        return deployed


class _StateMachineTypeNotSupported(AWSError):
    # moto's parser/api.py class of this name sets `code`, not TYPE: clients get no error code.
    TYPE = "StateMachineTypeNotSupported"


class _UnknownOperation(AWSError):
    TYPE = "UnknownOperationException"


class _TaskTimedOut(AWSError):
    # parser/api.py's TaskTimedOut sets `code`, not TYPE, like StateMachineTypeNotSupported.
    TYPE = "TaskTimedOut"


_patched = False


def _apply_moto_patches() -> None:
    global _patched
    if _patched:
        return
    _patch_start_sync_execution()
    _patch_execution_history_pagination()
    _patch_stop_execution()
    _patch_send_task_failure_cause()
    _patch_start_execution_name()
    _patch_heartbeat_race()
    _patch_heartbeat_without_heartbeat_seconds()
    _patch_redrive_not_implemented()
    _patch_closed_task_tokens()
    _patch_describe_execution_input_details()
    _patch_express_execution_arns()
    _patched = True


def _patch_heartbeat_without_heartbeat_seconds() -> None:
    # moto's CallbackEndpoint.notify_heartbeat returns False (-> InvalidToken) when the task
    # has no HeartbeatSeconds; AWS accepts a heartbeat for any task still waiting on its token.
    original = CallbackEndpoint.notify_heartbeat

    def notify_heartbeat(self):
        if self._heartbeat_endpoint is None:
            return self.get_outcome() is None
        return original(self)

    CallbackEndpoint.notify_heartbeat = notify_heartbeat


def _patch_redrive_not_implemented() -> None:
    # moto 5.2.5 has no RedriveExecution: its dispatcher raises NotImplementedError, which
    # reaches clients as an HTML 500 that botocore retries. Answer with a clear error code
    # instead, which the gateway maps to 501.
    if hasattr(StepFunctionResponse, "redrive_execution"):
        return

    def redrive_execution(self):
        raise _UnknownOperation("The local engine (moto 5.2.5) does not implement RedriveExecution.")

    StepFunctionResponse.redrive_execution = redrive_execution


def _executes(response: StepFunctionResponse) -> bool:
    # Response patches must leave plain mock_aws (execute_state_machine off) untouched:
    # the default backend's methods have other signatures.
    return isinstance(response.stepfunction_backend, StepFunctionsParserBackend)


def _patch_start_sync_execution() -> None:
    # moto 5.2.5 ships SyncExecution (parser/backend/execution.py) but neither
    # StepFunctionResponse nor StepFunctionsParserBackend has start_sync_execution.
    def start_sync_execution(backend, state_machine_arn, name, execution_input):
        state_machine = backend.describe_state_machine(state_machine_arn)
        if state_machine.type != StateMachineType.EXPRESS:
            raise _StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine"
            )
        try:
            json.loads(execution_input)
        except ValueError as err:
            message = f"Invalid State Machine Execution Input: '{err}'"
            raise InvalidExecutionInput(message) from err
        if name:
            backend._validate_name(name)
        name = name or str(uuid.uuid4())
        # Express executions are not stored, as in AWS (no Describe/List for them).
        execution = SyncExecution(
            name=name,
            sm_type=StateMachineType.EXPRESS,
            role_arn=state_machine.roleArn,
            exec_arn=(
                f"arn:aws:states:{backend.region_name}:{backend.account_id}:express:"
                f"{state_machine.name}:{name}:{uuid.uuid4()}"
            ),
            account_id=backend.account_id,
            region_name=backend.region_name,
            state_machine=state_machine,
            start_date=datetime.datetime.now(tz=datetime.timezone.utc),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=execution_input,
        )
        execution.start()
        return execution

    def handle(self):
        if not _executes(self):
            raise AWSError("StartSyncExecution needs execute_state_machine", "UnsupportedOperation")
        execution = self.stepfunction_backend.start_sync_execution(
            self._get_param("stateMachineArn"),
            self._get_param("name"),
            self._get_param("input", if_none="{}"),
        )
        output = execution.to_start_sync_execution_output()
        output["status"] = output["status"].value
        output.pop("traceHeader", None)
        return ActionResult(output)

    StepFunctionsParserBackend.start_sync_execution = start_sync_execution
    StepFunctionResponse.start_sync_execution = handle


def _patch_execution_history_pagination() -> None:
    # StepFunctionResponse.get_execution_history ignores maxResults, reverseOrder and
    # nextToken: it returns every event, oldest first.
    original = StepFunctionResponse.get_execution_history

    def get_execution_history(self):
        events = original(self).result["events"]
        execution_arn = self._get_param("executionArn")
        reverse = bool(self._get_param("reverseOrder", False))
        max_results = self._get_int_param("maxResults") or HISTORY_PAGE_DEFAULT
        if max_results > HISTORY_PAGE_MAX:
            raise AWSError(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed "
                "to satisfy constraint: Member must have value less than or equal to "
                f"{HISTORY_PAGE_MAX}",
                "ValidationException",
            )
        if reverse:
            events = events[::-1]
        token = self._get_param("nextToken")
        if token:
            last_id = _decode_history_token(token, execution_arn, reverse)
            events = [e for e in events if (e["id"] < last_id if reverse else e["id"] > last_id)]
        page = events[:max_results]
        response = {"events": page}
        if len(events) > max_results:
            response["nextToken"] = _encode_history_token(execution_arn, reverse, page[-1]["id"])
        return ActionResult(response)

    StepFunctionResponse.get_execution_history = get_execution_history


def _encode_history_token(execution_arn: str, reverse: bool, last_id: int) -> str:
    payload = json.dumps(
        {"executionArn": execution_arn, "reverseOrder": reverse, "lastId": last_id}
    )
    return base64.urlsafe_b64encode(payload.encode()).decode()


def _decode_history_token(token: str, execution_arn: str, reverse: bool) -> int:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        valid = payload["executionArn"] == execution_arn and payload["reverseOrder"] == reverse
        last_id = int(payload["lastId"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise InvalidToken(f"'{token}'")
    return last_id


def _patch_stop_execution() -> None:
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
        if not _executes(self):
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


def _patch_send_task_failure_cause() -> None:
    # StepFunctionResponse.send_task_failure reads only taskToken and error, so the
    # backend (which accepts cause) never gets it.
    original = StepFunctionResponse.send_task_failure

    def send_task_failure(self):
        if not _executes(self):
            return original(self)
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def _patch_start_execution_name() -> None:
    # StepFunctionsParserBackend.start_execution uses the name as given, so no name
    # gives an execution called "None" (and a second one clashes); it also skips name checks.
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self, state_machine_arn, name=None, execution_input=None, trace_header=None
    ):
        if name:
            self._validate_name(name)
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    StepFunctionsParserBackend.start_execution = start_execution


def _patch_heartbeat_race() -> None:
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


def _patch_closed_task_tokens() -> None:
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


def _patch_describe_execution_input_details() -> None:
    # AWS's DescribeExecution always carries inputDetails {"included": true} (outputDetails
    # too once there is output); moto's response builds its dict without inputDetails.
    original = StepFunctionResponse.describe_execution

    def describe_execution(self):
        result = original(self)
        if _executes(self):
            result.result["inputDetails"] = {"included": True}
        return result

    StepFunctionResponse.describe_execution = describe_execution


def _patch_express_execution_arns() -> None:
    # AWS names every execution of an EXPRESS machine
    # arn:<partition>:states:<region>:<account>:express:<machine>:<name>:<id>, also when started
    # by StartExecution; moto's start_execution always writes :execution:<machine>:<name>.
    # Execution.start runs before the worker reads the ARN ($$.Execution.Id), so rename there.
    original = Execution.start

    def start(self):
        if self.state_machine.type == StateMachineType.EXPRESS and ":execution:" in self.exec_arn:
            prefix, rest = self.exec_arn.split(":execution:", 1)
            self.exec_arn = self.execution_arn = f"{prefix}:express:{rest}:{uuid.uuid4()}"
        original(self)

    Execution.start = start
