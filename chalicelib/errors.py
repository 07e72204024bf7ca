"""Domain errors, and the one table that maps them (and Step Functions' errors) to HTTP."""
import logging

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from chalice import ChaliceUnhandledError, Response

LOG = logging.getLogger("sfn_gateway")


# Subclassing ChaliceUnhandledError lets these propagate out of the view to the
# error-mapping middleware instead of being turned into Chalice's bare 500.
class GatewayError(ChaliceUnhandledError):
    """Base of every error the gateway reports to its caller."""


class ValidationError(GatewayError):
    """The request is malformed: bad JSON, wrong type, unknown field, bad value."""


class InvalidArn(GatewayError):
    """An ARN in the request is malformed."""


class InvalidName(GatewayError):
    """An execution name breaks Step Functions' naming rules."""


class InvalidExecutionInput(GatewayError):
    """Step Functions rejected the execution input."""


class InvalidToken(GatewayError):
    """A task token is malformed or unknown to Step Functions."""


class InvalidOutput(GatewayError):
    """Step Functions rejected a task's output."""


class InputTooLarge(GatewayError):
    """A payload exceeds Step Functions' 256 KiB limit."""


class StateMachineNotFound(GatewayError):
    """The state machine is not in this stage's allow-list (or no longer exists)."""


class ExecutionNotFound(GatewayError):
    """The execution does not exist."""


class ExecutionAlreadyExists(GatewayError):
    """An execution with this name exists with other input, or has already ended."""


class StateMachineTypeNotSupported(GatewayError):
    """The operation does not apply to this type of state machine."""


class TaskNotFound(GatewayError):
    """The task token belongs to no waiting task."""


class TaskTimedOut(GatewayError):
    """The task the token belongs to has timed out."""


class StateMachineDeleting(GatewayError):
    """The state machine is being deleted and starts nothing new."""


class ExecutionLimitExceeded(GatewayError):
    """The account's quota of open executions is used up (a quota, not a rate)."""


class KmsAccessDenied(GatewayError):
    """The gateway's role may not use the state machine's KMS key."""


class KmsKeyUnavailable(GatewayError):
    """The state machine's KMS key is disabled or pending deletion."""


class ExecutionNotRedrivable(GatewayError):
    """The execution cannot be redriven."""


class TaskRoutesDisabled(GatewayError):
    """This stage has turned the task-token routes off."""


class NotImplementedByBackend(GatewayError):
    """The Step Functions endpoint in use does not implement the operation."""


class Throttled(GatewayError):
    """Step Functions throttled the call or hit an execution limit."""


class BackendUnavailable(GatewayError):
    """Step Functions could not be reached."""


class BackendTimeout(GatewayError):
    """Step Functions did not answer in time."""


class BackendError(GatewayError):
    """Step Functions answered with an error the gateway does not expect."""


class GatewayMisconfigured(GatewayError):
    """The stage's configuration is invalid."""


class AccessDenied(GatewayError):
    """The stage's access rules do not let this caller do this operation on this state machine."""


class ApprovalsDisabled(GatewayError):
    """This stage has no approvals inbox (APPROVALS is off)."""


class ApprovalNotFound(GatewayError):
    """No approval with this id that the caller may answer (unknown and not-yours look the same)."""


class ApprovalAlreadyAnswered(GatewayError):
    """The approval was answered before; the first answer stands."""


class ApprovalClosed(GatewayError):
    """The approval's execution ended (or its task timed out) without an answer."""


# Step Functions error code -> domain error. Anything not listed becomes BackendError.
_SFN_ERRORS = {
    "ExecutionDoesNotExist": ExecutionNotFound,
    "StateMachineDoesNotExist": StateMachineNotFound,
    "ExecutionAlreadyExists": ExecutionAlreadyExists,
    "InvalidArn": InvalidArn,
    "InvalidName": InvalidName,
    "InvalidExecutionInput": InvalidExecutionInput,
    "InvalidToken": InvalidToken,
    "InvalidOutput": InvalidOutput,
    "ValidationException": ValidationError,
    "ThrottlingException": Throttled,
    "KmsThrottlingException": Throttled,
    "ExecutionLimitExceeded": ExecutionLimitExceeded,
    "StateMachineDeleting": StateMachineDeleting,
    "KmsAccessDeniedException": KmsAccessDenied,
    "KmsInvalidStateException": KmsKeyUnavailable,
    # A version or alias that does not exist (Step Functions' own word for it).
    "ResourceNotFound": StateMachineNotFound,
    "StateMachineTypeNotSupported": StateMachineTypeNotSupported,
    "TaskDoesNotExist": TaskNotFound,
    "TaskTimedOut": TaskTimedOut,
    "ExecutionNotRedrivable": ExecutionNotRedrivable,
}

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
    ApprovalAlreadyAnswered: (409, None),
    ExecutionAlreadyExists: (409, None),
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


