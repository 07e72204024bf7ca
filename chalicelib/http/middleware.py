"""Per-request middleware: the time budget, errors as HTTP, exact JSON, CORS, and one access/metrics log line."""
import json
import logging
import time
from urllib.parse import unquote

from chalicelib.auth.identity import bind_caller, current_caller
from chalicelib.config import get_config
from chalicelib.errors import BackendError, GatewayError
from chalicelib.http.cors import add_cors_headers
from chalicelib.http.error_responses import error_response
from chalicelib.serialization import JsonValueError, dumps
from chalicelib.stepfunctions import budget

ACCESS_LOG = logging.getLogger("sfn_gateway.access")
# Lambda's root handler prints whatever reaches it; the root logger's own level
# (WARNING by default) would otherwise drop these INFO lines.
ACCESS_LOG.setLevel(logging.INFO)

_IDENTITY_FIELDS = ("userArn", "caller", "accountId", "sourceIp")
_UNSUPPORTED_MEDIA_TYPE = 415


def _execution_arn(request, response):
    if isinstance(response.body, dict) and "executionArn" in response.body:
        return response.body["executionArn"]
    raw = (request.uri_params or {}).get("executionArn")
    return unquote(raw) if raw else None


def _state_machine(request, response) -> str | None:
    # Only names the allow-list vouches for (a successful answer): a client's typo
    # must not become a new metric dimension.
    if response.status_code >= 400:
        return None
    if isinstance(response.body, dict) and response.body.get("stateMachine"):
        return response.body["stateMachine"]
    return (request.query_params or {}).get("stateMachine")


def _metrics(record: dict, namespace: str, state_machine: str | None) -> dict:
    # CloudWatch embedded metric format: CloudWatch Logs turns this line into metrics,
    # with no client library, no extra call and nothing added to the cold start.
    record.update(
        Route=f"{record['method']} {record['route']}",
        StateMachine=state_machine or "none",
        StatusClass=f"{record['status'] // 100}xx",
        Requests=1,
        Latency=record["durationMs"],
        _aws={
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Route", "StatusClass"], ["StateMachine", "StatusClass"]],
                "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}],
            }],
        },
    )
    return record


def _metrics_namespace() -> str | None:
    try:
        return get_config().metrics_namespace
    except GatewayError:
        return None


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
    record.update({field: identity[field] for field in _IDENTITY_FIELDS if identity.get(field)})
    caller = current_caller()
    if caller:
        record["callerIdentity"] = caller
    execution_arn = _execution_arn(request, response)
    if execution_arn:
        record["executionArn"] = execution_arn
    if response.status_code >= 400 and isinstance(response.body, dict):
        record["errorCode"] = response.body.get("Code")
    namespace = _metrics_namespace()
    if namespace:
        _metrics(record, namespace, _state_machine(request, response))
    return record


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
    budget.start(request.lambda_context)
    bind_caller(request)
    try:
        response = get_response(request)
    except GatewayError as err:
        response = error_response(err)
    finally:
        budget.clear()
    _explain_unsupported_media_type(response)
    add_cors_headers(response)
    ACCESS_LOG.info(json.dumps(_access_record(request, response, time.perf_counter() - started), default=str))
    _render_json(response)
    return response
