"""What the local engine's tests do again and again: create a machine, wait for an end or an event, read a token."""
import json
import time

from local.engine import DEMO_ROLE_ARN

POLL_SECONDS = 15
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def create_machine(sfn, name, states, start_at, sm_type="STANDARD"):
    definition = json.dumps({"StartAt": start_at, "States": states})
    return sfn.create_state_machine(
        name=name, definition=definition, roleArn=DEMO_ROLE_ARN, type=sm_type
    )["stateMachineArn"]


def wait_until_done(sfn, execution_arn):
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL:
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} still RUNNING after {POLL_SECONDS}s")


def wait_for_event(sfn, execution_arn, event_type):
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        found = [event for event in events if event["type"] == event_type]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no {event_type} in {execution_arn} after {POLL_SECONDS}s")


def task_token(sfn, execution_arn):
    scheduled = wait_for_event(sfn, execution_arn, "TaskScheduled")
    parameters = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])
    return parameters["MessageBody"]["taskToken"]


def history_types(sfn, execution_arn):
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [event["type"] for event in events]


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]
