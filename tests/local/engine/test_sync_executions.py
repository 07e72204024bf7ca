"""local/engine/sync_executions.py: StartSyncExecution as AWS serves it."""
import datetime
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.local.engine.engine_support import create_machine, error_code


# --- patch 1: StartSyncExecution --------------------------------------------------------------


def test_start_sync_execution_runs_echo_express_and_returns_the_aws_shape(sfn, machines):
    before = datetime.datetime.now(datetime.timezone.utc)
    result = sfn.start_sync_execution(
        stateMachineArn=machines["echo-express"]["arn"], name="sync-1", input='{"a": [1, 2]}'
    )
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {
        "echo": {"a": [1, 2]},
        "inputJson": '{"a":[1,2]}',
        "executionName": "sync-1",
    }
    assert result["name"] == "sync-1"
    assert result["stateMachineArn"] == machines["echo-express"]["arn"]
    assert result["executionArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:express:echo-express:sync-1:"
    )
    assert json.loads(result["input"]) == {"a": [1, 2]}
    assert before - datetime.timedelta(seconds=1) <= result["startDate"] <= result["stopDate"]
    assert "error" not in result and "cause" not in result


def test_start_sync_execution_without_name_gets_a_uuid_name(sfn, machines):
    result = sfn.start_sync_execution(stateMachineArn=machines["echo-express"]["arn"])
    assert str(uuid.UUID(result["name"])) == result["name"]
    assert json.loads(result["output"])["echo"] == {}


def test_start_sync_execution_of_a_failing_express_machine_returns_error_and_cause(sfn):
    arn = create_machine(
        sfn,
        "sync-fail-probe",
        {"Boom": {"Type": "Fail", "Error": "ProbeError", "Cause": "probe cause"}},
        "Boom",
        sm_type="EXPRESS",
    )
    result = sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    assert result["status"] == "FAILED"
    assert result["error"] == "ProbeError"
    assert result["cause"] == "probe cause"
    assert "output" not in result


def test_start_sync_execution_of_a_standard_machine_is_rejected(sfn, machines):
    with pytest.raises(ClientError) as excinfo:
        sfn.start_sync_execution(stateMachineArn=machines["hello"]["arn"], input="{}")
    assert error_code(excinfo) == "StateMachineTypeNotSupported"


def test_start_sync_execution_with_invalid_input_is_rejected(sfn, machines):
    with pytest.raises(ClientError) as excinfo:
        sfn.start_sync_execution(stateMachineArn=machines["echo-express"]["arn"], input="nope")
    assert error_code(excinfo) == "InvalidExecutionInput"
