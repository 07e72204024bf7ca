"""End to end: `python -m local.run` in a subprocess, real HTTP, real SigV4 clients, real executions."""
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from requests_aws4auth import AWS4Auth

from chalicelib.serialization import loads as exact_loads
from tests.demo_workflows import DEMO_MACHINES, demo_machines_in
from tests.openapi_schemas import validate_response

PROJECT_DIR = Path(__file__).resolve().parent.parent
ACCESS_KEY, SECRET_KEY, REGION = "e2e-key", "e2e-secret", "us-east-1"


class Stack:
    """A running `python -m local.run` on free loopback ports."""

    def __init__(self, environment=None, project_dir=PROJECT_DIR):
        # Its .local/ state in a folder of its own, not in the developer's checkout.
        self.state_dir = tempfile.mkdtemp(prefix="sfn-gateway-local-")
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
               "LOCAL_STATE_DIR": self.state_dir}
        env.pop("AWS_PROFILE", None)
        # Changes to that environment; None removes a variable.
        for name, value in (environment or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.environment = env
        self.banner = ""
        # The last lines it printed after its banner (the access log, webhooks arriving).
        self.output = collections.deque(maxlen=5000)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.run", "--port", "0", "--sfn-port", "0"],
            cwd=project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.url = self._read_url(timeout=30)

    def _read_url(self, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"running at (http://127\.0\.0\.1:\d+).*engine: (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.engine_url = match.group(2)
                self.banner = "".join(seen[-2:]) + self._read_banner_rest(deadline)
                # The access log goes to stdout; an unread pipe fills after a few hundred
                # requests and then blocks the server.
                threading.Thread(target=self._drain, daemon=True).start()
                return match.group(1)
        self.process.kill()
        raise RuntimeError("local stack did not start:\n" + "".join(seen))

    def _read_banner_rest(self, deadline):
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            lines.append(line)
            if not line or line.startswith("Ctrl-C stops everything"):
                break
        return "".join(lines)

    def _drain(self):
        for line in self.process.stdout:
            self.output.append(line)

    def engine_client(self):
        """A boto3 client talking straight to the stack's engine, bypassing the gateway."""
        return boto3.client(
            "stepfunctions", endpoint_url=self.engine_url, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(inject_host_prefix=False, retries={"mode": "standard", "total_max_attempts": 3}),
        )

    def stop(self, timeout=10, signum=signal.SIGTERM):
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            if getattr(self, "state_dir", None):
                shutil.rmtree(self.state_dir, ignore_errors=True)


def copy_project(destination: Path) -> Path:
    """What `make run` needs of the project, copied, for a test that edits its config or workflows."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "chalicelib", "local", "statemachines", ".chalice"):
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "deployments"))
        else:
            shutil.copy2(source, destination / name)
    return destination


def run_local(project_dir: Path, environment: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m local.run` in project_dir until it exits by itself (it should refuse to start)."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": REGION, **environment}
    return subprocess.run([sys.executable, "-m", "local.run", "--port", "0", "--sfn-port", "0"], cwd=project_dir,
                          env=env, capture_output=True, text=True, timeout=timeout)


def signed(method, url, body=None, secret=SECRET_KEY, headers=None):
    """Send a request signed with botocore's SigV4 signer for execute-api."""
    data = json.dumps(body) if body is not None else None
    request = AWSRequest(method=method, url=url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(ACCESS_KEY, secret), "execute-api", REGION).add_auth(request)
    return requests.request(method, url, data=data, headers=dict(request.headers), timeout=30)


@pytest.fixture(scope="module")
def stack():
    running = Stack()
    yield running
    running.stop()


def start(stack, state_machine, execution_input, **extra):
    response = signed("POST", f"{stack.url}/executions", {"stateMachine": state_machine, "input": execution_input, **extra})
    assert response.status_code == 201, response.text
    return response.json()["executionArn"]


def wait_until_ended(stack, arn, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = signed("GET", f"{stack.url}/executions/{quote(arn, safe='')}").json()
        if body["status"] != "RUNNING":
            return body
        time.sleep(0.1)
    raise AssertionError(f"{arn} did not end in {timeout} s")


def task_token(stack, arn, timeout=10):
    """The approval task's token, read from the execution history as a client would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = signed("GET", f"{stack.url}/executions/{quote(arn, safe='')}/history").json()["events"]
        for event in events:
            if event["type"] == "TaskScheduled":
                return event["taskScheduledEventDetails"]["parameters"]["MessageBody"]["taskToken"]
        time.sleep(0.1)
    raise AssertionError("no TaskScheduled event")


# --- the core flow -------------------------------------------------------------------------


def test_health_needs_no_signature(stack):
    response = requests.get(f"{stack.url}/health", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_hello_runs_to_success_with_the_greeting(stack):
    arn = start(stack, "hello", {"name": "Ada"})
    described = wait_until_ended(stack, arn)
    assert described["status"] == "SUCCEEDED"
    assert described["output"] == {"greeting": "Hello, Ada!"}
    assert described["input"] == {"name": "Ada"}


def test_hello_with_fail_ends_failed_with_demo_failure(stack):
    described = wait_until_ended(stack, start(stack, "hello", {"name": "Bob", "fail": True}))
    assert described["status"] == "FAILED"
    assert described["error"] == "DemoFailure"


def test_list_and_history_of_real_executions(stack):
    arn = start(stack, "hello", {"name": "Lin"}, name="listed-1")
    wait_until_ended(stack, arn)
    listed = signed("GET", f"{stack.url}/executions?stateMachine=hello&status=SUCCEEDED&limit=1000")
    assert listed.status_code == 200
    assert arn in [execution["executionArn"] for execution in listed.json()["executions"]]
    history = signed("GET", f"{stack.url}/executions/{arn}/history?limit=2&reverse=true")
    assert history.status_code == 200
    body = history.json()
    assert [event["type"] for event in body["events"]][0] == "ExecutionSucceeded"
    assert len(body["events"]) == 2 and body["nextToken"]
    rest = signed("GET", f"{stack.url}/executions/{arn}/history?reverse=true&nextToken={quote(body['nextToken'], safe='')}")
    assert rest.json()["events"][-1]["type"] == "ExecutionStarted"


def test_stop_slow_execution_aborts_it_with_error_and_cause(stack):
    arn = start(stack, "slow", {"seconds": 30})
    stopped = signed("POST", f"{stack.url}/executions/{quote(arn, safe='')}/stop", {"error": "Cancelled", "cause": "e2e"})
    assert stopped.status_code == 200
    assert stopped.json()["stopDate"]
    described = wait_until_ended(stack, arn)
    assert (described["status"], described.get("error"), described.get("cause")) == ("ABORTED", "Cancelled", "e2e")


@pytest.mark.parametrize("encode", [True, False], ids=["url-encoded-arn", "raw-arn"])
def test_execution_arn_in_path_works_encoded_and_raw(stack, encode):
    arn = start(stack, "hello", {"name": "Raw"})
    path_arn = quote(arn, safe="") if encode else arn
    response = signed("GET", f"{stack.url}/executions/{path_arn}")
    assert response.status_code == 200
    assert response.json()["executionArn"] == arn


def test_idempotency_key_retry_returns_the_same_execution(stack):
    first = signed("POST", f"{stack.url}/executions", {"stateMachine": "slow", "input": {"seconds": 5}}, headers={"Idempotency-Key": "e2e-once"})
    again = signed("POST", f"{stack.url}/executions", {"stateMachine": "slow", "input": {"seconds": 5}}, headers={"Idempotency-Key": "e2e-once"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["executionArn"] == again.json()["executionArn"]
    other = signed("POST", f"{stack.url}/executions", {"stateMachine": "slow", "input": {"seconds": 6}}, headers={"Idempotency-Key": "e2e-once"})
    assert other.status_code == 409


# --- signatures ------------------------------------------------------------------------------


def test_unsigned_request_is_rejected_with_missing_authentication_token(stack):
    response = requests.get(f"{stack.url}/state-machines", timeout=5)
    assert (response.status_code, response.json()) == (403, {"message": "Missing Authentication Token"})


def test_wrong_secret_is_rejected(stack):
    response = signed("GET", f"{stack.url}/state-machines", secret="not-the-secret")
    assert response.status_code == 403
    assert "signature" in response.json()["message"]


def test_tampered_body_is_rejected_and_starts_nothing(stack):
    data = json.dumps({"stateMachine": "hello", "name": "tamper-1", "input": {}})
    request = AWSRequest(method="POST", url=f"{stack.url}/executions", data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(request)
    tampered = data.replace("tamper-1", "tamper-2")
    response = requests.post(f"{stack.url}/executions", data=tampered, headers=dict(request.headers), timeout=5)
    assert response.status_code == 403
    missing = signed("GET", f"{stack.url}/executions/arn:aws:states:us-east-1:123456789012:execution:hello:tamper-2")
    assert missing.status_code == 404


def test_requests_aws4auth_client_works(stack):
    response = requests.get(f"{stack.url}/state-machines", auth=AWS4Auth(ACCESS_KEY, SECRET_KEY, REGION, "execute-api"), timeout=5)
    assert response.status_code == 200
    assert demo_machines_in(response.json()["stateMachines"]) == DEMO_MACHINES


def test_curl_aws_sigv4_starts_hello_and_reads_it_back(stack):
    sigv4 = ["--aws-sigv4", f"aws:amz:{REGION}:execute-api", "--user", f"{ACCESS_KEY}:{SECRET_KEY}"]
    started = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", *sigv4, "-H", "Content-Type: application/json",
         "-d", json.dumps({"stateMachine": "hello", "input": {"name": "Curl"}}), f"{stack.url}/executions?wait=10"],
        capture_output=True, text=True, timeout=15, check=True,
    )
    body, status = started.stdout.rsplit("\n", 1)
    assert status == "200", started.stdout
    assert json.loads(body)["output"] == {"greeting": "Hello, Curl!"}
    arn = json.loads(body)["executionArn"]
    # A path without ARN, and a sorted query: curl of any version signs these as API Gateway does.
    listed = subprocess.run(
        ["curl", "-s", *sigv4, f"{stack.url}/executions?limit=1000&stateMachine=hello&status=SUCCEEDED"],
        capture_output=True, text=True, timeout=15, check=True,
    )
    assert arn in [execution["executionArn"] for execution in json.loads(listed.stdout)["executions"]]


# --- workflow interaction (sync, wait, task tokens, redrive) -----------------------------------


def test_echo_express_runs_synchronously(stack):
    response = signed("POST", f"{stack.url}/sync-executions", {"stateMachine": "echo-express", "input": {"n": 3}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUCCEEDED"
    # The local stage turns caller context on for echo-express: the workflow sees who signed.
    assert body["output"]["echo"]["input"] == {"n": 3}
    caller = body["output"]["echo"]["caller"]
    assert caller["userArn"].startswith("arn:aws:iam::123456789012:")
    assert caller["accountId"] == "123456789012"
    assert caller["sourceIp"] == "127.0.0.1"
    assert caller["requestId"]


def test_sync_run_of_standard_machine_is_rejected(stack):
    response = signed("POST", f"{stack.url}/sync-executions", {"stateMachine": "hello"})
    assert (response.status_code, response.json()["Code"]) == (400, "StateMachineTypeNotSupported")


def test_start_hello_with_wait_returns_200_succeeded(stack):
    response = signed("POST", f"{stack.url}/executions?wait=10", {"stateMachine": "hello", "input": {"name": "Wait"}})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "SUCCEEDED"
    assert response.json()["output"] == {"greeting": "Hello, Wait!"}


def signed_text(method, url, text: str):
    """Send a JSON body exactly as written (numbers Python's json would change), signed."""
    request = AWSRequest(method=method, url=url, data=text.encode(), headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(request)
    return requests.request(method, url, data=text.encode(), headers=dict(request.headers), timeout=30)


def test_numbers_through_a_workflow_come_back_exactly_as_written_and_the_output_stays_an_object(stack):
    # Issue 19.7: the local engine answered {"x": Infinity} as a string, and 1.2345678901234568e+16.
    body = ('{"stateMachine": "slow", "input": {"x": 1e400, "big": 12345678901234567.89, '
            '"int": 123456789012345678901234567890, "z": 1.10, "seconds": 0}}')

    response = signed_text("POST", f"{stack.url}/executions?wait=10", body)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "SUCCEEDED"
    output = exact_loads(response.text)["output"]
    assert isinstance(output, dict), output
    as_written = {key: getattr(value, "text", value) for key, value in output.items()}
    assert as_written == {"x": "1e400", "big": "12345678901234567.89", "int": 123456789012345678901234567890,
                          "z": "1.10", "seconds": 0}
    assert "Infinity" not in response.text


def test_slow_with_short_wait_returns_202_then_200(stack):
    response = signed("POST", f"{stack.url}/executions?wait=1", {"stateMachine": "slow", "input": {"seconds": 2}})
    assert response.status_code == 202
    location = response.headers["Location"]
    later = signed("GET", f"{stack.url}{location}?wait=10")
    assert later.status_code == 200
    assert later.json()["status"] == "SUCCEEDED"


def test_approval_answered_through_task_success(stack):
    arn = start(stack, "approval", {"amount": 10})
    token = task_token(stack, arn)
    heartbeat = signed("POST", f"{stack.url}/tasks/heartbeat", {"taskToken": token})
    assert (heartbeat.status_code, heartbeat.json()) == (200, {})
    answered = signed("POST", f"{stack.url}/tasks/success", {"taskToken": token, "output": {"approved": True}})
    assert answered.status_code == 200
    described = wait_until_ended(stack, arn)
    assert (described["status"], described["output"]) == ("SUCCEEDED", {"approved": True})


def test_approval_answered_through_task_failure(stack):
    arn = start(stack, "approval", {"amount": 99})
    token = task_token(stack, arn)
    answered = signed("POST", f"{stack.url}/tasks/failure", {"taskToken": token, "error": "Rejected", "cause": "too much"})
    assert answered.status_code == 200
    described = wait_until_ended(stack, arn)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "Rejected", "too much")


def _answer_all_three_ways(stack, token):
    answers = [
        signed("POST", f"{stack.url}/tasks/success", {"taskToken": token, "output": {}}),
        signed("POST", f"{stack.url}/tasks/failure", {"taskToken": token, "error": "Late"}),
        signed("POST", f"{stack.url}/tasks/heartbeat", {"taskToken": token}),
    ]
    return [(answer.status_code, answer.json()["Code"]) for answer in answers]


def test_answering_an_answered_approval_again_is_410_task_timed_out(stack):
    # AWS answers a closed task's token with TaskTimedOut; the gateway maps it to 410.
    arn = start(stack, "approval", {"amount": 5})
    token = task_token(stack, arn)
    assert signed("POST", f"{stack.url}/tasks/success", {"taskToken": token, "output": {"ok": 1}}).status_code == 200
    assert wait_until_ended(stack, arn)["output"] == {"ok": 1}
    assert _answer_all_three_ways(stack, token) == [(410, "TaskTimedOut")] * 3


def test_answering_a_stopped_approval_is_410_task_timed_out(stack):
    arn = start(stack, "approval", {"amount": 6})
    token = task_token(stack, arn)
    stopped = signed("POST", f"{stack.url}/executions/{quote(arn, safe='')}/stop", {"error": "Withdrawn"})
    assert stopped.status_code == 200
    assert _answer_all_three_ways(stack, token) == [(410, "TaskTimedOut")] * 3
    described = signed("GET", f"{stack.url}/executions/{quote(arn, safe='')}").json()
    assert (described["status"], described["error"]) == ("ABORTED", "Withdrawn")


def test_redrive_on_the_local_engine_answers_501_because_moto_lacks_it(stack):
    # moto 5.2.5 has no RedriveExecution; against AWS this route calls it for real.
    arn = start(stack, "hello", {"fail": True})
    wait_until_ended(stack, arn)
    response = signed("POST", f"{stack.url}/executions/{quote(arn, safe='')}/redrive")
    assert response.status_code == 501
    assert response.json()["Code"] == "NotImplementedByBackend"


def test_unknown_task_token_is_a_client_error(stack):
    response = signed("POST", f"{stack.url}/tasks/success", {"taskToken": "x" * 2000, "output": {}})
    assert response.status_code in (400, 404)
    assert response.json()["Code"] in ("InvalidToken", "TaskNotFound")


# --- shutdown ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_signal_stops_the_stack_within_seconds_while_an_approval_waits(signum):
    stack = Stack()
    try:
        start(stack, "approval", {"waiting": True})
        began = time.monotonic()
        assert stack.stop(timeout=10, signum=signum) == 0
        assert time.monotonic() - began < 5
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.url}/health", timeout=2)


def test_the_stack_stops_within_its_grace_period_while_busy_with_requests_and_hanging_webhooks():
    from local.run import STOP_GRACE_SECONDS

    # A webhook receiver that accepts connections and never answers: every delivery hangs.
    silent = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: [accepted.append(silent.accept()) for _ in iter(int, 1)], daemon=True).start()
    stack = Stack({"WEBHOOK_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/hook"})
    busy = threading.Event()

    def keep_starting():
        while not busy.is_set():
            try:
                signed("POST", f"{stack.url}/executions", {"stateMachine": "hello", "input": {"name": "Busy"}})
            except requests.RequestException:
                return

    load = [threading.Thread(target=keep_starting, daemon=True) for _ in range(8)]
    try:
        for thread in load:
            thread.start()
        deadline = time.monotonic() + 20
        while len(accepted) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(accepted) >= 4, "no webhook delivery reached the silent receiver"
        began = time.monotonic()
        assert stack.stop(timeout=10) == 0, "".join(stack.output)
        assert time.monotonic() - began < STOP_GRACE_SECONDS + 1
        # Stopped cleanly, not by the watchdog (the last line may still be in the pipe).
        while "sfn-gateway stopped." not in "".join(stack.output) and time.monotonic() - began < 5:
            time.sleep(0.05)
        assert "sfn-gateway stopped." in "".join(stack.output)
    finally:
        busy.set()
        if stack.process.poll() is None:
            stack.process.kill()
        silent.close()
        for connection, _ in accepted:
            connection.close()


# --- real responses against openapi.yaml ---------------------------------------------------------


def test_real_responses_match_the_openapi_schemas(stack):
    arn = start(stack, "hello", {"name": "Schema"})
    encoded = quote(arn, safe="")
    calls = [
        ("GET", "/state-machines", "/state-machines", None),
        ("GET", "/state-machines/hello", "/state-machines/{name}", None),
        ("GET", "/state-machines/nope", "/state-machines/{name}", None),
        ("POST", "/executions", "/executions", {"stateMachine": "hello", "input": {"name": "S"}}),
        ("POST", "/executions?wait=10", "/executions", {"stateMachine": "hello", "input": {"name": "S"}}),
        ("POST", "/executions?wait=0", "/executions", {"stateMachine": "slow", "input": {"seconds": 3}}),
        ("POST", "/executions", "/executions", {"stateMachine": "hello", "name": "bad name"}),
        ("GET", "/executions?stateMachine=hello&limit=5", "/executions", None),
        ("GET", "/executions?stateMachine=hello&limit=0", "/executions", None),
        ("GET", f"/executions/{encoded}?wait=10", "/executions/{executionArn}", None),
        ("GET", "/executions/not-an-arn", "/executions/{executionArn}", None),
        ("GET", f"/executions/{encoded}/history?limit=3", "/executions/{executionArn}/history", None),
        ("POST", f"/executions/{encoded}/stop", "/executions/{executionArn}/stop", {}),
        ("POST", "/sync-executions", "/sync-executions", {"stateMachine": "echo-express", "input": [1, 2]}),
        ("POST", "/sync-executions", "/sync-executions", {"stateMachine": "hello"}),
        ("POST", "/tasks/heartbeat", "/tasks/heartbeat", {"taskToken": "unknown-token"}),
    ]
    for method, path, template, body in calls:
        response = signed(method, stack.url + path, body)
        assert response.status_code < 500, (path, response.text)
        validate_response(method, template, response.status_code, response.json(), response.headers)
