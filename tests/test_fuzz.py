"""Fuzzing: schemathesis generates signed requests from openapi.yaml against the running local stack.

Every answer must be documented (status code, content type, body and header schemas) and none may be a 5xx.
"""
import collections
from urllib.parse import quote

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_end_to_end import (
    ACCESS_KEY,
    PROJECT_DIR,
    REGION,
    SECRET_KEY,
    Stack,
    signed,
    task_token,
)

# Per operation, for the fuzzing phase; the examples and coverage phases add their own cases.
MAX_EXAMPLES_PER_OPERATION = 300
MIN_REQUESTS = 2000
# `?wait=` may ask for up to 25 s of polling: a valid start of `slow` with a long wait would stall
# the run, so every generated wait above this is lowered to it before the request is sent.
MAX_WAIT_SECONDS = 1
ACCOUNT = "123456789012"
STATE_MACHINES = ("hello", "slow", "approval", "echo-express")
# Executions the fixture starts under fixed names, so generation can use their ARNs: one per status.
SEEDED_EXECUTIONS = {
    ("hello", "fuzz-succeeded"): {"name": "Ada"},
    ("hello", "fuzz-failed"): {"fail": True},
    ("slow", "fuzz-running"): {"seconds": 3600},
    ("approval", "fuzz-waiting"): {},
}
# Approval executions whose task tokens the /tasks/* fuzzing answers, a few per route (an answered
# token is void). Their ARNs are not handed to the /executions fuzzing, which would stop them first.
TASK_ROUTES = ("/tasks/success", "/tasks/failure", "/tasks/heartbeat")
TOKEN_EXECUTIONS = {
    route: [f"fuzz-token-{route.rsplit('/', 1)[1]}-{number}" for number in range(3)] for route in TASK_ROUTES
}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# moto 5.2.5 has no RedriveExecution: the local engine answers it as an unknown operation, which the
# gateway maps to its documented 501 NotImplementedByBackend. That exact answer is the only 5xx allowed.
REDRIVE_NOT_IMPLEMENTED = ("POST /executions/{executionArn}/redrive", 501, "NotImplementedByBackend")

SENT = collections.Counter()
STATUSES = collections.Counter()
TASK_TOKENS = {route: [] for route in TASK_ROUTES}

schema = schemathesis.openapi.from_path(
    PROJECT_DIR / "openapi.yaml",
    config=schemathesis.Config.from_dict({
        "generation": {
            # Schema-violating requests too: each must still get a documented 4xx, never a 5xx.
            "mode": "all",
            # The `sigv4` scheme is the Authorization header: signed for real below, not generated.
            "with-security-parameters": False,
        },
        "phases": {
            "coverage": {
                # The coverage phase also sends undocumented methods. Chalice's local HTTP server has no
                # handler for TRACE or QUERY and answers them itself (501 HTML) before the app or the
                # SigV4 check runs; in AWS, API Gateway answers them. Send the methods it does serve.
                "unexpected-methods": ["get", "put", "post", "delete", "options", "patch"],
            },
        },
    }),
)


class _SigV4(requests.auth.AuthBase):
    """Sign for execute-api with botocore's signer, on the request exactly as it is sent."""

    # Not requests-aws4auth: 1.4.0 normalises header whitespace with shlex, so a generated header
    # holding an unbalanced quote (`Idempotency-Key: a"b`) makes it raise ValueError before sending.

    def __call__(self, prepared):
        request = AWSRequest(
            method=prepared.method, url=prepared.url, data=prepared.body, headers=dict(prepared.headers),
        )
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(request)
        prepared.headers.update(request.headers.items())
        return prepared


AUTH = _SigV4()


def _state_machine_arn(machine):
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}"


def _execution_arn(machine, name):
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:{name}"


# Real identifiers for the fuzzer to mix in: random strings almost never name an allow-listed state
# machine or a live execution, so without them nearly every request would end at a 400 or 404.
KNOWN_STATE_MACHINES = list(STATE_MACHINES) + [_state_machine_arn(machine) for machine in STATE_MACHINES]
KNOWN_STATE_MACHINE_PATHS = list(STATE_MACHINES) + [
    quote(_state_machine_arn(machine), safe="") for machine in STATE_MACHINES
]
KNOWN_EXECUTIONS = [_execution_arn(machine, name) for machine, name in SEEDED_EXECUTIONS] + [
    _execution_arn("hello", "fuzz-never-started"),
    _execution_arn("echo-express", "fuzz-express"),
]
KNOWN_EXECUTION_PATHS = KNOWN_EXECUTIONS + [quote(arn, safe="") for arn in KNOWN_EXECUTIONS]


