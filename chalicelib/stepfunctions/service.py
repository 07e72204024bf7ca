"""StepFunctionsGateway: each public method is one allow-listed Step Functions operation."""
import base64
import binascii
import json
import time
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import (
    BackendTimeout,
    ExecutionAlreadyExists,
    StateMachineTypeNotSupported,
    TaskRoutesDisabled,
    ValidationError,
)
from chalicelib.serialization import dumps, to_json_ready
from chalicelib.stepfunctions.backend_errors import translate_backend_error
from chalicelib.stepfunctions.budget import Budget
from chalicelib.stepfunctions.registry import StateMachine, execution_arn
from chalicelib.stepfunctions.retry import retry_delay
from chalicelib.validation import MAX_RESPONSE_BYTES, serialize_payload

# ?wait= polling: DescribeExecution refills at 15 calls/s per account, so start
# fast for short workflows and back off to about 3 calls/s per waiting request (the
# 300 ms cap keeps the median delivery delay under 250 ms; see bench/wait_delay.py).
POLL_FIRST_DELAY = 0.1
POLL_BACKOFF = 1.5
POLL_MAX_DELAY = 0.3
_UNFINISHED = ("RUNNING", "PENDING_REDRIVE")
# The shortest read timeout worth an attempt when the budget is nearly spent.
MIN_READ_TIMEOUT = 1.0
# A history page the gateway had to shorten continues with a token of its own.
_HISTORY_TOKEN_PREFIX = "gw1."
# Lambda's JSON encoder escapes non-ASCII text and quotes of the body once more; keep
# room for the status line and headers.
_HISTORY_BODY_LIMIT = MAX_RESPONSE_BYTES - 64 * 1024


def _present(**params) -> dict:
    # boto3 rejects None for optional parameters: leave out the ones the caller did not give.
    return {key: value for key, value in params.items() if value is not None}


def _require_standard(machine: StateMachine, operation: str) -> None:
    # Step Functions keeps no execution records for Express workflows.
    if machine.is_express:
        raise StateMachineTypeNotSupported(
            f"{operation} is only available for STANDARD state machines; {machine.name!r} is EXPRESS. "
            "Run Express workflows with POST /sync-executions."
        )


def _lambda_encoded_size(value) -> int:
    # What the value costs inside Lambda's response document: JSON text, re-escaped as a string.
    return len(json.dumps(dumps(value)))


def _history_token(sfn_token: str | None, after_event_id: int) -> str:
    payload = json.dumps({"t": sfn_token, "a": after_event_id}, separators=(",", ":")).encode()
    return _HISTORY_TOKEN_PREFIX + base64.urlsafe_b64encode(payload).decode()


def _split_history_token(token: str | None) -> tuple[str | None, int | None]:
    """The Step Functions token and the last event id already returned, from a nextToken."""
    if not token or not token.startswith(_HISTORY_TOKEN_PREFIX):
        return token, None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token[len(_HISTORY_TOKEN_PREFIX):]))
        sfn_token, after = decoded["t"], decoded["a"]
    except (binascii.Error, ValueError, TypeError, KeyError) as err:
        raise ValidationError("nextToken is not a token this gateway issued; pass it back unchanged.") from err
    if not (sfn_token is None or isinstance(sfn_token, str)) or type(after) is not int:
        raise ValidationError("nextToken is not a token this gateway issued; pass it back unchanged.")
    return sfn_token, after


