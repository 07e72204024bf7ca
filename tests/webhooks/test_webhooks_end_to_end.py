"""Webhooks end to end: `python -m local.run` with WEBHOOK_URL pointing at a receiver in this test process.

Real executions on the local engine, its status-change events, the app's real handler, real HTTP
to the receiver, signatures verified with the standardwebhooks library, failures in the local SQS queue.
"""
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests
from requests_aws4auth import AWS4Auth

from local.events import FAILURE_QUEUE_NAME
from local.receiver import HANG, Receiver

PROJECT_DIR = Path(__file__).resolve().parents[2]
ACCESS_KEY, SECRET_KEY, REGION = "wh-key", "wh-secret", "us-east-1"
# The local "Lambda" gets this many seconds per invocation, so a receiver that never answers
# reaches the failure queue in seconds rather than Lambda's 29.
FUNCTION_TIMEOUT = 6


class WebhookStack:
    """local.run on free ports, subscribed (as "yours") to a receiver whose answers the test scripts."""

    def __init__(self, receiver: Receiver):
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
               "AWS_DEFAULT_REGION": REGION, "WEBHOOK_URL": receiver.url, "LOCAL_WEBHOOK_TIMEOUT": str(FUNCTION_TIMEOUT)}
        env.pop("AWS_PROFILE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.run", "--port", "0", "--sfn-port", "0", "--webhook-port", "0"],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hasattr(self, "secret"):
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"running at (http://127\.0\.0\.1:\d+).*engine: (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.url, self.engine_url = match.groups()
            match = re.search(r"Secret: (whsec_\S+)", line)
            if match:
                self.secret = match.group(1)
        if not hasattr(self, "secret"):
            self.process.kill()
            raise RuntimeError("local stack did not start:\n" + "".join(self.lines))
        threading.Thread(target=self._drain, daemon=True).start()
        self.auth = AWS4Auth(ACCESS_KEY, SECRET_KEY, REGION, "execute-api")
        self.sqs = boto3.client("sqs", endpoint_url=self.engine_url, region_name=REGION,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.queue_url = self.sqs.get_queue_url(QueueName=FAILURE_QUEUE_NAME)["QueueUrl"]

    def _drain(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def start(self, state_machine: str, execution_input=None) -> str:
        response = requests.post(f"{self.url}/executions", json={"stateMachine": state_machine, "input": execution_input or {}},
                                 auth=self.auth, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["executionArn"]

    def describe(self, arn: str) -> dict:
        response = requests.get(f"{self.url}/executions/{quote(arn, safe='')}", auth=self.auth, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stop_execution(self, arn: str, error: str) -> None:
        response = requests.post(f"{self.url}/executions/{quote(arn, safe='')}/stop", json={"error": error},
                                 auth=self.auth, timeout=10)
        assert response.status_code == 200, response.text

    def failure_records(self) -> list:
        records = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return records
            for message in messages:
                records.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Script:
    """Per execution name: how the receiver answers each attempt (default 200)."""

    def __init__(self):
        self.plans = {}
        self.random_failure_rate = 0.0
        self.random = random.Random(12)

    def __call__(self, webhook):
        name = webhook["payload"].get("name")
        plan = self.plans.get(name)
        if plan:
            return plan[min(webhook["attempt"], len(plan)) - 1]
        if self.random_failure_rate and self.random.random() < self.random_failure_rate:
            return 500
        return 200


@pytest.fixture(scope="module")
def script():
    return Script()


@pytest.fixture(scope="module")
def receiver(script):
    # Started with a placeholder secret: the stack makes the real one and prints it.
    with Receiver("whsec_" + "A" * 44, respond=script) as test_receiver:
        yield test_receiver


@pytest.fixture(scope="module")
def stack(receiver):
    running = WebhookStack(receiver)
    receiver.use_secret(running.secret)
    yield running
    running.close()


def webhooks_for(receiver, arn, timeout=10.0, count=1):
    """Wait until the receiver got `count` requests about this execution; return them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [w for w in receiver.received if w["verified"] and w["payload"].get("executionArn") == arn]
        if len(got) >= count:
            time.sleep(0.3)  # a duplicate, if any, would arrive now
            return [w for w in receiver.received if w["payload"].get("executionArn") == arn]
        time.sleep(0.05)
    raise AssertionError(f"no webhook for {arn} within {timeout} s")


def name_of(arn):
    return arn.rsplit(":", 1)[1]


COMMON_FIELDS = ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input", "output", "error", "cause")


def assert_body_is_the_api_description(webhook, description):
    payload = webhook["payload"]
    assert payload["stateMachine"] == description["stateMachine"]
    assert {k: payload[k] for k in COMMON_FIELDS if k in description} == {k: description[k] for k in COMMON_FIELDS if k in description}


def test_a_succeeded_execution_delivers_one_signed_webhook_with_its_description(stack, receiver):
    arn = stack.start("hello", {"name": "Ada"})
    [webhook] = webhooks_for(receiver, arn)
    assert webhook["verified"] is True and webhook["id"].startswith("msg_")
    assert webhook["payload"]["status"] == "SUCCEEDED"
    assert webhook["payload"]["output"] == {"greeting": "Hello, Ada!"}
    assert_body_is_the_api_description(webhook, stack.describe(arn))


def test_a_failed_execution_delivers_its_error_and_cause(stack, receiver):
    arn = stack.start("hello", {"fail": True})
    [webhook] = webhooks_for(receiver, arn)
    assert (webhook["verified"], webhook["payload"]["status"], webhook["payload"]["error"]) == (True, "FAILED", "DemoFailure")
    assert_body_is_the_api_description(webhook, stack.describe(arn))


def test_a_stopped_execution_delivers_aborted_once(stack, receiver):
    arn = stack.start("approval", {"order": 1})
    time.sleep(0.3)
    stack.stop_execution(arn, "Cancelled")
    [webhook] = webhooks_for(receiver, arn)
    assert (webhook["verified"], webhook["payload"]["status"], webhook["payload"]["error"]) == (True, "ABORTED", "Cancelled")
    assert_body_is_the_api_description(webhook, stack.describe(arn))


def test_a_timed_out_execution_delivers_timed_out(stack, receiver):
    arn = stack.start("deadline")
    [webhook] = webhooks_for(receiver, arn, timeout=10)
    assert (webhook["verified"], webhook["payload"]["status"], webhook["payload"]["output"]) == (True, "TIMED_OUT", None)
    assert_body_is_the_api_description(webhook, stack.describe(arn))


def test_an_output_too_large_for_eventbridge_is_fetched_with_describe_execution(stack, receiver):
    # 200 KB in, 200 KB out: over EventBridge's limit together, so the event leaves the output out
    name = "A" * 200_000
    arn = stack.start("hello", {"name": name})
    [webhook] = webhooks_for(receiver, arn)
    assert webhook["verified"] is True
    assert webhook["payload"]["output"] == {"greeting": f"Hello, {name}!"}
    assert webhook["payload"]["input"] == {"name": name}


def test_two_500s_then_200_deliver_once_with_the_same_webhook_id(stack, receiver, script):
    arn_name = "retry-then-ok"
    script.plans[arn_name] = [500, 500, 200]
    response = requests.post(f"{stack.url}/executions", json={"stateMachine": "hello", "name": arn_name}, auth=stack.auth, timeout=10)
    arn = response.json()["executionArn"]
    attempts = webhooks_for(receiver, arn, count=3)
    assert [w["status"] for w in attempts] == [500, 500, 200]
    assert len({w["id"] for w in attempts}) == 1
    assert all(w["verified"] for w in attempts)


def test_410_is_taken_as_a_stop_request_and_not_retried(stack, receiver, script):
    script.plans["gone"] = [410]
    response = requests.post(f"{stack.url}/executions", json={"stateMachine": "hello", "name": "gone"}, auth=stack.auth, timeout=10)
    arn = response.json()["executionArn"]
    webhooks_for(receiver, arn)
    time.sleep(1.5)
    assert [w["status"] for w in receiver.received if w["payload"].get("executionArn") == arn] == [410]
    assert any("asks to stop" in line and arn in line for line in stack.lines)


def test_a_receiver_that_never_answers_ends_in_the_failure_queue(stack, receiver, script):
    script.plans["never-answered"] = [HANG]
    response = requests.post(f"{stack.url}/executions", json={"stateMachine": "hello", "name": "never-answered"},
                             auth=stack.auth, timeout=10)
    arn = response.json()["executionArn"]
    deadline = time.monotonic() + FUNCTION_TIMEOUT + 10
    records = []
    while time.monotonic() < deadline and not records:
        records = [r for r in stack.failure_records() if r["requestPayload"]["detail"]["executionArn"] == arn]
        time.sleep(0.5)
    [record] = records
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorType"] == "WebhookDeliveryFailed"
    assert "'yours'" in record["responsePayload"]["errorMessage"] and arn in record["responsePayload"]["errorMessage"]
    assert record["requestPayload"]["detail-type"] == "Step Functions Execution Status Change"
    assert any('"result": "failed"' in line and arn in line and '"subscriptionId": "yours"' in line for line in stack.lines)


def test_nothing_is_lost_across_200_executions_with_30_percent_receiver_failures(stack, receiver, script):
    script.random_failure_rate = 0.3
    try:
        arns = []
        lock = threading.Lock()

        def start_some(count):
            for _ in range(count):
                arn = stack.start("hello", {"name": "load"})
                with lock:
                    arns.append(arn)

        threads = [threading.Thread(target=start_some, args=(25,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(arns)) == 200
        wanted = set(arns)
        deadline = time.monotonic() + 90
        delivered, failed = set(), set()
        while time.monotonic() < deadline:
            delivered = {w["payload"]["executionArn"] for w in receiver.delivered()} & wanted
            failed |= {r["requestPayload"]["detail"]["executionArn"] for r in stack.failure_records()} & wanted
            if delivered | failed == wanted:
                break
            time.sleep(0.5)
        requests_made = [w for w in receiver.received if w["payload"].get("executionArn") in wanted]
        print(f"200 executions: {len(requests_made)} requests, {len(delivered)} delivered, "
              f"{len(failed - delivered)} in the failure queue")
        assert delivered | failed == wanted
        assert sum(1 for w in requests_made if w["status"] == 500) > 30  # the receiver really failed
        # one webhook-id per execution, however many attempts
        ids_per_execution = {}
        for w in requests_made:
            ids_per_execution.setdefault(w["payload"]["executionArn"], set()).add(w["id"])
        assert all(len(ids) == 1 for ids in ids_per_execution.values())
    finally:
        script.random_failure_rate = 0.0
