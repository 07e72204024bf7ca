"""Tests of the LocalEngine (local/engine/local_engine.py): its server, the demo workflows, findings left unpatched, its lifecycle."""
import json
import threading
import time

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from local.engine import APPROVAL_QUEUE_NAME, LocalEngine
from tests.demo_workflows import DEMO_MACHINES
from tests.local.engine.engine_support import (
    create_machine,
    history_types,
    task_token,
    wait_for_event,
    wait_until_done,
)


# --- engine -------------------------------------------------------------------------------


def test_moto_is_the_version_the_patches_were_written_for():
    # Every patch in local/engine/ targets moto 5.2.5 internals: re-check them all on upgrade.
    assert moto.__version__ == "5.2.5"


def test_start_listens_on_localhost_with_a_free_port(engine):
    assert engine.url.startswith("http://127.0.0.1:")
    assert int(engine.url.rsplit(":", 1)[1]) > 0


def test_deploy_returns_the_gateway_state_machine_config(machines):
    prefix = "arn:aws:states:us-east-1:123456789012:stateMachine:"
    assert {name: machines[name] for name in DEMO_MACHINES} == {
        "approval": {"arn": prefix + "approval", "type": "STANDARD"},
        "deadline": {"arn": prefix + "deadline", "type": "STANDARD"},
        "echo-express": {"arn": prefix + "echo-express", "type": "EXPRESS"},
        "hello": {"arn": prefix + "hello", "type": "STANDARD"},
        "slow": {"arn": prefix + "slow", "type": "STANDARD"},
    }


def test_deploy_twice_keeps_one_machine_each_and_updates_changed_definitions(
    engine, sfn, machines, tmp_path
):
    assert engine.deploy_demo_state_machines() == machines
    names = [sm["name"] for sm in sfn.list_state_machines()["stateMachines"]]
    assert sorted(set(names) & set(machines)) == sorted(machines)
    assert len(names) == len(set(names))

    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": True}}}
    (tmp_path / "redeploy-probe.asl.json").write_text(json.dumps(definition))
    first = engine.deploy_demo_state_machines(tmp_path)
    definition["States"]["A"]["Result"] = 2
    (tmp_path / "redeploy-probe.asl.json").write_text(json.dumps(definition))
    assert engine.deploy_demo_state_machines(tmp_path) == first
    described = sfn.describe_state_machine(stateMachineArn=first["redeploy-probe"]["arn"])
    assert json.loads(described["definition"])["States"]["A"]["Result"] == 2


def test_deploy_creates_the_approval_queue(sqs, machines):
    assert sqs.get_queue_url(QueueName=APPROVAL_QUEUE_NAME)["QueueUrl"].endswith(
        "/123456789012/" + APPROVAL_QUEUE_NAME
    )


# --- demos --------------------------------------------------------------------------------


def test_hello_greets_by_name(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input='{"name": "Ada"}')[
        "executionArn"
    ]
    described = wait_until_done(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"greeting": "Hello, Ada!"}


def test_hello_with_fail_true_fails_with_demo_failure(sfn, machines):
    arn = sfn.start_execution(
        stateMachineArn=machines["hello"]["arn"], input='{"name": "Ada", "fail": true}'
    )["executionArn"]
    described = wait_until_done(sfn, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "DemoFailure"
    assert described["cause"] == "The input asked the hello demo to fail."
    assert "output" not in described
    assert history_types(sfn, arn)[-2:] == ["FailStateEntered", "ExecutionFailed"]


def test_slow_waits_the_given_seconds_then_succeeds(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input='{"seconds": 1}')[
        "executionArn"
    ]
    described = wait_until_done(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"seconds": 1}
    assert (described["stopDate"] - described["startDate"]).total_seconds() >= 1


def test_slow_without_seconds_waits_five_seconds(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input="{}")["executionArn"]
    wait_entered = wait_for_event(sfn, arn, "WaitStateEntered")
    assert json.loads(wait_entered["stateEnteredEventDetails"]["input"]) == {"seconds": 5}
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=arn)


def test_approval_sends_token_and_input_to_the_queue_and_history(sqs, sfn, machines):
    arn = sfn.start_execution(
        stateMachineArn=machines["approval"]["arn"], input='{"order": 42}'
    )["executionArn"]
    token = task_token(sfn, arn)
    wait_for_event(sfn, arn, "TaskSubmitted")
    queue_url = sqs.get_queue_url(QueueName=APPROVAL_QUEUE_NAME)["QueueUrl"]
    bodies = [
        json.loads(message["Body"])
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
    ]
    assert {"taskToken": token, "input": {"order": 42}} in bodies
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=arn)


def test_approval_answered_with_task_success_outputs_the_answer(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["approval"]["arn"], input='{"order": 1}')[
        "executionArn"
    ]
    sfn.send_task_success(taskToken=task_token(sfn, arn), output='{"approved": true}')
    described = wait_until_done(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"approved": True}


def test_approval_answered_with_task_failure_fails_with_error_and_cause(sfn, machines):
    # Patch 4: moto's response dropped SendTaskFailure's cause.
    arn = sfn.start_execution(stateMachineArn=machines["approval"]["arn"], input='{"order": 2}')[
        "executionArn"
    ]
    sfn.send_task_failure(
        taskToken=task_token(sfn, arn), error="Rejected", cause="Budget exceeded"
    )
    described = wait_until_done(sfn, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "Rejected"
    assert described["cause"] == "Budget exceeded"


# --- not patched: findings that a moto upgrade should revisit -----------------------------------


def test_list_executions_pages_by_100_newest_first(sfn):
    arn = create_machine(sfn, "list-probe", {"A": {"Type": "Pass", "End": True}}, "A")
    started = [
        sfn.start_execution(stateMachineArn=arn, name=f"run-{i:03d}")["executionArn"]
        for i in range(105)
    ]
    first = sfn.list_executions(stateMachineArn=arn)
    second = sfn.list_executions(stateMachineArn=arn, nextToken=first["nextToken"])
    assert (len(first["executions"]), len(second["executions"])) == (100, 5)
    assert "nextToken" not in second
    listed = [e["executionArn"] for e in first["executions"] + second["executions"]]
    assert listed == started[::-1]
    small = sfn.list_executions(stateMachineArn=arn, maxResults=2)
    assert [e["name"] for e in small["executions"]] == ["run-104", "run-103"]
    assert small["nextToken"]


# --- lifecycle -----------------------------------------------------------------------------------


def test_stop_returns_quickly_while_an_execution_waits_on_its_token(engine):
    with LocalEngine().start() as other:
        other_sfn = other.client()
        arn = other.deploy_demo_state_machines()["approval"]["arn"]
        execution_arn = other_sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        task_token(other_sfn, execution_arn)
        assert other_sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
        stopper = threading.Thread(target=other.stop)
        started = time.monotonic()
        stopper.start()
        stopper.join(timeout=5)
        assert not stopper.is_alive()
        assert time.monotonic() - started < 5
    with pytest.raises(EndpointConnectionError):
        boto3.client(
            "stepfunctions",
            endpoint_url=other.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 0}),
        ).list_state_machines()
