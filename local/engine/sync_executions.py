"""StartSyncExecution, which moto 5.2.5 models but does not serve (EXPRESS machines, run to the end)."""
import datetime
import json
import uuid

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.api import StateMachineType
from moto.stepfunctions.parser.backend.execution import SyncExecution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from local.engine.parser_backend import executes


class _StateMachineTypeNotSupported(AWSError):
    # moto's parser/api.py class of this name sets `code`, not TYPE: clients get no error code.
    TYPE = "StateMachineTypeNotSupported"


def patch_start_sync_execution() -> None:
    # moto 5.2.5 ships SyncExecution (parser/backend/execution.py) but neither
    # StepFunctionResponse nor StepFunctionsParserBackend has start_sync_execution.
    def start_sync_execution(backend, state_machine_arn, name, execution_input):
        state_machine = backend.describe_state_machine(state_machine_arn)
        if state_machine.type != StateMachineType.EXPRESS:
            raise _StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine"
            )
        try:
            json.loads(execution_input)
        except ValueError as err:
            message = f"Invalid State Machine Execution Input: '{err}'"
            raise InvalidExecutionInput(message) from err
        if name:
            backend._validate_name(name)
        name = name or str(uuid.uuid4())
        # Express executions are not stored, as in AWS (no Describe/List for them).
        execution = SyncExecution(
            name=name,
            sm_type=StateMachineType.EXPRESS,
            role_arn=state_machine.roleArn,
            exec_arn=(
                f"arn:aws:states:{backend.region_name}:{backend.account_id}:express:"
                f"{state_machine.name}:{name}:{uuid.uuid4()}"
            ),
            account_id=backend.account_id,
            region_name=backend.region_name,
            state_machine=state_machine,
            start_date=datetime.datetime.now(tz=datetime.timezone.utc),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=execution_input,
        )
        execution.start()
        return execution

    def handle(self):
        if not executes(self):
            raise AWSError("StartSyncExecution needs execute_state_machine", "UnsupportedOperation")
        execution = self.stepfunction_backend.start_sync_execution(
            self._get_param("stateMachineArn"),
            self._get_param("name"),
            self._get_param("input", if_none="{}"),
        )
        output = execution.to_start_sync_execution_output()
        output["status"] = output["status"].value
        output.pop("traceHeader", None)
        return ActionResult(output)

    StepFunctionsParserBackend.start_sync_execution = start_sync_execution
    StepFunctionResponse.start_sync_execution = handle
