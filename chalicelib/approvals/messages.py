"""The message a workflow sends to the approvals queue (docs/approvals.md), checked field by field.

A message that breaks the contract raises MalformedMessage, whose text names the field and
never repeats the task token (it may end up in a log line).
"""
import json
from dataclasses import dataclass

from chalicelib.errors import GatewayError
from chalicelib.stepfunctions.registry import StateMachine, StateMachineRegistry
from chalicelib.serialization import loads

# Step Functions task tokens are at most 2048 characters (SendTaskSuccess's taskToken).
MAX_TASK_TOKEN = 2048
MAX_TITLE = 200
MAX_CANDIDATES = 100
MAX_CANDIDATE = 256
DEFAULT_TIMEOUT_SECONDS = 86_400
# A task may wait for its token for up to one year (Step Functions' execution limit).
MAX_TIMEOUT_SECONDS = 365 * 86_400


class MalformedMessage(Exception):
    """The message breaks the approvals contract; it goes to the dead-letter queue."""


@dataclass(frozen=True)
class ApprovalRequest:
    """A checked request for approval from one waiting task."""

    task_token: str
    execution_arn: str
    machine: StateMachine
    title: str
    details: object
    candidate_groups: tuple
    candidate_users: tuple
    timeout_seconds: int


def _string(max_length: int, secret: bool = False):
    def check(field, value):
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            shown = "" if secret else f", got {value!r:.80}"
            raise MalformedMessage(f"{field} must be a non-empty string of at most {max_length} characters{shown}.")
        return value

    return check


def _names(field, value):
    if (not isinstance(value, list) or len(value) > MAX_CANDIDATES
            or not all(isinstance(v, str) and 0 < len(v) <= MAX_CANDIDATE for v in value)):
        raise MalformedMessage(f"{field} must be a list of at most {MAX_CANDIDATES} non-empty names, got {value!r:.120}.")
    return tuple(dict.fromkeys(value))


def _seconds(field, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TIMEOUT_SECONDS:
        raise MalformedMessage(f"{field} must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}, got {value!r:.40}.")
    return value


def _any(field, value):
    return value


# field -> (check, default when absent; None means required)
_FIELDS = {
    "taskToken": (_string(MAX_TASK_TOKEN, secret=True), None),
    "executionArn": (_string(2048), None),
    "title": (_string(MAX_TITLE), ""),
    "details": (_any, {}),
    "candidateGroups": (_names, ()),
    "candidateUsers": (_names, ()),
    "timeoutSeconds": (_seconds, DEFAULT_TIMEOUT_SECONDS),
}


def execution_named(body: str) -> str:
    """The executionArn a message names, for log lines about it; "unknown execution" when unreadable."""
    try:
        arn = json.loads(body).get("executionArn")
    except (ValueError, AttributeError, RecursionError):
        return "unknown execution"
    return arn if isinstance(arn, str) and len(arn) <= 2048 else "unknown execution"


def parse_message(body: str, registry: StateMachineRegistry) -> ApprovalRequest:
    """The approval request in an SQS message body, or MalformedMessage naming what is wrong."""
    try:
        document = loads(body)
    except (ValueError, RecursionError) as err:
        raise MalformedMessage(f"the body is not JSON ({type(err).__name__}).") from None
    if not isinstance(document, dict):
        raise MalformedMessage("the body must be a JSON object.")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise MalformedMessage(f"unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}.")
    values = {}
    for field, (check, default) in _FIELDS.items():
        if field not in document:
            if default is None:
                raise MalformedMessage(f"{field} is missing.")
            values[field] = default
        else:
            values[field] = check(field, document[field])
    try:
        machine = registry.for_execution(values["executionArn"])
    except GatewayError as err:  # InvalidArn, StateMachineNotFound, StateMachineTypeNotSupported
        raise MalformedMessage(f"executionArn: {err}") from None
    name = values["executionArn"].rsplit(":", 1)[1]
    return ApprovalRequest(
        task_token=values["taskToken"],
        execution_arn=values["executionArn"],
        machine=machine,
        title=values["title"] or f"Approval for {name}",
        details=values["details"],
        candidate_groups=tuple(values["candidateGroups"]),
        candidate_users=tuple(values["candidateUsers"]),
        timeout_seconds=values["timeoutSeconds"],
    )
