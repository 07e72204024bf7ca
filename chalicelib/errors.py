"""Domain errors: what went wrong, in the gateway's words (chalicelib/http/error_responses.py maps them to HTTP)."""
from chalice import ChaliceUnhandledError


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
