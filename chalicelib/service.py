"""StepFunctionsGateway: each public method is one allow-listed Step Functions operation."""
import time
from urllib.parse import quote, unquote

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import (
    ExecutionAlreadyExists,
    StateMachineTypeNotSupported,
    TaskRoutesDisabled,
    translate_backend_error,
)
from chalicelib.registry import StateMachine, StateMachineRegistry
from chalicelib.serialization import to_json_ready
from chalicelib.validation import serialize_payload

# ?wait= polling: DescribeExecution refills at 15 calls/s per account, so start
# fast for short workflows and back off to about 3 calls/s per waiting request (the
# 300 ms cap keeps the median delivery delay under 250 ms; see bench/wait_delay.py).
POLL_FIRST_DELAY = 0.1
POLL_BACKOFF = 1.5
POLL_MAX_DELAY = 0.3
_UNFINISHED = ("RUNNING", "PENDING_REDRIVE")


def execution_location(execution_arn: str) -> str:
    """The gateway path of an execution, for the Location header."""
    return "/executions/" + quote(execution_arn, safe="")


def _present(**params) -> dict:
    # boto3 rejects None for optional parameters: leave out the ones the caller did not give.
    return {key: value for key, value in params.items() if value is not None}


def _require_standard(machine: StateMachine, operation: str) -> None:
    # Step Functions keeps no execution records for Express workflows.
    if machine.is_express:
        raise StateMachineTypeNotSupported(
            f"{operation} is only available for STANDARD state machines; {machine.name!r} is EXPRESS."
        )


