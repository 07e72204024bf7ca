"""RedriveExecution, absent from moto 5.2.5: a clear UnknownOperationException instead of an HTML 500."""
from moto.core.exceptions import AWSError
from moto.stepfunctions.responses import StepFunctionResponse


class _UnknownOperation(AWSError):
    TYPE = "UnknownOperationException"


def patch_redrive_not_implemented() -> None:
    # moto 5.2.5 has no RedriveExecution: its dispatcher raises NotImplementedError, which
    # reaches clients as an HTML 500 that botocore retries. Answer with a clear error code
    # instead, which the gateway maps to 501.
    if hasattr(StepFunctionResponse, "redrive_execution"):
        return

    def redrive_execution(self):
        raise _UnknownOperation("The local engine (moto 5.2.5) does not implement RedriveExecution.")

    StepFunctionResponse.redrive_execution = redrive_execution
