"""local/engine/executions.py: generated names, inputDetails and EXPRESS execution ARNs as AWS gives them."""
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.local.engine.engine_support import error_code, wait_until_done


# --- patch 5: StartExecution without a name ---------------------------------------------------


def test_start_execution_without_name_gets_a_uuid_name(sfn, machines):
    arns = [
        sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input='{"name": "X"}')[
            "executionArn"
        ]
        for _ in range(2)
    ]
    names = [sfn.describe_execution(executionArn=arn)["name"] for arn in arns]
    assert names[0] != names[1]
    for arn, name in zip(arns, names):
        assert str(uuid.UUID(name)) == name
        assert arn.endswith(":execution:hello:" + name)


def test_start_execution_with_an_invalid_name_is_rejected(sfn, machines):
    with pytest.raises(ClientError) as excinfo:
        sfn.start_execution(stateMachineArn=machines["hello"]["arn"], name="bad name")
    assert error_code(excinfo) == "InvalidName"


# --- patch 10: DescribeExecution's inputDetails --------------------------------------------------


def test_describe_execution_has_input_details_and_output_details_once_succeeded(sfn, machines):
    # AWS: inputDetails {"included": true} on every description, outputDetails with the output.
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input='{"seconds": 1}')[
        "executionArn"
    ]
    running = sfn.describe_execution(executionArn=arn)
    assert running["status"] == "RUNNING"
    assert running["inputDetails"] == {"included": True}
    assert "outputDetails" not in running
    done = wait_until_done(sfn, arn)
    assert (done["inputDetails"], done["outputDetails"]) == ({"included": True}, {"included": True})


# --- patch 11: EXPRESS executions started asynchronously ----------------------------------------


def test_start_execution_of_an_express_machine_gets_an_express_arn(sfn, machines):
    # AWS: arn:aws:states:<region>:<account>:express:<machine>:<name>:<execution id>.
    started = sfn.start_execution(
        stateMachineArn=machines["echo-express"]["arn"], name="async-express", input='{"n": 1}'
    )
    prefix = "arn:aws:states:us-east-1:123456789012:express:echo-express:async-express:"
    assert started["executionArn"].startswith(prefix)
    assert str(uuid.UUID(started["executionArn"][len(prefix):])) == started["executionArn"][len(prefix):]
    standard = sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input="{}")
    assert ":execution:hello:" in standard["executionArn"]
