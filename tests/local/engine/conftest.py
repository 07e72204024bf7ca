"""The engine the tests of local/engine/ share: one moto server for the whole package, and its demo workflows."""
import boto3
import pytest

from local.engine import LocalEngine
from tests.local.engine.engine_support import wait_until_done


@pytest.fixture(scope="package")
def engine():
    engine = LocalEngine(port=0).start()
    yield engine
    engine.stop()


@pytest.fixture(scope="package")
def machines(engine):
    return engine.deploy_demo_state_machines()


@pytest.fixture(scope="package")
def sfn(engine):
    return engine.client()


@pytest.fixture
def sqs(engine):
    """An SQS client on the engine, where the approval demo sends its tokens."""
    return boto3.client(
        "sqs",
        endpoint_url=engine.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="package")
def hello_execution(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input='{"name": "Bo"}')[
        "executionArn"
    ]
    wait_until_done(sfn, arn)
    return arn
