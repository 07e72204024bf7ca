"""StartExecution and DescribeExecution: generated names, inputDetails and EXPRESS execution ARNs as AWS gives them."""
import uuid

from moto.stepfunctions.parser.api import StateMachineType
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from local.engine.parser_backend import executes


def patch_start_execution_name() -> None:
    # StepFunctionsParserBackend.start_execution uses the name as given, so no name
    # gives an execution called "None" (and a second one clashes); it also skips name checks.
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self, state_machine_arn, name=None, execution_input=None, trace_header=None
    ):
        if name:
            self._validate_name(name)
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    StepFunctionsParserBackend.start_execution = start_execution


def patch_describe_execution_input_details() -> None:
    # AWS's DescribeExecution always carries inputDetails {"included": true} (outputDetails
    # too once there is output); moto's response builds its dict without inputDetails.
    original = StepFunctionResponse.describe_execution

    def describe_execution(self):
        result = original(self)
        if executes(self):
            result.result["inputDetails"] = {"included": True}
        return result

    StepFunctionResponse.describe_execution = describe_execution


def patch_express_execution_arns() -> None:
    # AWS names every execution of an EXPRESS machine
    # arn:<partition>:states:<region>:<account>:express:<machine>:<name>:<id>, also when started
    # by StartExecution; moto's start_execution always writes :execution:<machine>:<name>.
    # Execution.start runs before the worker reads the ARN ($$.Execution.Id), so rename there.
    original = Execution.start

    def start(self):
        if self.state_machine.type == StateMachineType.EXPRESS and ":execution:" in self.exec_arn:
            prefix, rest = self.exec_arn.split(":execution:", 1)
            self.exec_arn = self.execution_arn = f"{prefix}:express:{rest}:{uuid.uuid4()}"
        original(self)

    Execution.start = start
