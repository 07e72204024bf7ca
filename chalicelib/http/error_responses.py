"""The one table from domain errors to HTTP: status, Retry-After and Chalice's error body."""
from chalice import Response

from chalicelib.errors import (
    AccessDenied,
    ApprovalAlreadyAnswered,
    ApprovalClosed,
    ApprovalNotFound,
    ApprovalsDisabled,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ExecutionAlreadyExists,
    ExecutionLimitExceeded,
    ExecutionNotFound,
    ExecutionNotRedrivable,
    GatewayError,
    GatewayMisconfigured,
    InputTooLarge,
    InvalidArn,
    InvalidExecutionInput,
    InvalidName,
    InvalidOutput,
    InvalidToken,
    KmsAccessDenied,
    KmsKeyUnavailable,
    NotImplementedByBackend,
    StateMachineDeleting,
    StateMachineNotFound,
    StateMachineTypeNotSupported,
    TaskNotFound,
    TaskRoutesDisabled,
    TaskTimedOut,
    Throttled,
    ValidationError,
)

# Domain error -> (HTTP status, Retry-After seconds or None).
_HTTP_STATUS = {
    ValidationError: (400, None),
    InvalidArn: (400, None),
    InvalidName: (400, None),
    InvalidExecutionInput: (400, None),
    InvalidToken: (400, None),
    InvalidOutput: (400, None),
    StateMachineTypeNotSupported: (400, None),
    AccessDenied: (403, None),
    StateMachineNotFound: (404, None),
    ExecutionNotFound: (404, None),
    TaskNotFound: (404, None),
    TaskRoutesDisabled: (404, None),
    ApprovalsDisabled: (404, None),
    ApprovalNotFound: (404, None),
    ExecutionAlreadyExists: (409, None),
    ApprovalAlreadyAnswered: (409, None),
    StateMachineDeleting: (409, None),
    ExecutionNotRedrivable: (409, None),
    TaskTimedOut: (410, None),
    ApprovalClosed: (410, None),
    InputTooLarge: (413, None),
    Throttled: (429, 1),
    # Open executions end in their own time: no retry interval is honest.
    ExecutionLimitExceeded: (429, None),
    GatewayMisconfigured: (500, None),
    KmsAccessDenied: (500, None),
    NotImplementedByBackend: (501, None),
    BackendError: (502, None),
    BackendUnavailable: (503, 5),
    KmsKeyUnavailable: (503, None),
    BackendTimeout: (504, None),
}


def error_response(err: GatewayError) -> Response:
    """Render a domain error as Chalice's error shape with its HTTP status."""
    status, retry_after = _HTTP_STATUS[type(err)]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Response(
        body={"Code": type(err).__name__, "Message": str(err)},
        status_code=status,
        headers=headers,
    )
