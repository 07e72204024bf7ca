"""What every response patch checks first: is this moto's executing (parser) backend?"""
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse


def executes(response: StepFunctionResponse) -> bool:
    # Response patches must leave plain mock_aws (execute_state_machine off) untouched:
    # the default backend's methods have other signatures.
    return isinstance(response.stepfunction_backend, StepFunctionsParserBackend)
