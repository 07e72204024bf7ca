"""The local engine keeps numbers as written (local/engine/exact_numbers.py), and never writes NaN or Infinity."""
import json
import time

import pytest

from chalicelib.serialization import loads as exact_loads
from local.engine import DEMO_ROLE_ARN, LocalEngine
from local.engine.exact_numbers import ExactFloat, to_json_text

# Numbers a float cannot hold exactly, or at all, and a trailing zero a float would drop.
EXACT_INPUT = ('{"x": 12345678901234567.89, "huge": 1e400, "int": 123456789012345678901234567890, '
               '"z": 1.10, "tiny": -0.0, "seconds": 0}')
EXACT_FRAGMENTS = ('12345678901234567.89', '1e400', '123456789012345678901234567890', '1.10', '-0.0')


@pytest.fixture(scope="module")
def engine():
    engine = LocalEngine(port=0).start()
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def machines(engine):
    return engine.deploy_demo_state_machines()


@pytest.fixture(scope="module")
def sfn(engine):
    return engine.client()


def ended(sfn, arn, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running after {timeout} s")


def assert_exact(text: str) -> None:
    for fragment in EXACT_FRAGMENTS:
        assert fragment in text, (fragment, text)
    assert "Infinity" not in text and "NaN" not in text
    exact_loads(text)  # valid JSON, numbers and all


def test_numbers_passing_through_states_unchanged_keep_their_text_in_describe_and_history(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input=EXACT_INPUT)["executionArn"]
    described = ended(sfn, arn)

    assert described["status"] == "SUCCEEDED"
    assert_exact(described["output"])
    assert_exact(described["input"])
    exits = [event["stateExitedEventDetails"]["output"]
             for event in sfn.get_execution_history(executionArn=arn)["events"] if "stateExitedEventDetails" in event]
    assert exits
    for output in exits:
        assert_exact(output)


def test_a_number_too_large_for_a_float_comes_back_as_written_not_infinity(sfn, machines):
    # Issue 19.7: {"x": 1e400} through slow came back as {"x": Infinity}, which is not JSON.
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input='{"x": 1e400, "seconds": 0}')["executionArn"]

    output = ended(sfn, arn)["output"]

    assert output.replace(" ", "") == '{"x":1e400,"seconds":0}'


def test_an_express_runs_result_keeps_its_numbers(sfn, machines):
    ran = sfn.start_sync_execution(stateMachineArn=machines["echo-express"]["arn"], input=EXACT_INPUT)

    assert ran["status"] == "SUCCEEDED", ran
    assert_exact(ran["output"])


def test_a_task_answer_keeps_its_numbers(sfn, engine):
    sqs_free = {
        "Wait": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                 "Parameters": {"QueueUrl": _queue(engine), "MessageBody": {"token.$": "$$.Task.Token"}},
                 "End": True},
    }
    machine = sfn.create_state_machine(name="exact-answer", roleArn=DEMO_ROLE_ARN,
                                       definition=json.dumps({"StartAt": "Wait", "States": sqs_free}))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    token = _token(sfn, arn)

    sfn.send_task_success(taskToken=token, output='{"total": 12345678901234567.89, "huge": 1e400, "z": 1.10}')

    output = ended(sfn, arn)["output"]
    assert output.replace(" ", "") == '{"total":12345678901234567.89,"huge":1e400,"z":1.10}'


def test_exact_numbers_still_compute_in_choice_rules(sfn):
    states = {
        "Big": {"Type": "Choice", "Choices": [
            {"Variable": "$.x", "NumericGreaterThan": 12345678901234567, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "greater", "End": True},
        "No": {"Type": "Pass", "Result": "not greater", "End": True},
    }
    machine = sfn.create_state_machine(name="exact-choice", roleArn=DEMO_ROLE_ARN,
                                       definition=json.dumps({"StartAt": "Big", "States": states}))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input='{"x": 12345678901234569.5}')["executionArn"]

    assert ended(sfn, arn)["output"] == '"greater"'


def test_the_writer_never_writes_nan_or_infinity_for_a_computed_number():
    computed = {"inf": float("inf"), "nan": float("nan"), "minus": float("-inf"), "plain": 0.1,
                "kept": ExactFloat("1e400")}

    assert to_json_text(computed, separators=(",", ":")) == '{"inf":null,"nan":null,"minus":null,"plain":0.1,"kept":1e400}'


def _queue(engine):
    import boto3

    sqs = boto3.client("sqs", endpoint_url=engine.url, region_name=engine.region, **engine.credentials)
    return sqs.create_queue(QueueName="exact-answers")["QueueUrl"]


def _token(sfn, arn, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in sfn.get_execution_history(executionArn=arn)["events"]:
            if event["type"] == "TaskScheduled":
                return json.loads(event["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]
        time.sleep(0.05)
    raise AssertionError("the task was never scheduled")
