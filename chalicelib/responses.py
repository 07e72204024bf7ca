"""HTTP shaping shared by routes: Location headers, ?wait= outcomes, caller context, CORS."""
from chalice import Response

from chalicelib.config import get_config
from chalicelib.errors import CorsDisabled, GatewayError
from chalicelib.identity import caller_record
from chalicelib.service import execution_location

_CORS_ALLOW_HEADERS = "Authorization,Content-Type,Idempotency-Key,X-Amz-Content-Sha256,X-Amz-Date,X-Amz-Security-Token"


def started(execution: dict) -> Response:
    """201 Created for a new execution, with its Location."""
    return Response(execution, status_code=201, headers={"Location": execution_location(execution["executionArn"])})


def waited(ended: bool, description: dict) -> Response:
    """200 with the final description, or 202 with the current one when still running."""
    if ended:
        return Response(description, status_code=200)
    return Response(description, status_code=202, headers={"Location": execution_location(description["executionArn"])})


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


def _cors_origin() -> str | None:
    try:
        return get_config().cors_allow_origin
    except GatewayError:
        return None


def add_cors_headers(response: Response) -> None:
    """Add CORS headers to any response, errors included, when the stage allows an origin."""
    origin = _cors_origin()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Location,Retry-After"
        if origin != "*":
            response.headers["Vary"] = "Origin"


def preflight() -> Response:
    """Answer a CORS preflight; browsers send these unsigned."""
    if not _cors_origin():
        raise CorsDisabled("Cross-origin requests are not enabled for this stage (set CORS_ALLOW_ORIGIN).")
    return Response(
        body="",
        status_code=200,
        headers={
            "Access-Control-Allow-Methods": "GET,POST,OPTIONS",
            "Access-Control-Allow-Headers": _CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )
