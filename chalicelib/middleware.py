"""Per-request middleware: domain errors become HTTP responses, and one JSON access log line."""
import json
import logging
import time
from urllib.parse import unquote

from chalicelib.errors import GatewayError, error_response
from chalicelib.identity import bind_caller, current_caller
from chalicelib.responses import add_cors_headers

ACCESS_LOG = logging.getLogger("sfn_gateway.access")
# Lambda's root handler prints whatever reaches it; the root logger's own level
# (WARNING by default) would otherwise drop these INFO lines.
ACCESS_LOG.setLevel(logging.INFO)

_IDENTITY_FIELDS = ("userArn", "caller", "accountId", "sourceIp")


def _execution_arn(request, response):
    if isinstance(response.body, dict) and "executionArn" in response.body:
        return response.body["executionArn"]
    raw = (request.uri_params or {}).get("executionArn")
    return unquote(raw) if raw else None


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
    return record


def handle_request(request, get_response):
    """Map domain errors to responses, add CORS headers and log one structured line per request."""
    started = time.perf_counter()
    bind_caller(request)
    try:
        response = get_response(request)
    except GatewayError as err:
        response = error_response(err)
    add_cors_headers(response)
    ACCESS_LOG.info(json.dumps(_access_record(request, response, time.perf_counter() - started)))
    return response
