"""Step Functions' errors as domain errors: the one table from its error codes (and botocore's faults)."""
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

from chalicelib.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ExecutionAlreadyExists,
    ExecutionLimitExceeded,
    ExecutionNotFound,
    ExecutionNotRedrivable,
    GatewayError,
    GatewayMisconfigured,
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
    TaskTimedOut,
    Throttled,
    ValidationError,
)

LOG = logging.getLogger("sfn_gateway")

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
