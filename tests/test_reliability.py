"""Reliability: injected backend faults and recovery, hostile inputs, concurrent idempotent starts, load."""
import concurrent.futures
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.test_end_to_end import ACCESS_KEY, REGION, SECRET_KEY, Stack, signed

ACCOUNT = "123456789012"
HELLO_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:hello"
# 5,000 starts take about 55 s on a 2-core machine; the limit leaves room for a busy CI host.
LOAD_REQUESTS = 5000
LOAD_CLIENTS = 16
LOAD_TIME_LIMIT = 180


# --- a fake Step Functions endpoint ----------------------------------------------------------

THROTTLED = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
INTERNAL_FAILURE = (500, {"__type": "InternalFailure", "message": "Internal failure"})
HEALTHY = (200, {"executions": []})
DROP = "drop"


class FakeStepFunctions:
    """A JSON 1.0 endpoint on loopback whose every answer is `self.answer`; counts what it receives."""

    def __init__(self, port: int = 0):
        fake = self
        self.answer = HEALTHY
        self.targets = []
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._lock:
                    fake.targets.append(self.headers.get("X-Amz-Target"))
                    answer = fake.answer
                if answer == DROP:
                    self.close_connection = True
                    return
                status, body = answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def serve(self, answer):
        """Answer every later request with `answer`, and forget the requests counted so far."""
        with self._lock:
            self.answer = answer
            self.targets.clear()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)


@pytest.fixture
def fake_sfn():
    server = FakeStepFunctions()
    yield server
    server.stop()


def assert_error(response, status, code):
    assert response.status_code == status, response.body
    assert response.json_body["Code"] == code, response.body


def list_orders(client):
    return client.http.get("/executions?stateMachine=orders")


def assert_recovered(client, fake_sfn):
    fake_sfn.serve(HEALTHY)
    response = list_orders(client)
    assert response.status_code == 200, response.body
    assert response.json_body == {"executions": [], "nextToken": None}
    assert fake_sfn.targets == ["AWSStepFunctions.ListExecutions"]


# --- faults, then recovery through the same cached client --------------------------------------


@pytest.mark.parametrize("attempts", [1, 3])
def test_throttling_is_retried_by_botocore_then_returns_429_and_recovers(make_client, fake_sfn, attempts):
    with make_client(SFN_ENDPOINT_URL=fake_sfn.url, SFN_MAX_ATTEMPTS=str(attempts)) as client:
        fake_sfn.serve(THROTTLED)
        response = list_orders(client)
        assert_error(response, 429, "Throttled")
        assert response.headers["Retry-After"] == "1"
        assert fake_sfn.targets == ["AWSStepFunctions.ListExecutions"] * attempts
        assert_recovered(client, fake_sfn)


def test_internal_failure_is_retried_then_returns_502_backend_error_and_recovers(make_client, fake_sfn):
    with make_client(SFN_ENDPOINT_URL=fake_sfn.url, SFN_MAX_ATTEMPTS="2") as client:
        fake_sfn.serve(INTERNAL_FAILURE)
        response = list_orders(client)
        assert_error(response, 502, "BackendError")
        assert "InternalFailure" in response.json_body["Message"]
        assert "Retry-After" not in response.headers
        assert len(fake_sfn.targets) == 2
        assert_recovered(client, fake_sfn)


def test_connection_dropped_without_answer_is_retried_then_returns_502_and_recovers(make_client, fake_sfn):
    # botocore raises ConnectionClosedError (not a ConnectionError): the endpoint was reached.
    with make_client(SFN_ENDPOINT_URL=fake_sfn.url, SFN_MAX_ATTEMPTS="2") as client:
        fake_sfn.serve(DROP)
        response = list_orders(client)
        assert_error(response, 502, "BackendError")
        # botocore's message names the endpoint URL; callers must not see it.
        assert "127.0.0.1" not in response.json_body["Message"]
        assert "ConnectionClosedError" in response.json_body["Message"]
        assert len(fake_sfn.targets) == 2
        assert_recovered(client, fake_sfn)


