"""Request validation: one rule per field, applied the same way to bodies and query strings."""
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib.errors import InputTooLarge, InvalidName, ValidationError
from chalicelib.serialization import JsonValueError, dumps, loads

# Step Functions' payload limit for execution input and task output (UTF-8 bytes).
MAX_PAYLOAD_BYTES = 262_144
# Lambda refuses a synchronous response document over 6 MiB.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
# Step Functions' name rules: 1-80 characters, none of these, no whitespace or control characters.
_NAME_FORBIDDEN_CHARACTERS = r'\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f'
_NAME_FORBIDDEN = re.compile(f"[{_NAME_FORBIDDEN_CHARACTERS}]")
NAME_PATTERN = f"[^{_NAME_FORBIDDEN_CHARACTERS}]{{1,80}}"
# A JSON body may spell a 256 KiB payload in up to ~3x the bytes (\u escapes, indentation);
# anything larger cannot fit and is refused before it is parsed.
MAX_BODY_BYTES = 4 * MAX_PAYLOAD_BYTES
_NAME_MAX_LENGTH = 80
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Field:
    """How one request field is checked and converted."""

    parse: Callable[[str, Any], Any]
    required: bool = False


def _reject_lone_surrogates(field: str, value: str) -> None:
    # JSON's \ud800 escape yields a lone surrogate, which has no UTF-8 form and
    # would fail later, inside botocore, as a 500.
    if _LONE_SURROGATE.search(value):
        raise ValidationError(f"{field} contains a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode text.")


def _string(max_length: int, min_length: int = 1):
    def parse(field, value):
        if not isinstance(value, str):
            raise ValidationError(f"{field} must be a string.")
        if not min_length <= len(value) <= max_length:
            raise ValidationError(f"{field} must be {min_length} to {max_length} characters long.")
        _reject_lone_surrogates(field, value)
        return value

    return parse


def _integer(low: int, high: int):
    def parse(field, value):
        try:
            number = int(value, 10) if isinstance(value, str) else None
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise ValidationError(f"{field} must be a whole number from {low} to {high}, got {value!r}.")
        return number

    return parse


def _boolean(field, value):
    if value in ("true", "false"):
        return value == "true"
    raise ValidationError(f"{field} must be true or false, got {value!r}.")


def _one_of(choices):
    def parse(field, value):
        if value not in choices:
            raise ValidationError(f"{field} must be one of {', '.join(choices)}, got {value!r}.")
        return value

    return parse


def _any_json(field, value):
    return value


def execution_name(field, value):
    """Check an execution name against Step Functions' naming rules."""
    if not isinstance(value, str):
        raise InvalidName(f"{field} must be a string.")
    if not 1 <= len(value) <= _NAME_MAX_LENGTH:
        raise InvalidName(f"{field} must be 1 to {_NAME_MAX_LENGTH} characters long.")
    if _LONE_SURROGATE.search(value):
        raise InvalidName(f"{field} contains a lone UTF-16 surrogate, which is not valid Unicode text.")
    bad = _NAME_FORBIDDEN.search(value)
    if bad:
        raise InvalidName(
            f"{field} contains {bad.group()!r}; names may not contain whitespace, control "
            'characters or any of < > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; : /.'
        )
    return value


START_EXECUTION_BODY = {
    "stateMachine": Field(_string(2048), required=True),
    "input": Field(_any_json),
    "name": Field(execution_name),
}
STOP_EXECUTION_BODY = {
    "error": Field(_string(256, min_length=0)),
    "cause": Field(_string(32_768, min_length=0)),
}
LIST_EXECUTIONS_QUERY = {
    "stateMachine": Field(_string(2048), required=True),
    "status": Field(_one_of(EXECUTION_STATUSES)),
    "limit": Field(_integer(1, 1000)),
    "nextToken": Field(_string(3096)),
}
HISTORY_QUERY = {
    "limit": Field(_integer(1, 1000)),
    # Step Functions' tokens are at most 3096 characters; a shortened page's token wraps one.
    "nextToken": Field(_string(4200)),
    "reverse": Field(_boolean),
}
WAIT_QUERY = {
    # API Gateway cuts integrations at 29 s; leave room for the start and last describe.
    "wait": Field(_integer(0, 25)),
}
_TASK_TOKEN = Field(_string(2048), required=True)
TASK_SUCCESS_BODY = {"taskToken": _TASK_TOKEN, "output": Field(_any_json)}
TASK_FAILURE_BODY = {
    "taskToken": _TASK_TOKEN,
    "error": Field(_string(256, min_length=0)),
    "cause": Field(_string(32_768, min_length=0)),
}
TASK_HEARTBEAT_BODY = {"taskToken": _TASK_TOKEN}


