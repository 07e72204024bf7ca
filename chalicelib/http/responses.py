"""HTTP shaping shared by routes: Location headers that clients can follow, ?wait= outcomes."""
from urllib.parse import quote

from chalice import Response


def _base_path(request) -> str:
    # Behind API Gateway the request path carries the stage (/api) or a custom domain's
    # base path; the route template has the same segments without it.
    context = request.context or {}
    path_segments = (context.get("path") or "").split("/")
    route_segments = (context.get("resourcePath") or "").split("/")
    extra = len(path_segments) - len(route_segments)
    return "/".join(path_segments[:extra + 1]) if extra > 0 else ""


def execution_location(request, execution_arn: str) -> str:
    """The absolute path of an execution on this API, for the Location header."""
    return _base_path(request) + "/executions/" + quote(execution_arn, safe="")


def started(request, execution: dict) -> Response:
    """201 Created for a new execution, with its Location."""
    return Response(execution, status_code=201,
                    headers={"Location": execution_location(request, execution["executionArn"])})


def waited(request, ended: bool, description: dict) -> Response:
    """200 with the final description, or 202 with the current one when still running."""
    if ended:
        return Response(description, status_code=200)
    return Response(description, status_code=202,
                    headers={"Location": execution_location(request, description["executionArn"])})