class StepFunctionsGateway:
    """Calls Step Functions for allow-listed state machines only."""

    def __init__(self, client, registry: StateMachineRegistry, sync_client=None, task_routes=True,
                 clock=time.monotonic, sleep=time.sleep):
        self._client = client
        self._registry = registry
        # A callable, so the long-timeout client is only built for synchronous runs.
        self._sync_client = sync_client or (lambda: client)
        self._task_routes = task_routes
        self._clock = clock
        self._sleep = sleep

    def _call(self, operation: str, client=None, **params) -> dict:
        try:
            return getattr(client or self._client, operation)(**params)
        except (ClientError, BotoCoreError) as err:
            raise translate_backend_error(err) from err

    def _payload(self, machine: StateMachine, execution_input, caller: dict | None) -> str:
        if machine.pass_caller_context:
            execution_input = {"input": execution_input, "caller": caller or {}}
        return serialize_payload(execution_input, "input")

    def _execution(self, raw_arn: str) -> tuple[str, StateMachine]:
        # Path parameters arrive URL-encoded (%3A) or raw; names cannot contain
        # "%", so decoding is safe either way.
        execution_arn = unquote(raw_arn)
        return execution_arn, self._registry.for_execution(execution_arn)

    def list_state_machines(self) -> dict:
        """The allow-listed state machines, from configuration alone."""
        return {"stateMachines": [machine.summary() for machine in self._registry]}

    def describe_state_machine(self, name_or_arn: str) -> dict:
        """DescribeStateMachine for an allow-listed state machine."""
        machine = self._registry.resolve(unquote(name_or_arn))
        described = to_json_ready(self._call("describe_state_machine", stateMachineArn=machine.arn))
        return {
            "name": machine.name,
            "stateMachineArn": machine.arn,
            "type": described.get("type", machine.type),
            "status": described.get("status"),
            "creationDate": described.get("creationDate"),
            "definition": described.get("definition"),
        }

    def start_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None) -> dict:
        """StartExecution of an allow-listed state machine under the given name."""
        machine = self._registry.resolve(state_machine)
        try:
            started = self._call(
                "start_execution",
                stateMachineArn=machine.arn,
                name=name,
                input=self._payload(machine, execution_input, caller),
            )
        except ExecutionAlreadyExists:
            if not machine.pass_caller_context:
                raise
            started = self._replay_with_caller_context(machine, name, execution_input, caller)
        return {
            "executionArn": started["executionArn"],
            "startDate": to_json_ready(started["startDate"]),
            "name": name,
            "stateMachine": machine.name,
        }

    def _replay_with_caller_context(self, machine: StateMachine, name: str, execution_input, caller) -> dict:
        # With caller context the input holds the request id, so a retry's input differs
        # from the first try's; treat it as the same start, as Step Functions does for a
        # running execution with identical input, when the client's input and caller match.
        execution_arn = machine.arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
        existing = to_json_ready(self._call("describe_execution", executionArn=execution_arn))
        previous = existing.get("input") if isinstance(existing.get("input"), dict) else {}
        if (
            existing.get("status") != "RUNNING"
            or previous.get("input") != execution_input
            or previous.get("caller", {}).get("userArn") != (caller or {}).get("userArn")
            or previous.get("caller", {}).get("id") != (caller or {}).get("id")
        ):
            raise ExecutionAlreadyExists(f"An execution named {name!r} already exists with other input, or has ended.")
        return {"executionArn": execution_arn, "startDate": existing["startDate"]}

    def start_sync_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None) -> dict:
        """StartSyncExecution of an allow-listed EXPRESS state machine; the run's result."""
        machine = self._registry.resolve(state_machine)
        if not machine.is_express:
            raise StateMachineTypeNotSupported(
                f"Synchronous runs need an EXPRESS state machine; {machine.name!r} is STANDARD. "
                "Use POST /executions?wait=N instead."
            )
        result = to_json_ready(self._call(
            "start_sync_execution",
            client=self._sync_client(),
            stateMachineArn=machine.arn,
            name=name,
            input=self._payload(machine, execution_input, caller),
        ))
        return {
            "executionArn": result.get("executionArn"),
            "stateMachine": machine.name,
            "name": name,
            "status": result.get("status"),
            "output": result.get("output"),
            "error": result.get("error"),
            "cause": result.get("cause"),
            "startDate": result.get("startDate"),
            "stopDate": result.get("stopDate"),
        }

    def list_executions(self, state_machine: str, status=None, limit=None, next_token=None) -> dict:
        """ListExecutions of an allow-listed STANDARD state machine, one page."""
        machine = self._registry.resolve(state_machine)
        _require_standard(machine, "ListExecutions")
        params = _present(stateMachineArn=machine.arn, statusFilter=status, maxResults=limit, nextToken=next_token)
        page = to_json_ready(self._call("list_executions", **params))
        return {"executions": page.get("executions", []), "nextToken": page.get("nextToken")}

    def describe_execution(self, raw_arn: str) -> dict:
        """DescribeExecution, with input and output as JSON values."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "DescribeExecution")
        described = to_json_ready(self._call("describe_execution", executionArn=execution_arn))
        return {**described, "stateMachine": machine.name}

    def wait_for_execution(self, raw_arn: str, seconds: int) -> tuple[bool, dict]:
        """Poll DescribeExecution until the execution ends or seconds pass; (ended, description)."""
        deadline = self._clock() + seconds
        delay = POLL_FIRST_DELAY
        while True:
            described = self.describe_execution(raw_arn)
            if described.get("status") not in _UNFINISHED:
                return True, described
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False, described
            self._sleep(min(delay, remaining))
            delay = min(delay * POLL_BACKOFF, POLL_MAX_DELAY)

    def stop_execution(self, raw_arn: str, error: str | None = None, cause: str | None = None) -> dict:
        """StopExecution with an optional error and cause."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "StopExecution")
        stopped = self._call("stop_execution", **_present(executionArn=execution_arn, error=error, cause=cause))
        return {"stopDate": to_json_ready(stopped.get("stopDate"))}

    def get_execution_history(self, raw_arn: str, limit=None, next_token=None, reverse=False) -> dict:
        """GetExecutionHistory, one page of events."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "GetExecutionHistory")
        params = _present(executionArn=execution_arn, reverseOrder=reverse, maxResults=limit, nextToken=next_token)
        page = to_json_ready(self._call("get_execution_history", **params))
        return {"events": page.get("events", []), "nextToken": page.get("nextToken")}

    def redrive_execution(self, raw_arn: str, client_token: str | None = None) -> dict:
        """RedriveExecution of a failed STANDARD execution, idempotent by client token."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "RedriveExecution")
        redriven = self._call("redrive_execution", **_present(executionArn=execution_arn, clientToken=client_token))
        return {"redriveDate": to_json_ready(redriven.get("redriveDate"))}

    def _require_task_routes(self) -> None:
        if not self._task_routes:
            raise TaskRoutesDisabled("Task-token routes are turned off for this stage (TASK_ROUTES=off).")

    def send_task_success(self, task_token: str, output) -> dict:
        """SendTaskSuccess: answer a waiting task with its output."""
        self._require_task_routes()
        self._call("send_task_success", taskToken=task_token, output=serialize_payload(output, "output"))
        return {}

    def send_task_failure(self, task_token: str, error: str | None = None, cause: str | None = None) -> dict:
        """SendTaskFailure: fail a waiting task with an error and cause."""
        self._require_task_routes()
        self._call("send_task_failure", **_present(taskToken=task_token, error=error, cause=cause))
        return {}

    def send_task_heartbeat(self, task_token: str) -> dict:
        """SendTaskHeartbeat: keep a waiting task alive."""
        self._require_task_routes()
        self._call("send_task_heartbeat", taskToken=task_token)
        return {}