def test_closed_port_returns_503_then_succeeds_once_an_engine_listens_there(make_client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with make_client(SFN_ENDPOINT_URL=f"http://127.0.0.1:{port}", SFN_MAX_ATTEMPTS="1") as client:
        response = list_orders(client)
        assert_error(response, 503, "BackendUnavailable")
        assert response.headers["Retry-After"] == "5"
        server = FakeStepFunctions(port)
        try:
            assert_recovered(client, server)
        finally:
            server.stop()


# --- the real local stack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack():
    running = Stack()
    yield running
    running.stop()


def signed_raw(method, url, data: bytes, content_type="application/json", headers=None, session=None):
    """Send raw bytes signed with SigV4 for execute-api (the signature covers the exact bytes); content_type=None sends none."""
    content_headers = {"Content-Type": content_type} if content_type is not None else {}
    request = AWSRequest(method=method, url=url, data=data, headers={**content_headers, **(headers or {})})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(request)
    return (session or requests).request(method, url, data=data, headers=dict(request.headers), timeout=60)


def assert_answer(response, statuses, codes):
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.json()["Code"] in codes, response.text[:300]
    assert response.json()["Code"] in codes, response.text[:300]


def assert_healthy(stack):
    response = requests.get(f"{stack.url}/health", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def start_body(execution_input, **extra) -> bytes:
    return json.dumps({"stateMachine": "hello", "input": execution_input, **extra}).encode()


@pytest.mark.parametrize("megabytes", [1, 10])
def test_huge_body_is_rejected_as_too_large_and_the_stack_keeps_answering(stack, megabytes):
    response = signed_raw("POST", f"{stack.url}/executions", start_body({"blob": "x" * (megabytes * 1024 * 1024)}))
    assert_answer(response, (413,), ("InputTooLarge",))
    assert_healthy(stack)


def test_body_nested_100k_levels_deep_returns_400(stack):
    depth = 100_000
    data = b'{"stateMachine": "hello", "input": ' + b"[" * depth + b"]" * depth + b"}"
    response = signed_raw("POST", f"{stack.url}/executions", data)
    assert_answer(response, (400,), ("ValidationError",))
    assert_healthy(stack)


def test_body_with_invalid_utf8_returns_400(stack):
    data = b'{"stateMachine": "hello", "input": {"name": "\xff\xfe\xc3"}}'
    response = signed_raw("POST", f"{stack.url}/executions", data)
    assert_answer(response, (400,), ("ValidationError",))


def test_body_with_duplicate_keys_returns_400(stack):
    data = b'{"stateMachine": "hello", "stateMachine": "slow", "input": {}}'
    response = signed_raw("POST", f"{stack.url}/executions", data)
    assert_answer(response, (400,), ("ValidationError",))


def test_text_plain_body_returns_415(stack):
    response = signed_raw("POST", f"{stack.url}/executions", start_body({}), content_type="text/plain")
    assert_answer(response, (415,), ("UnsupportedMediaType",))


def test_a_body_without_content_type_is_read_as_json(stack):
    # As docs/api.md says beside the 415 rule (Chalice, like API Gateway, takes no type as JSON).
    response = signed_raw("POST", f"{stack.url}/executions?wait=10", start_body({"name": "Untyped"}), content_type=None)
    assert "Content-Type" not in response.request.headers
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["output"]) == ("SUCCEEDED", {"greeting": "Hello, Untyped!"})


@pytest.mark.parametrize("name", ["a\x00b", "..%2F..%2Fetc", "../../etc", "%00", "x" * 81])
def test_hostile_execution_name_in_body_returns_400_invalid_name(stack, name):
    response = signed_raw("POST", f"{stack.url}/executions", start_body({}, name=name))
    assert_answer(response, (400,), ("InvalidName",))


@pytest.mark.parametrize("key", ["..%2F..%2Fetc", "../x", "%00"])
def test_hostile_idempotency_key_returns_400_invalid_name(stack, key):
    response = signed_raw("POST", f"{stack.url}/executions", start_body({}), headers={"Idempotency-Key": key})
    assert_answer(response, (400,), ("InvalidName",))


@pytest.mark.parametrize("state_machine", ["../hello", "hello\x00", "hello/../slow", HELLO_ARN + "\x00"])
def test_hostile_state_machine_in_body_returns_404(stack, state_machine):
    data = json.dumps({"stateMachine": state_machine, "input": {}}).encode()
    response = signed_raw("POST", f"{stack.url}/executions", data)
    assert_answer(response, (404,), ("StateMachineNotFound",))


EXECUTION_PREFIX = quote(f"arn:aws:states:{REGION}:{ACCOUNT}:execution:hello:", safe="")


@pytest.mark.parametrize("suffix", ["..%2F..%2Fetc%2Fpasswd", "run%00", "%00", "a%2F..%2F..%2Fx", "a/../b"])
def test_hostile_execution_arn_in_path_returns_400_invalid_arn(stack, suffix):
    response = signed("GET", f"{stack.url}/executions/{EXECUTION_PREFIX}{suffix}")
    assert_answer(response, (400,), ("InvalidArn",))


def test_execution_named_dot_dot_is_a_valid_name_that_does_not_exist(stack):
    response = signed("GET", f"{stack.url}/executions/{EXECUTION_PREFIX}..")
    assert_answer(response, (404,), ("ExecutionNotFound",))


@pytest.mark.parametrize("path", ["..%2F..%2Fetc%2Fpasswd", "hello%00", "%00", "hello%2F..%2Fslow"])
def test_hostile_state_machine_in_path_returns_404(stack, path):
    response = signed("GET", f"{stack.url}/state-machines/{path}")
    assert_answer(response, (404,), ("StateMachineNotFound",))


def test_unknown_2000_character_task_token_returns_4xx(stack):
    response = signed("POST", f"{stack.url}/tasks/success", {"taskToken": "t" * 2000, "output": {}})
    assert_answer(response, (400, 404), ("InvalidToken", "TaskNotFound"))


def test_task_token_over_2048_characters_returns_400_before_any_call(stack):
    response = signed("POST", f"{stack.url}/tasks/heartbeat", {"taskToken": "t" * 2049})
    assert_answer(response, (400,), ("ValidationError",))


# --- idempotency under concurrency -------------------------------------------------------------


def test_twenty_concurrent_starts_with_one_idempotency_key_make_one_execution(stack):
    key = f"reliability-{uuid.uuid4().hex[:12]}"
    body = {"stateMachine": "slow", "input": {"seconds": 30}}

    def start(_):
        return signed("POST", f"{stack.url}/executions", body, headers={"Idempotency-Key": key})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(start, range(20)))
    try:
        assert [response.status_code for response in responses] == [201] * 20, [r.text for r in responses]
        arns = {response.json()["executionArn"] for response in responses}
        assert len(arns) == 1
        listed = signed("GET", f"{stack.url}/executions?stateMachine=slow&limit=1000")
        assert listed.status_code == 200
        # The execution is named after the caller's own key (issue 17: a MAC over caller and key, from the
        # stage secret `make run` put on the engine's SSM): one name for all twenty, starting with the key
        [name] = {response.json()["name"] for response in responses}
        assert name.startswith(key[:26] + "-") and name != key
        assert [e["executionArn"] for e in listed.json()["executions"] if e["name"] == name] == list(arns)
        other = signed("POST", f"{stack.url}/executions", {**body, "input": {"seconds": 29}}, headers={"Idempotency-Key": key})
        assert_answer(other, (409,), ("ExecutionAlreadyExists",))
    finally:
        for arn in {r.json().get("executionArn") for r in responses if r.status_code == 201}:
            stopped = signed("POST", f"{stack.url}/executions/{quote(arn, safe='')}/stop", {"cause": "test over"})
            assert stopped.status_code == 200, stopped.text


