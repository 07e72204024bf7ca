"""StepFunctionsGateway: each public method is one allow-listed Step Functions operation."""
from urllib.parse import quote, unquote

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StateMachineTypeNotSupported, translate_backend_error
from chalicelib.registry import StateMachine, StateMachineRegistry
from chalicelib.serialization import to_json_ready
from chalicelib.validation import serialize_payload


def execution_location(execution_arn: str) -> str:
    """The gateway path of an execution, for the Location header."""
    return "/executions/" + quote(execution_arn, safe="")


def _require_standard(machine: StateMachine, operation: str) -> None:
    # Step Functions keeps no execution records for Express workflows.
    if machine.is_express:
        raise StateMachineTypeNotSupported(
            f"{operation} is only available for STANDARD state machines; {machine.name!r} is EXPRESS."
        )


class StepFunctionsGateway:
    """Calls Step Functions for allow-listed state machines only."""

    def __init__(self, client, registry: StateMachineRegistry):
        self._client = client
        self._registry = registry

    def _call(self, operation: str, **params) -> dict:
        try:
            return getattr(self._client, operation)(**params)
        except (ClientError, BotoCoreError) as err:
            raise translate_backend_error(err) from err

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

    def start_execution(self, state_machine: str, execution_input, name: str) -> dict:
        """StartExecution of an allow-listed state machine under the given name."""
        machine = self._registry.resolve(state_machine)
        started = self._call(
            "start_execution",
            stateMachineArn=machine.arn,
            name=name,
            input=serialize_payload(execution_input, "input"),
        )
        return {
            "executionArn": started["executionArn"],
            "startDate": to_json_ready(started["startDate"]),
            "name": name,
            "stateMachine": machine.name,
        }

    def list_executions(self, state_machine: str, status=None, limit=None, next_token=None) -> dict:
        """ListExecutions of an allow-listed STANDARD state machine, one page."""
        machine = self._registry.resolve(state_machine)
        _require_standard(machine, "ListExecutions")
        params = {"stateMachineArn": machine.arn}
        if status:
            params["statusFilter"] = status
        if limit:
            params["maxResults"] = limit
        if next_token:
            params["nextToken"] = next_token
        page = to_json_ready(self._call("list_executions", **params))
        return {"executions": page.get("executions", []), "nextToken": page.get("nextToken")}

    def describe_execution(self, raw_arn: str) -> dict:
        """DescribeExecution, with input and output as JSON values."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "DescribeExecution")
        described = to_json_ready(self._call("describe_execution", executionArn=execution_arn))
        return {**described, "stateMachine": machine.name}

    def stop_execution(self, raw_arn: str, error: str | None = None, cause: str | None = None) -> dict:
        """StopExecution with an optional error and cause."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "StopExecution")
        params = {"executionArn": execution_arn}
        if error is not None:
            params["error"] = error
        if cause is not None:
            params["cause"] = cause
        stopped = self._call("stop_execution", **params)
        return {"stopDate": to_json_ready(stopped.get("stopDate"))}

    def get_execution_history(self, raw_arn: str, limit=None, next_token=None, reverse=False) -> dict:
        """GetExecutionHistory, one page of events."""
        execution_arn, machine = self._execution(raw_arn)
        _require_standard(machine, "GetExecutionHistory")
        params = {"executionArn": execution_arn, "reverseOrder": reverse}
        if limit:
            params["maxResults"] = limit
        if next_token:
            params["nextToken"] = next_token
        page = to_json_ready(self._call("get_execution_history", **params))
        return {"events": page.get("events", []), "nextToken": page.get("nextToken")}
