"""The app against moto's in-process Step Functions, which really runs the ASL definitions."""
import json
import time
from urllib.parse import quote

import boto3
import pytest
from moto import mock_aws

ROLE_ARN = "arn:aws:iam::123456789012:role/sfn-gateway-test"
GREETER = {
    "StartAt": "Greet",
    "States": {"Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "End": True}},
}
WAITER = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}


@pytest.fixture
def engine(make_client, aws_credentials):
    """moto's Step Functions with execution on, two state machines, and a client allow-listing them."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machines = {
            name: {"arn": sfn.create_state_machine(name=name, definition=json.dumps(asl), roleArn=ROLE_ARN)["stateMachineArn"], "type": "STANDARD"}
            for name, asl in (("greeter", GREETER), ("waiter", WAITER))
        }
        with make_client(state_machines=machines) as client:
            yield client


def wait_for_end(client, arn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.http.get("/executions/" + quote(arn, safe="")).json_body
        if body["status"] != "RUNNING":
            return body
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running after {timeout} s")


def start(client, state_machine, name, execution_input):
    body = json.dumps({"stateMachine": state_machine, "name": name, "input": execution_input})
    return client.http.post("/executions", body=body, headers={"Content-Type": "application/json"})


def test_started_execution_runs_to_success_with_real_output(engine):
    started = start(engine, "greeter", "ada-1", {"name": "Ada"})
    assert started.status_code == 201
    described = wait_for_end(engine, started.json_body["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert described["input"] == {"name": "Ada"}
    assert described["output"] == {"greeting": "Hello, Ada!"}


def test_same_name_and_input_while_running_returns_the_same_execution(engine):
    first = start(engine, "waiter", "once", {"k": 1})
    again = start(engine, "waiter", "once", {"k": 1})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json_body["executionArn"] == first.json_body["executionArn"]
    listed = engine.http.get("/executions?stateMachine=waiter").json_body["executions"]
    assert [execution["name"] for execution in listed] == ["once"]


def test_same_name_with_different_input_returns_409(engine):
    assert start(engine, "waiter", "twice", {"k": 1}).status_code == 201
    conflict = start(engine, "waiter", "twice", {"k": 2})
    assert conflict.status_code == 409
    assert conflict.json_body["Code"] == "ExecutionAlreadyExists"


def test_list_stop_and_history_of_a_real_execution(engine):
    arn = start(engine, "waiter", "to-stop", {}).json_body["executionArn"]
    listed = engine.http.get("/executions?stateMachine=waiter&status=RUNNING")
    assert listed.status_code == 200
    assert arn in [execution["executionArn"] for execution in listed.json_body["executions"]]

    stopped = engine.http.post(f"/executions/{quote(arn, safe='')}/stop")
    assert stopped.status_code == 200
    assert wait_for_end(engine, arn)["status"] == "ABORTED"

    history = engine.http.get(f"/executions/{arn}/history")
    assert history.status_code == 200
    events = history.json_body["events"]
    assert events[0]["type"] == "ExecutionStarted"
    assert events[0]["executionStartedEventDetails"]["input"] == {}


def test_unknown_execution_of_an_allow_listed_machine_returns_404(engine):
    arn = "arn:aws:states:us-east-1:123456789012:execution:greeter:never-started"
    response = engine.http.get("/executions/" + arn)
    assert response.status_code == 404
    assert response.json_body["Code"] == "ExecutionNotFound"
