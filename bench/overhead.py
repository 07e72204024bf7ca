"""Benchmarks P1 and P2: the gateway's per-request overhead and its cold start, against bare boto3.

P1: one GET /executions/{executionArn} through the Lambda entry point (`app.app(event, context)`)
with a Stubber'ed client, against the same stubbed `describe_execution` call made directly.
P2: a fresh process importing the app and answering its first request (503 from a closed port,
one attempt) against a fresh process importing boto3 and creating a Step Functions client.
"""
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:hello"
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:hello:bench-1"
STATE_MACHINES = json.dumps({"hello": {"arn": STATE_MACHINE_ARN, "type": "STANDARD"}})
CALLS = 2000
RUNS = 7
COLD_RUNS = 7
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

DESCRIBED = {
    "executionArn": EXECUTION_ARN,
    "stateMachineArn": STATE_MACHINE_ARN,
    "name": "bench-1",
    "status": "SUCCEEDED",
    "startDate": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    "stopDate": datetime.datetime(2026, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc),
    "input": '{"name":"Ada"}',
    "output": '{"greeting":"Hello, Ada!"}',
}


def proxy_event(path_arn: str) -> dict:
    """An API Gateway (REST, proxy) event for GET /executions/{executionArn}, as IAM auth passes it."""
    return {
        "resource": "/executions/{executionArn}",
        "path": f"/executions/{path_arn}",
        "httpMethod": "GET",
        "headers": {"Host": "example.execute-api.us-east-1.amazonaws.com", "Accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"executionArn": path_arn},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/executions/{executionArn}",
            "httpMethod": "GET",
            "path": f"/api/executions/{path_arn}",
            "stage": "api",
            "requestId": "bench-request",
            "accountId": "123456789012",
            "apiId": "example",
            "identity": {
                "accountId": "123456789012",
                "caller": "AIDAEXAMPLE",
                "userArn": "arn:aws:iam::123456789012:user/bench",
                "sourceIp": "127.0.0.1",
                "accessKey": "testing",
            },
        },
        "body": None,
        "isBase64Encoded": False,
    }


class _Context:
    aws_request_id = "bench-request"
    function_name = "sfn-gateway"
    memory_limit_in_mb = 128

    def get_remaining_time_in_millis(self):
        return 29_000


def _time_calls(call, stubber, calls: int) -> float:
    for _ in range(calls):
        stubber.add_response("describe_execution", DESCRIBED)
    began = time.perf_counter()
    for _ in range(calls):
        call()
    elapsed = time.perf_counter() - began
    stubber.assert_no_pending_responses()
    return elapsed / calls


def handler_overhead() -> list[str]:
    """P1: median per-call time through the Lambda handler ÷ the bare stubbed boto3 call."""
    os.environ.update(FAKE_AWS, STATE_MACHINES=STATE_MACHINES)
    os.environ.pop("SFN_ENDPOINT_URL", None)
    import boto3
    from botocore.stub import Stubber

    from app import app
    from chalicelib import factory

    client = boto3.client("stepfunctions", region_name="us-east-1")
    factory.get_sfn_client = lambda read_timeout=None: client
    event = proxy_event(EXECUTION_ARN.replace(":", "%3A"))
    context = _Context()

    def through_app():
        response = app(event, context)
        assert response["statusCode"] == 200, response

    def bare():
        client.describe_execution(executionArn=EXECUTION_ARN)

    app_times, bare_times = [], []
    with Stubber(client) as stubber:
        _time_calls(through_app, stubber, 200)
        _time_calls(bare, stubber, 200)
        for _ in range(RUNS):
            app_times.append(_time_calls(through_app, stubber, CALLS))
            bare_times.append(_time_calls(bare, stubber, CALLS))
    app_ms, bare_ms = statistics.median(app_times) * 1000, statistics.median(bare_times) * 1000
    alone_ms, unlogged_ms = _gateway_alone(app, factory, event, context)
    return [
        f"P1 handler overhead: {app_ms / bare_ms:.2f}x (app {app_ms:.3f} ms / bare {bare_ms:.3f} ms, "
        f"median of {RUNS} runs x {CALLS} calls; target <= 1.3x)",
        f"   the app's own share (client returning a canned dict, no botocore): {alone_ms:.3f} ms, "
        f"{unlogged_ms:.3f} ms with the access log off",
    ]


def _bare_chalice_app(client):
    """A bare Chalice app with the same route doing the same DescribeExecution: P1's peer."""
    from urllib.parse import unquote

    from chalice import Chalice

    bare = Chalice(app_name="bare")

    @bare.route("/executions/{executionArn}")
    def describe_execution(executionArn):
        described = client.describe_execution(executionArn=unquote(executionArn))
        return {key: value.isoformat() if hasattr(value, "isoformat") else value
                for key, value in described.items() if key != "ResponseMetadata"}

    return bare