# Step Functions' own words do not say what to do for these; the gateway's do.
_GUIDANCE = {
    "TaskTimedOut": "The task this token belongs to is closed: it was already answered, timed out, or its "
                    "execution ended. Nothing is waiting for an answer any more.",
    "TaskDoesNotExist": "No task is waiting on this token; check that the workflow reached its waiting state.",
    "ExecutionLimitExceeded": "The account's quota of open executions is reached; start again once running "
                              "executions end, or ask AWS to raise the quota.",
    "StateMachineDeleting": "The state machine is being deleted and accepts no new executions.",
    "KmsAccessDeniedException": "The gateway's role may not use the state machine's KMS key: set kmsKeyArn for it "
                                "in STATE_MACHINES and regenerate the policy (make policy).",
    "KmsInvalidStateException": "The state machine's KMS key is disabled or pending deletion; re-enable it.",
}
_CONFIGURATION_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError)


# Step Functions says InvalidToken both for task tokens and for paging tokens.
_INVALID_TASK_TOKEN = ("The task token is malformed or unknown to Step Functions; send it exactly as the workflow "
                       "received it (from $$.Task.Token).")
_INVALID_PAGE_TOKEN = "nextToken is not valid for this listing; pass back the nextToken of the previous page unchanged."


def _message(code: str, message: str, operation: str | None) -> str:
    guidance = _GUIDANCE.get(code)
    if code == "InvalidToken":
        guidance = _INVALID_TASK_TOKEN if (operation or "").startswith("send_task") else _INVALID_PAGE_TOKEN
    if guidance is None:
        return message
    return f"{guidance} (Step Functions: {message})"


def translate_backend_error(err: Exception, operation: str | None = None) -> GatewayError:
    """Turn a botocore exception raised by a Step Functions call into a domain error."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message") or code
        if code in _SFN_ERRORS:
            return _SFN_ERRORS[code](_message(code, message, operation))
        # An emulator lacking an operation may answer HTTP 501 under any code (LocalStack:
        # InternalFailure, "not yet implemented"); AWS itself never answers 501.
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("UnknownOperationException", "InvalidAction", "NotImplemented") or status == 501:
            return NotImplementedByBackend(
                f"The Step Functions endpoint does not implement this operation ({code})."
            )
        request_id = err.response.get("ResponseMetadata", {}).get("RequestId", "unknown")
        LOG.error("Unexpected Step Functions error %s (request id %s): %s", code, request_id, message)
        return BackendError(
            f"Step Functions returned an unexpected error {code} (request id {request_id})."
        )
    if isinstance(err, ReadTimeoutError):
        return BackendTimeout("Step Functions did not answer in time; the call may still take effect.")
    if isinstance(err, _CONFIGURATION_ERRORS):
        # Retrying cannot help: the function has no credentials or region.
        LOG.error("Gateway cannot call Step Functions: %s", err)
        return GatewayMisconfigured(
            f"The gateway cannot sign calls to Step Functions ({type(err).__name__}): give its Lambda function "
            "a role, or set AWS credentials and a region when running it elsewhere."
        )
    if isinstance(err, BotoConnectionError):
        return BackendUnavailable("Step Functions could not be reached; retry later.")
    if isinstance(err, BotoCoreError):
        # botocore's text names the endpoint URL: log it, do not show it to callers.
        LOG.error("Unexpected botocore error: %s", err)
        return BackendError(f"The call to Step Functions failed ({type(err).__name__}); retry later.")
    raise err


def error_response(err: GatewayError) -> Response:
    """Render a domain error as Chalice's error shape with its HTTP status."""
    status, retry_after = _HTTP_STATUS[type(err)]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Response(
        body={"Code": type(err).__name__, "Message": str(err)},
        status_code=status,
        headers=headers,
    )
