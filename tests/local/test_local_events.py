"""local/events.py: the local engine publishes EventBridge-shaped status changes and invokes a handler like async Lambda."""
import json
import threading
import time

import pytest

from local.engine import LocalEngine
from local.events import EVENT_PAYLOAD_LIMIT, LocalWebhooks

PROJECT_STATEMACHINES = "statemachines"


@pytest.fixture(scope="module")
def engine():
    with LocalEngine() as running:
        running.start()
        yield running


@pytest.fixture(scope="module")
def machines(engine):
    return engine.deploy_demo_state_machines(PROJECT_STATEMACHINES)


class Collector:
    def __init__(self, fail=False):
        self.events, self.contexts, self.fail = [], [], fail
        self.arrived = threading.Condition()

    def __call__(self, event, context):
        with self.arrived:
            self.events.append(event)
            self.contexts.append(context)
            self.arrived.notify_all()
        if self.fail:
            raise RuntimeError("receiver down")

    def for_execution(self, arn, timeout=8.0):
        with self.arrived:
            self.arrived.wait_for(lambda: any(e["detail"]["executionArn"] == arn for e in self.events), timeout)
        time.sleep(0.5)  # a second event for the same end would show up by now
        return [e for e in self.events if e["detail"]["executionArn"] == arn]


@pytest.fixture
def collector(engine):
    handler = Collector()
    events = LocalWebhooks(engine.url).attach(handler)
    yield handler
    events.detach()


def test_a_succeeded_execution_publishes_one_eventbridge_shaped_event(engine, machines, collector):
    sfn = engine.client()
    arn = sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input='{"name": "Ada"}')["executionArn"]
    [event] = collector.for_execution(arn)
    assert (event["source"], event["detail-type"], event["resources"]) == ("aws.states", "Step Functions Execution Status Change", [arn])
    detail = event["detail"]
    assert (detail["status"], detail["stateMachineArn"], detail["name"]) == ("SUCCEEDED", machines["hello"]["arn"], arn.rsplit(":", 1)[1])
    assert json.loads(detail["input"]) == {"name": "Ada"} and json.loads(detail["output"]) == {"greeting": "Hello, Ada!"}
    assert detail["inputDetails"] == detail["outputDetails"] == {"included": True}
    described = sfn.describe_execution(executionArn=arn)
    assert detail["stopDate"] == int(described["stopDate"].timestamp() * 1000)
    assert detail["startDate"] == int(described["startDate"].timestamp() * 1000)
    # the handler got a Lambda-like context with the time it has left
    assert 0 < collector.contexts[-1].get_remaining_time_in_millis() <= 29_000


def test_a_stopped_execution_publishes_aborted_exactly_once(engine, machines, collector):
    sfn = engine.client()
    arn = sfn.start_execution(stateMachineArn=machines["approval"]["arn"], input="{}")["executionArn"]
    time.sleep(0.3)
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="by test")
    events = collector.for_execution(arn)
    time.sleep(1.0)
    events = [e for e in collector.events if e["detail"]["executionArn"] == arn]
    assert [(e["detail"]["status"], e["detail"]["error"], e["detail"]["cause"]) for e in events] == [("ABORTED", "Cancelled", "by test")]


def test_express_runs_publish_nothing(engine, machines, collector):
    sfn = engine.client()
    result = sfn.start_sync_execution(stateMachineArn=machines["echo-express"]["arn"], input='{"a": 1}')
    assert result["status"] == "SUCCEEDED"
    time.sleep(0.5)
    assert [e for e in collector.events if "echo-express" in e["detail"]["stateMachineArn"]] == []


def test_payloads_over_eventbridges_limit_are_left_out_and_flagged(engine, machines, collector):
    sfn = engine.client()
    name = "B" * (EVENT_PAYLOAD_LIMIT // 2)
    arn = sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input=json.dumps({"name": name}))["executionArn"]
    [event] = collector.for_execution(arn)
    detail = event["detail"]
    assert (detail["output"], detail["outputDetails"]) == (None, {"included": False})
    assert json.loads(detail["input"]) == {"name": name} and detail["inputDetails"] == {"included": True}


def test_a_failing_handler_ends_as_a_lambda_on_failure_record_in_sqs(engine, machines):
    handler = Collector(fail=True)
    events = LocalWebhooks(engine.url).attach(handler)
    try:
        events.failures()  # start from an empty queue
        arn = engine.client().start_execution(stateMachineArn=machines["hello"]["arn"], input='{"name": "Bo"}')["executionArn"]
        handler.for_execution(arn)
        assert events.wait_idle(5)
        [record] = [r for r in events.failures() if r["requestPayload"]["detail"]["executionArn"] == arn]
    finally:
        events.detach()
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"] == {"errorMessage": "receiver down", "errorType": "RuntimeError"}
    assert record["requestPayload"]["detail"]["status"] == "SUCCEEDED"