def peer_overhead() -> list[str]:
    """P1 peer form: the gateway's Lambda handler ÷ a bare Chalice route, both on one stubbed client."""
    os.environ.update(FAKE_AWS, STATE_MACHINES=STATE_MACHINES)
    os.environ.pop("SFN_ENDPOINT_URL", None)
    import boto3
    from botocore.stub import Stubber

    from app import app
    from chalicelib import factory

    client = boto3.client("stepfunctions", region_name="us-east-1")
    factory.get_sfn_client = lambda read_timeout=None: client
    bare = _bare_chalice_app(client)
    event = proxy_event(EXECUTION_ARN.replace(":", "%3A"))
    context = _Context()

    def through(handler):
        def call():
            response = handler(event, context)
            assert response["statusCode"] == 200, response
        return call

    app_times, bare_times = [], []
    with Stubber(client) as stubber:
        _time_calls(through(app), stubber, 200)
        _time_calls(through(bare), stubber, 200)
        for _ in range(RUNS):
            app_times.append(_time_calls(through(app), stubber, CALLS))
            bare_times.append(_time_calls(through(bare), stubber, CALLS))
    app_ms, bare_ms = statistics.median(app_times) * 1000, statistics.median(bare_times) * 1000
    return [
        f"P1 peer form: {app_ms / bare_ms:.2f}x (app {app_ms:.3f} ms / bare Chalice route {bare_ms:.3f} ms, "
        f"same stubbed DescribeExecution, median of {RUNS} runs x {CALLS} calls; target <= 1.15x)",
    ]


class _CannedClient:
    def describe_execution(self, **params):
        return dict(DESCRIBED)


def _gateway_alone(app, factory, event, context) -> tuple[float, float]:
    """Per-request ms of Chalice + gateway code alone, with and without the access log line."""
    import logging

    factory.get_sfn_client = lambda read_timeout=None: _CannedClient()
    access_log = logging.getLogger("sfn_gateway.access")

    def per_call():
        began = time.perf_counter()
        for _ in range(CALLS):
            app(event, context)
        return (time.perf_counter() - began) / CALLS * 1000

    per_call()
    timings = [per_call() for _ in range(RUNS)]
    access_log.disabled = True
    try:
        unlogged = [per_call() for _ in range(RUNS)]
    finally:
        access_log.disabled = False
    return statistics.median(timings), statistics.median(unlogged)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_APP_COLD = """
import sys
sys.path.insert(0, {project!r})
import app
class _Context:
    aws_request_id = "cold"
event = {{
    "resource": "/executions", "path": "/executions", "httpMethod": "GET",
    "headers": {{"Host": "example"}}, "multiValueHeaders": {{}},
    "queryStringParameters": {{"stateMachine": "hello"}},
    "multiValueQueryStringParameters": {{"stateMachine": ["hello"]}},
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {{"resourcePath": "/executions", "httpMethod": "GET", "requestId": "cold",
                        "stage": "api", "apiId": "example", "identity": {{"sourceIp": "127.0.0.1"}}}},
}}
response = app.app(event, _Context())
assert response["statusCode"] == 503, response
"""
_BOTO3_COLD = """
import boto3
boto3.client("stepfunctions")
"""


def _cold_env() -> dict:
    env = {**os.environ, **FAKE_AWS, "STATE_MACHINES": STATE_MACHINES,
           "SFN_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}", "SFN_MAX_ATTEMPTS": "1"}
    env.pop("AWS_PROFILE", None)
    return env


def _run_fresh(code: str, env: dict, *flags) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, *flags, "-c", code], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return elapsed, done.stderr


def _biggest_imports(stderr: str, count: int = 5) -> tuple[list, list]:
    """(top-level imports, imports made by `app`) by cumulative microseconds, biggest first."""
    # -X importtime lines: "import time: self [us] | cumulative | <2 spaces per level>package";
    # children are printed before their parent.
    top_level, pending, under_app = [], [], []
    for line in stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not line.startswith("import time:") or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        level = (len(name) - len(name.lstrip()) - 1) // 2
        entry = (int(parts[1]), name.strip())
        if level == 0:
            top_level.append(entry)
            if entry[1] == "app":
                under_app = pending
            pending = []
        elif level == 1:
            pending.append(entry)
    return sorted(top_level, reverse=True)[:count], sorted(under_app, reverse=True)[:count]


def cold_start() -> list[str]:
    """P2: fresh-process import + first request of the app ÷ fresh-process boto3 client creation."""
    env = _cold_env()
    app_code = _APP_COLD.format(project=str(PROJECT_DIR))
    _run_fresh(app_code, env)
    _run_fresh(_BOTO3_COLD, env)
    app_times, boto_times = [], []
    for _ in range(COLD_RUNS):
        app_times.append(_run_fresh(app_code, env)[0])
        boto_times.append(_run_fresh(_BOTO3_COLD, env)[0])
    app_s, boto_s = statistics.median(app_times), statistics.median(boto_times)
    _, importtime = _run_fresh(app_code, env, "-X", "importtime")
    top_level, under_app = _biggest_imports(importtime)
    biggest = ", ".join(f"{name} {micros / 1000:.0f} ms" for micros, name in top_level)
    inside_app = ", ".join(f"{name} {micros / 1000:.0f} ms" for micros, name in under_app)
    return [
        f"P2 cold start: {app_s / boto_s:.2f}x (import app + first request {app_s * 1000:.0f} ms / "
        f"import boto3 + client {boto_s * 1000:.0f} ms, fresh processes, median of {COLD_RUNS} runs; target <= 1.10x)",
        f"   biggest imports in the app's cold start (cumulative, one -X importtime run): {biggest}",
        f"   of which `import app` pulls in: {inside_app}",
    ]


def main() -> None:
    for line in handler_overhead() + peer_overhead() + cold_start():
        print(line, flush=True)


if __name__ == "__main__":
    main()
