"""local/engine/stop_execution.py: StopExecution records the abort as AWS does."""
import datetime
import time

import pytest
from botocore.exceptions import ClientError

from tests.local.engine.engine_support import error_code, history_types, task_token, wait_for_event


# --- patch 3: StopExecution ------------------------------------------------------------------


def test_stop_execution_waiting_on_a_token_aborts_it_with_error_and_cause(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["approval"]["arn"], input='{"order": 3}')[
        "executionArn"
    ]
    token = task_token(sfn, arn)
    wait_for_event(sfn, arn, "TaskSubmitted")

    stopped = sfn.stop_execution(executionArn=arn, error="Cancelled", cause="by the caller")

    assert isinstance(stopped["stopDate"], datetime.datetime)
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert described["stopDate"] == stopped["stopDate"]
    assert (described["error"], described["cause"]) == ("Cancelled", "by the caller")
    last = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1)["events"][0]
    assert last["type"] == "ExecutionAborted"
    assert last["executionAbortedEventDetails"] == {"error": "Cancelled", "cause": "by the caller"}
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=token, output="{}")
    assert error_code(excinfo) == "TaskTimedOut"
    time.sleep(0.3)  # the woken worker must not add TaskTimedOut/ExecutionFailed
    assert history_types(sfn, arn)[-2:] == ["TaskSubmitted", "ExecutionAborted"]
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_stop_execution_during_a_wait_ends_history_at_execution_aborted(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input='{"seconds": 30}')[
        "executionArn"
    ]
    wait_for_event(sfn, arn, "WaitStateEntered")
    stopped = sfn.stop_execution(executionArn=arn)
    time.sleep(0.3)
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert described["stopDate"] == stopped["stopDate"]
    assert "error" not in described and "cause" not in described
    assert history_types(sfn, arn)[-2:] == ["WaitStateEntered", "ExecutionAborted"]


def test_stop_execution_during_a_wait_keeps_error_and_cause_in_describe_as_aws_does(sfn, machines):
    # Measured on AWS (floci-io/floci#2734): a Wait stopped with --error Manual --cause probe
    # describes as ["ABORTED", "Manual", "probe"], and still does minutes later. Plain moto
    # writes error "" and cause "" instead.
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input='{"seconds": 30}')[
        "executionArn"
    ]
    wait_for_event(sfn, arn, "WaitStateEntered")
    sfn.stop_execution(executionArn=arn, error="Manual", cause="probe")
    time.sleep(0.3)
    described = sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Manual", "probe")
    last = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1)["events"][0]
    assert last["executionAbortedEventDetails"] == {"error": "Manual", "cause": "probe"}


def test_stop_execution_right_after_start_aborts_it(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["approval"]["arn"], input="{}")[
        "executionArn"
    ]
    stopped = sfn.stop_execution(executionArn=arn, error="Early")
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert described["error"] == "Early"
    assert described["stopDate"] == stopped["stopDate"]
