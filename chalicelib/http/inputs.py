"""What routes read from a request: validated query and body, the caller, the trace header."""
import os

from chalicelib.auth.identity import caller_record
from chalicelib.validation import (
    NO_QUERY,
    START_EXECUTION_BODY,
    choose_execution_name,
    parse_body,
    parse_query,
)

# StartExecution's traceHeader: at most 256 ASCII characters.
_MAX_TRACE_HEADER = 256


def query(request, rules: dict = NO_QUERY) -> dict:
    """The validated query string; unknown parameters are refused on every route."""
    return parse_query(request.query_params, rules)


def body(request, rules: dict, query_rules: dict = NO_QUERY) -> dict:
    """The validated JSON body, after the query string is checked against query_rules."""
    query(request, query_rules)
    return parse_body(request.raw_body, rules)


def start_arguments(request) -> dict:
    """The arguments of a start (asynchronous or synchronous) from its body and headers."""
    fields = parse_body(request.raw_body, START_EXECUTION_BODY)
    return {
        "state_machine": fields["stateMachine"],
        "execution_input": fields.get("input", {}),
        "name": choose_execution_name(fields.get("name"), request.headers.get("idempotency-key")),
        "caller": caller_context(request),
        "trace_header": trace_header(request),
    }


def caller_context(request) -> dict:
    """Who made the request, from API Gateway's request context, for workflows that ask for it."""
    context = request.context or {}
    identity = context.get("identity") or {}
    return {
        "userArn": identity.get("userArn"),
        "accountId": identity.get("accountId"),
        "sourceIp": identity.get("sourceIp"),
        "requestId": context.get("requestId"),
        # The caller record {"type", "id", "groups", "scopes"}, whatever the stage's AUTH_MODE.
        **(caller_record(context) or {"type": None, "id": None, "groups": [], "scopes": []}),
    }


def trace_header(request) -> str | None:
    """The X-Ray trace of this request, so that Step Functions joins it (None if absent or unusable)."""
    # Lambda puts the current trace in _X_AMZN_TRACE_ID; API Gateway also forwards it as a header.
    header = os.environ.get("_X_AMZN_TRACE_ID") or request.headers.get("x-amzn-trace-id")
    if not header or len(header) > _MAX_TRACE_HEADER or not header.isascii():
        return None
    return header
