"""Exceptions: one class per `Code` of the gateway's error table, plus transport and set-up errors."""
from __future__ import annotations

from typing import Dict, Optional, Type


class SfnGatewayError(Exception):
    """Base of every exception this package raises."""


class ConfigurationError(SfnGatewayError):
    """The client cannot make a request: no URL, no credentials, no region, bad arguments."""


class GatewayUnreachable(SfnGatewayError):
    """The gateway could not be reached (connection refused, DNS, TLS, read timeout)."""


class ApiError(SfnGatewayError):
    """The gateway answered with an error: HTTP status, its `Code` and `Message`."""

    def __init__(self, status: int, code: Optional[str], message: str, retry_after: Optional[float] = None):
        super().__init__(f"{code or 'HTTP ' + str(status)}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class UnknownApiError(ApiError):
    """An error `Code` this client version does not know (newer gateways add codes); `code` keeps it."""


class ApiGatewayError(ApiError):
    """API Gateway's own answer `{"message": ...}` (no `Code`): signature, authorizer, throttling, timeouts."""


class AccessDenied(ApiGatewayError):
    """401/403: API Gateway refused the signature, token or route, or the stage's access rules (Code AccessDenied)."""


# --- the gateway's error table (openapi.yaml lists the same codes; a test keeps them in step) ---


class ValidationError(ApiError):
    """400: the request is malformed (bad JSON, wrong type, unknown field or query parameter)."""


class InvalidArn(ApiError):
    """400: an ARN in the request is malformed."""


class InvalidName(ApiError):
    """400: the execution name breaks Step Functions' naming rules."""


class InvalidExecutionInput(ApiError):
    """400: Step Functions rejected the execution input."""


class InvalidToken(ApiError):
    """400: the task token is malformed or unknown."""


class InvalidOutput(ApiError):
    """400: Step Functions rejected the task output."""


class StateMachineTypeNotSupported(ApiError):
    """400: the operation does not apply to this type of state machine (STANDARD vs EXPRESS)."""


class StateMachineNotFound(ApiError):
    """404: the state machine is not allow-listed on this stage (or no longer exists)."""


class ExecutionNotFound(ApiError):
    """404: the execution does not exist."""


class TaskNotFound(ApiError):
    """404: the task token belongs to no waiting task."""


class TaskRoutesDisabled(ApiError):
    """404: this stage turned the task-token routes off."""


class ExecutionAlreadyExists(ApiError):
    """409: an execution with this name exists with other input, or has ended."""


class ExecutionNotRedrivable(ApiError):
    """409: the execution cannot be redriven."""


class StateMachineDeleting(ApiError):
    """409: the state machine is being deleted and starts nothing new."""


class ExecutionLimitExceeded(ApiError):
    """429: the account's quota of open executions is used up (a quota, not a rate: not retried)."""


class KmsAccessDenied(ApiError):
    """500: the gateway's role may not use the state machine's KMS key."""


class KmsKeyUnavailable(ApiError):
    """503: the state machine's KMS key is disabled or pending deletion (not retried)."""


class TaskTimedOut(ApiError):
    """410: the task the token belongs to has timed out."""


class InputTooLarge(ApiError):
    """413: the input or output exceeds Step Functions' 256 KiB limit."""


class UnsupportedMediaType(ApiError):
    """415: the request's Content-Type is not JSON."""


class Throttled(ApiError):
    """429: Step Functions throttled the call or hit an execution limit (retried before raising)."""


class GatewayMisconfigured(ApiError):
    """500: the stage's configuration is invalid; the message names the problem."""


class InternalServerError(ApiError):
    """500: an unexpected failure in the gateway."""


class NotImplementedByBackend(ApiError):
    """501: the Step Functions endpoint in use does not implement the operation."""


class BackendError(ApiError):
    """502: Step Functions answered with an unexpected error."""


class BackendUnavailable(ApiError):
    """503: Step Functions could not be reached (retried before raising)."""


class BackendTimeout(ApiError):
    """504: Step Functions did not answer in time; the call may still take effect."""


class ApprovalsDisabled(ApiError):
    """404: the stage has no approvals inbox (APPROVALS is off)."""


class ApprovalNotFound(ApiError):
    """404: no such approval, or one you may not answer (the gateway does not say which)."""


class ApprovalAlreadyAnswered(ApiError):
    """409: the approval was answered before; the first answer stands."""


class ApprovalClosed(ApiError):
    """410: the approval's execution ended (or its task timed out) without an answer."""


# The explicit list of known codes. A code missing here still raises, as UnknownApiError.
ERROR_CLASSES: Dict[str, Type[ApiError]] = {
    cls.__name__: cls
    for cls in (
        ValidationError, InvalidArn, InvalidName, InvalidExecutionInput, InvalidToken, InvalidOutput,
        StateMachineTypeNotSupported, StateMachineNotFound, ExecutionNotFound, TaskNotFound,
        TaskRoutesDisabled, ExecutionAlreadyExists, ExecutionNotRedrivable, TaskTimedOut, InputTooLarge,
        UnsupportedMediaType, Throttled, GatewayMisconfigured, InternalServerError, NotImplementedByBackend,
        BackendError, BackendUnavailable, BackendTimeout, StateMachineDeleting, ExecutionLimitExceeded,
        KmsAccessDenied, KmsKeyUnavailable, AccessDenied, ApprovalsDisabled, ApprovalNotFound,
        ApprovalAlreadyAnswered, ApprovalClosed,
    )
}


def error_from_response(status: int, body, retry_after: Optional[float] = None) -> ApiError:
    """The exception for an error answer: by its `Code`, else API Gateway's `{"message"}` shape."""
    if isinstance(body, dict) and isinstance(body.get("Code"), str):
        code = body["Code"]
        message = str(body.get("Message") or "")
        return ERROR_CLASSES.get(code, UnknownApiError)(status, code, message, retry_after)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        cls = AccessDenied if status in (401, 403) else ApiGatewayError
        return cls(status, None, body["message"], retry_after)
    text = body if isinstance(body, str) else ""
    return ApiError(status, None, text[:500] or "(no error body)", retry_after)
