"""Per-request middleware: the time budget, errors as HTTP, exact JSON, CORS, and one access/metrics log line."""
import functools
import json
import logging
import time

from chalicelib.auth.identity import bind_caller, current_caller
from chalicelib.config import get_config
from chalicelib.errors import BackendError, GatewayError
from chalicelib.http.cors import add_cors_headers
from chalicelib.http.error_responses import error_response
from chalicelib.partners.plans import plan_of
from chalicelib.serialization import JsonValueError, dumps
from chalicelib.stepfunctions import budget
from chalicelib.stepfunctions.registry import unquote_arn

ACCESS_LOG = logging.getLogger("sfn_gateway.access")
# Lambda's root handler prints whatever reaches it; the root logger's own level
# (WARNING by default) would otherwise drop these INFO lines.
ACCESS_LOG.setLevel(logging.INFO)

_IDENTITY_FIELDS = ("userArn", "caller", "accountId", "sourceIp")
# Built once: json.dumps(record, default=str) would build this encoder again for every request.
_LOG_ENCODER = json.JSONEncoder(default=str)
_UNSUPPORTED_MEDIA_TYPE = 415


def _execution_arn(request, response):
    if isinstance(response.body, dict) and "executionArn" in response.body:
        return response.body["executionArn"]
    raw = (request.uri_params or {}).get("executionArn")
    return unquote_arn(raw) if raw else None


def _state_machine(request, response) -> str | None:
    # Only names the allow-list vouches for (a successful answer): a client's typo
    # must not become a new metric dimension.
    if response.status_code >= 400:
        return None
    if isinstance(response.body, dict) and response.body.get("stateMachine"):
        return response.body["stateMachine"]
    return (request.query_params or {}).get("stateMachine")


@functools.cache
def _metrics_tail_format(namespace: str) -> str:
    # The "_aws" member is the same for every request of the stage but its timestamp, so it is
    # encoded once per container and only the timestamp is put in per request.
    directives = _LOG_ENCODER.encode([{
        "Namespace": namespace,
        "Dimensions": [["Route", "StatusClass"], ["StateMachine", "StatusClass"]],
        "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}],
    }])
    return ', "_aws": {"Timestamp": %d, "CloudWatchMetrics": ' + directives.replace("%", "%%") + "}}"


def _add_metrics(record: dict, state_machine: str | None) -> None:
    # CloudWatch embedded metric format: CloudWatch Logs turns this line into metrics,
    # with no client library, no extra call and nothing added to the cold start.
    record["Route"] = f"{record['method']} {record['route']}"
    record["StateMachine"] = state_machine or "none"
    record["StatusClass"] = f"{record['status'] // 100}xx"
    record["Requests"] = 1
    record["Latency"] = record["durationMs"]


def _metrics_namespace() -> str | None:
    try:
        return get_config().metrics_namespace
    except GatewayError:
        return None


def _api_timeout_seconds() -> float:
    # A misconfigured stage still gets a budget; its error is reported by the route.
    try:
        return get_config().api_timeout_seconds
    except GatewayError:
        return budget.API_GATEWAY_TIMEOUT_SECONDS


def _access_record(request, response, seconds: float) -> dict:
    context = request.context or {}
    identity = context.get("identity") or {}
    record = {
        "requestId": context.get("requestId"),
        "method": request.method,
        "route": context.get("resourcePath"),
        "status": response.status_code,
        "durationMs": round(seconds * 1000, 2),
    }
    for field in _IDENTITY_FIELDS:
        if identity.get(field):
            record[field] = identity[field]
    caller = current_caller()
    if caller:
        record["callerIdentity"] = caller
    plan = plan_of(context)
    if plan:
        record["usagePlan"] = plan
    execution_arn = _execution_arn(request, response)
    if execution_arn:
        record["executionArn"] = execution_arn
    if response.status_code >= 400 and isinstance(response.body, dict):
        record["errorCode"] = response.body.get("Code")
    return record


def _access_line(request, response, seconds: float) -> str:
    """The access log line: one JSON object, with the request's metrics when the stage has them on."""
    record = _access_record(request, response, seconds)
    namespace = _metrics_namespace()
    if not namespace:
        return _LOG_ENCODER.encode(record)
    _add_metrics(record, _state_machine(request, response))
    # The same text json.dumps(record, default=str) gives with "_aws" as the last member.
    return _LOG_ENCODER.encode(record)[:-1] + _metrics_tail_format(namespace) % int(time.time() * 1000)


def _explain_unsupported_media_type(response) -> None:
    # Chalice's own 415 names the type it got, not the one it wants.
    if response.status_code == _UNSUPPORTED_MEDIA_TYPE and isinstance(response.body, dict):
        response.body["Message"] = (
            f"{response.body.get('Message')}. Send the body as JSON with the header Content-Type: application/json."
        )


def _render_json(response) -> None:
    # Chalice would serialise with json.dumps, turning Decimal numbers into floats.
    if isinstance(response.body, (dict, list)):
        try:
            response.body = dumps(response.body)
        except (JsonValueError, RecursionError):
            response.body = dumps(error_response(BackendError(
                "Step Functions returned a value the gateway cannot send as JSON (nested too deeply)."
            )).body)
            response.status_code = 502
        response.headers.setdefault("Content-Type", "application/json")


def handle_request(request, get_response):
    """Open the request's time budget, map domain errors, add CORS, log one line, render exact JSON."""
    started = time.perf_counter()
    budget.start(request.lambda_context, api_timeout_seconds=_api_timeout_seconds())
    try:
        bind_caller(request)
        response = get_response(request)
    except GatewayError as err:
        response = error_response(err)
    finally:
        budget.clear()
    _explain_unsupported_media_type(response)
    add_cors_headers(response)
    if ACCESS_LOG.isEnabledFor(logging.INFO):
        # What ACCESS_LOG.info(line) does, less its search of the stack for the caller's file and line.
        line = _access_line(request, response, time.perf_counter() - started)
        ACCESS_LOG.handle(ACCESS_LOG.makeRecord(ACCESS_LOG.name, logging.INFO, __file__, 0, line, None, None,
                                                "handle_request"))
    _render_json(response)
    return response