# --- load ----------------------------------------------------------------------------------------


def engine_executions(engine, state_machine_arn: str) -> list:
    """Every execution of a state machine, read from the engine itself (all pages)."""
    executions = []
    for page in engine.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, PaginationConfig={"PageSize": 1000, "MaxItems": 100_000}
    ):
        executions.extend(page["executions"])
    return executions


def run_load(url: str, requests_total: int, clients: int, time_limit: float) -> list:
    """Signed POST /executions of hello from `clients` keep-alive sessions; [(status, body, seconds)]."""
    deadline = time.monotonic() + time_limit
    counter = iter(range(requests_total))
    counter_lock = threading.Lock()
    results = []

    def worker():
        session = requests.Session()
        mine = []
        while time.monotonic() < deadline:
            with counter_lock:
                number = next(counter, None)
            if number is None:
                break
            began = time.perf_counter()
            response = signed_raw("POST", f"{url}/executions", start_body({"name": f"load-{number}"}), session=session)
            mine.append((response.status_code, response.json(), time.perf_counter() - began))
        session.close()
        return mine

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for finished in [pool.submit(worker) for _ in range(clients)]:
            results.extend(finished.result())
    return results


def test_load_of_concurrent_starts_creates_exactly_one_execution_per_201(stack):
    engine = stack.engine_client()
    before = {e["executionArn"] for e in engine_executions(engine, HELLO_ARN)}
    began = time.monotonic()
    results = run_load(stack.url, LOAD_REQUESTS, LOAD_CLIENTS, LOAD_TIME_LIMIT)
    elapsed = time.monotonic() - began
    statuses = [status for status, _, _ in results]
    created = [body["executionArn"] for status, body, _ in results if status == 201]
    print(f"load: {len(results)} requests, {len(created)} x 201 in {elapsed:.1f} s ({len(results) / elapsed:.0f}/s)")
    assert not [status for status in statuses if status >= 500], {s: statuses.count(s) for s in set(statuses)}
    assert len(created) == len(results) == LOAD_REQUESTS, {s: statuses.count(s) for s in set(statuses)}
    assert len(set(created)) == len(created)
    after = {e["executionArn"] for e in engine_executions(engine, HELLO_ARN)}
    assert after >= before
    assert after - before == set(created)
    assert_healthy(stack)