class StepFunctionsGateway:
    """Calls Step Functions for allow-listed state machines only, within the request's time budget."""

    def __init__(self, client_for, config, budget: Budget | None = None,
                 clock=time.monotonic, sleep=time.sleep):
        # client_for(read_timeout) returns a cached client with that read timeout.
        self._client_for = client_for
        self._config = config
        self._registry = config.registry
        self._budget = budget
        self._clock = clock
        self._sleep = sleep

    def _remaining(self) -> float:
        return float("inf") if self._budget is None else self._budget.remaining()

    def _read_timeout_within_budget(self, wanted: float) -> float | None:
        available = self._remaining() - self._config.connect_timeout
        if available < MIN_READ_TIMEOUT:
            return None
        if available >= wanted:
            return wanted
        # Whole seconds, so that at most a handful of clients are ever built.
        return float(int(available))

    def _call(self, operation: str, *, read_timeout: float | None = None, attempts: int | None = None, **params):
        attempts = attempts or self._config.max_attempts
        for attempt in range(1, attempts + 1):
            timeout = self._read_timeout_within_budget(read_timeout or self._config.read_timeout)
            if timeout is None:
                raise BackendTimeout(
                    f"The request ran out of time before {operation} could be sent; nothing was changed."
                )
            client = self._client_for(timeout)
            try:
                return getattr(client, operation)(**params)
            except (ClientError, BotoCoreError) as err:
                delay = retry_delay(client, operation, err, attempt) if attempt < attempts else None
                if delay is None or self._remaining() - delay < self._config.connect_timeout + MIN_READ_TIMEOUT:
                    raise translate_backend_error(err, operation) from err
                self._sleep(delay)

    def _payload(self, machine: StateMachine, execution_input, caller: dict | None) -> str:
        if machine.pass_caller_context:
            execution_input = {"input": execution_input, "caller": caller or {}}
        return serialize_payload(execution_input, "input")

    def _execution(self, raw_arn: str) -> tuple[str, StateMachine]:
        # Path parameters arrive URL-encoded (%3A) or raw; names cannot contain
        # "%", so decoding is safe either way.
        arn = unquote(raw_arn)
        return arn, self._registry.for_execution(arn)

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

    def start_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None,
                        trace_header: str | None = None) -> dict:
        """StartExecution of an allow-listed STANDARD state machine under the given name."""
        machine = self._registry.resolve(state_machine)
        # Express executions have no name idempotency and no records to read back:
        # a 201 here would invite retries that run the workflow again.
        _require_standard(machine, "POST /executions")
        try:
            started = self._call(
                "start_execution",
                **_present(
                    stateMachineArn=machine.arn,
                    name=name,
                    input=self._payload(machine, execution_input, caller),
                    traceHeader=trace_header,
                ),
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
        arn = execution_arn(machine.arn, name)
        existing = to_json_ready(self._call("describe_execution", executionArn=arn))
        previous = existing.get("input") if isinstance(existing.get("input"), dict) else {}
        if (
            existing.get("status") != "RUNNING"
            or previous.get("input") != execution_input
            or previous.get("caller", {}).get("userArn") != (caller or {}).get("userArn")
            or previous.get("caller", {}).get("id") != (caller or {}).get("id")
        ):
            raise ExecutionAlreadyExists(f"An execution named {name!r} already exists with other input, or has ended.")
        return {"executionArn": arn, "startDate": existing["startDate"]}

    def start_sync_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None,
                             trace_header: str | None = None) -> dict:
        """StartSyncExecution of an allow-listed EXPRESS state machine; the run's result."""
        machine = self._registry.resolve(state_machine)
        if not machine.is_express:
            raise StateMachineTypeNotSupported(
                f"Synchronous runs need an EXPRESS state machine; {machine.name!r} is STANDARD. "
                "Use POST /executions?wait=N instead."
            )
        result = to_json_ready(self._call(
            "start_sync_execution",
            read_timeout=self._config.sync_read_timeout,
            # A retried StartSyncExecution would run the Express workflow again: Express
            # executions have no name-based idempotency.
            attempts=1,
            **_present(
                stateMachineArn=machine.arn,
                name=name,
                input=self._payload(machine, execution_input, caller),
                traceHeader=trace_header,
            ),
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
        arn, machine = self._execution(raw_arn)
        described = to_json_ready(self._call("describe_execution", executionArn=arn))
        return {**described, "stateMachine": machine.name}

    def wait_for_execution(self, raw_arn: str, seconds: int, known: dict | None = None) -> tuple[bool, dict]:
        """Poll DescribeExecution until the execution ends, seconds pass or the budget runs low; (ended, description)."""
        # Keep room for one last DescribeExecution inside the request's budget.
        reserve = self._config.connect_timeout + MIN_READ_TIMEOUT
        deadline = self._clock() + min(seconds, self._remaining() - reserve)
        delay = POLL_FIRST_DELAY
        described = known
        while True:
            if described is not None and self._remaining() < reserve:
                # A start that succeeded keeps its ARN: the caller gets 202 and the Location.
                return False, described
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
        arn, _ = self._execution(raw_arn)
        stopped = self._call("stop_execution", **_present(executionArn=arn, error=error, cause=cause))
        return {"stopDate": to_json_ready(stopped.get("stopDate"))}

    def get_execution_history(self, raw_arn: str, limit=None, next_token=None, reverse=False) -> dict:
        """GetExecutionHistory, one page of events, shortened if it would not fit in a Lambda response."""
        arn, _ = self._execution(raw_arn)
        sfn_token, after = _split_history_token(next_token)
        params = _present(executionArn=arn, reverseOrder=reverse, maxResults=limit, nextToken=sfn_token)
        page = to_json_ready(self._call("get_execution_history", **params))
        events = page.get("events", [])
        if after is not None:
            events = [event for event in events if (event["id"] < after if reverse else event["id"] > after)]
        kept = self._events_that_fit(events)
        if len(kept) < len(events):
            return {"events": kept, "nextToken": _history_token(sfn_token, kept[-1]["id"])}
        return {"events": events, "nextToken": page.get("nextToken")}

    @staticmethod
    def _events_that_fit(events: list) -> list:
        if _lambda_encoded_size(events) <= _HISTORY_BODY_LIMIT:
            return events
        size, kept = 0, []
        for event in events:
            size += _lambda_encoded_size(event) + 1
            if size > _HISTORY_BODY_LIMIT and kept:
                break
            kept.append(event)
        return kept

    def redrive_execution(self, raw_arn: str, client_token: str | None = None) -> dict:
        """RedriveExecution of a failed STANDARD execution, idempotent by client token."""
        arn, _ = self._execution(raw_arn)
        redriven = self._call("redrive_execution", **_present(executionArn=arn, clientToken=client_token))
        return {"redriveDate": to_json_ready(redriven.get("redriveDate"))}

    def _require_task_routes(self) -> None:
        if not self._config.task_routes:
            raise TaskRoutesDisabled(
                "Task-token routes are off for this stage; set TASK_ROUTES=on in its environment variables to use them."
            )

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