def _answer_data(field, value):
    # The answer's data reaches the workflow inside SendTaskSuccess's output (256 KiB at most).
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be a JSON object.")
    serialize_payload(value, field)
    return value


LIST_APPROVALS_QUERY = {
    "limit": Field(_integer(1, 100)),
    "nextToken": Field(_string(1024)),
}
ANSWER_APPROVAL_BODY = {
    "comment": Field(_string(2000, min_length=0)),
    "data": Field(_answer_data),
}
NO_BODY: dict = {}
NO_QUERY: dict = {}


def validate(values: dict, rules: dict, where: str) -> dict:
    """Apply the rules to the given fields; unknown and missing fields are errors."""
    unknown = sorted(set(values) - set(rules))
    if unknown:
        raise ValidationError(f"Unknown {where} field(s) {unknown}; allowed: {sorted(rules)}.")
    missing = sorted(name for name, rule in rules.items() if rule.required and name not in values)
    if missing:
        raise ValidationError(f"Missing required {where} field(s) {missing}.")
    return {name: rules[name].parse(name, value) for name, value in values.items()}


def _reject_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValidationError("The request body has a JSON object with a duplicate key.")
    return dict(pairs)


def parse_body(raw: bytes | None, rules: dict) -> dict:
    """Parse a JSON object body strictly and validate it; an empty body is {}."""
    if not raw:
        return validate({}, rules, "body")
    if len(raw) > MAX_BODY_BYTES:
        raise InputTooLarge(
            f"The request body is {len(raw)} bytes; the gateway accepts at most {MAX_BODY_BYTES} "
            f"(Step Functions payloads are at most {MAX_PAYLOAD_BYTES} bytes)."
        )
    try:
        document = loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as err:
        raise ValidationError("The request body is not valid UTF-8.") from err
    except RecursionError as err:
        raise ValidationError("The request body is nested too deeply.") from err
    except JsonValueError as err:
        raise ValidationError(f"The request body contains {err}.") from err
    except ValueError as err:
        raise ValidationError(f"The request body is not valid JSON: {err}.") from err
    if not isinstance(document, dict):
        raise ValidationError("The request body must be a JSON object.")
    return validate(document, rules, "body")


def parse_query(query_params, rules: dict) -> dict:
    """Validate query string parameters; a repeated parameter is an error."""
    if not query_params:
        return validate({}, rules, "query")
    values = {}
    for key in query_params:
        if len(query_params.getlist(key)) > 1:
            raise ValidationError(f"Query parameter {key!r} is given more than once.")
        values[key] = query_params[key]
    return validate(values, rules, "query")


def serialize_payload(value: Any, field: str) -> str:
    """Serialise a JSON value for Step Functions, enforcing the 256 KiB limit."""
    # Sorted keys make retries with the same input byte-identical, which Step
    # Functions' name-based idempotency compares.
    try:
        text = dumps(value, sort_keys=True)
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise ValidationError(
            f"{field} contains a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode text."
        ) from err
    except RecursionError as err:
        raise ValidationError(f"{field} is nested too deeply.") from err
    if size > MAX_PAYLOAD_BYTES:
        raise InputTooLarge(
            f"{field} is {size} bytes once serialised; Step Functions accepts at most {MAX_PAYLOAD_BYTES}."
        )
    return text


def client_token(idempotency_key: str | None) -> str | None:
    """The Idempotency-Key header as a Step Functions clientToken (1-64 characters)."""
    if idempotency_key is not None:
        _string(64)("Idempotency-Key header", idempotency_key)
    return idempotency_key


def choose_execution_name(name: str | None, idempotency_key: str | None) -> str:
    """The execution name: the body's name, else the Idempotency-Key header, else a new UUID."""
    if idempotency_key is not None:
        execution_name("Idempotency-Key header", idempotency_key)
        if name is not None and name != idempotency_key:
            raise ValidationError("Body name and Idempotency-Key header differ; send one or make them equal.")
    return name or idempotency_key or str(uuid.uuid4())