def _sometimes(original, known, replace):
    """The generated value, or one of the known ones in its place (Hypothesis chooses)."""
    return st.one_of(st.just(original), st.sampled_from(known).map(replace))


def _swap(container, *candidates):
    """The first (key, known values) pair whose key holds a string in the container may be swapped."""
    for key, known in candidates:
        if isinstance(container, dict) and isinstance(container.get(key), str) and known:
            return _sometimes(container, known, lambda value, key=key: {**container, key: value})
    return st.just(container)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    return _swap(path_parameters, ("executionArn", KNOWN_EXECUTION_PATHS), ("name", KNOWN_STATE_MACHINE_PATHS))


@schema.hook
def flatmap_query(context, query):
    return _swap(query, ("stateMachine", KNOWN_STATE_MACHINES))


@schema.hook
def flatmap_body(context, body):
    return _swap(body, ("stateMachine", KNOWN_STATE_MACHINES), ("taskToken", TASK_TOKENS.get(context.operation.path)))


class _Stack(Stack):
    """The end-to-end stack, keeping the tail of its output to explain a crash."""

    def _drain(self):
        self.output = collections.deque(maxlen=40)
        for line in self.process.stdout:
            self.output.append(line)

    def crash_report(self):
        """Why a request could not connect: the process's exit status and last output lines."""
        last_lines = "".join(getattr(self, "output", []))
        return f"cannot reach the stack (exit status {self.process.poll()}); its last output:\n{last_lines}"


@pytest.fixture(scope="module")
def stack():
    running = _Stack()
    try:
        # Signing must really work, or every fuzzed request would end at 403 and prove nothing.
        listed = signed("GET", f"{running.url}/state-machines")
        assert listed.status_code == 200, listed.text
        assert set(STATE_MACHINES) <= {machine["name"] for machine in listed.json()["stateMachines"]}
        starts = [(machine, name, execution_input) for (machine, name), execution_input in SEEDED_EXECUTIONS.items()]
        starts += [("approval", name, {}) for names in TOKEN_EXECUTIONS.values() for name in names]
        for machine, name, execution_input in starts:
            body = {"stateMachine": machine, "name": name, "input": execution_input}
            started = signed("POST", f"{running.url}/executions", body)
            assert started.status_code == 201, started.text
        for route, names in TOKEN_EXECUTIONS.items():
            TASK_TOKENS[route][:] = [task_token(running, _execution_arn("approval", name)) for name in names]
        yield running
    finally:
        running.stop()


def _bound_wait(case):
    """Lower a `wait` the gateway would accept to MAX_WAIT_SECONDS, parsing it as the gateway does."""
    wait = case.query.get("wait") if isinstance(case.query, dict) else None
    try:
        seconds = int(wait, 10) if isinstance(wait, str) else wait if type(wait) is int else None
    except ValueError:
        seconds = None
    if seconds is not None and seconds > MAX_WAIT_SECONDS:
        case.query["wait"] = MAX_WAIT_SECONDS


def _error_code(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("Code") if isinstance(body, dict) else None


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES_PER_OPERATION,
    deadline=None,
    # Same cases on every run, so a CI failure reproduces locally.
    derandomize=True,
    database=None,
    # Negative generation filters heavily on small schemas; slow, filtered data is expected here.
    suppress_health_check=list(HealthCheck),
)
def test_every_generated_request_gets_a_documented_answer_and_no_server_error(case, stack):
    _bound_wait(case)
    try:
        response = case.call(base_url=stack.url, auth=AUTH, timeout=30)
    except requests.ConnectionError:
        pytest.fail(stack.crash_report())
    SENT[case.operation.label] += 1
    STATUSES[case.operation.label, response.status_code] += 1
    checks = CHECKS
    if (case.operation.label, response.status_code, _error_code(response)) == REDRIVE_NOT_IMPLEMENTED:
        checks = [check for check in CHECKS if check is not not_a_server_error]
    case.validate_response(response, checks=checks)


# Runs after the fuzzing above (pytest keeps file order) and reads what it counted.
def test_the_fuzzing_sent_at_least_2000_signed_requests_across_all_routes():
    print(f"\nfuzzing: {sum(SENT.values())} requests; per operation: {dict(SENT)}")
    print(f"statuses: {dict(sorted(STATUSES.items()))}")
    assert set(SENT) == {operation.ok().label for operation in schema.get_all_operations()}
    assert sum(SENT.values()) >= MIN_REQUESTS
    refused = {label: count for (label, status), count in STATUSES.items() if status == 403}
    assert not refused, f"signed requests were refused before reaching the gateway: {refused}"
