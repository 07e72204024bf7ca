"""Identity and access end to end on the local stack: real HTTP, the real authorizers, real executions."""
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from chalice.config import Config
from requests_aws4auth import AWS4Auth

from app import app
from chalicelib.auth.access import owner_tag
from local.engine import LocalEngine
from local.issuer import DevIssuer
from local.server import make_server
from tests.auth.jwt_support import hostile_tokens, malformed_tokens
from tests.openapi_schemas import validate_response
from tests.test_end_to_end import Stack

PROJECT_DIR = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
RULES = [
    {"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]},
    {"callers": ["bob"], "stateMachines": ["hello"], "operations": ["read"]},
]


class ModeStack(Stack):
    """`python -m local.run` with extra environment (AUTH_MODE, JWT_ISSUER, ACCESS_RULES, ...)."""

    def __init__(self, **environment):
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": REGION, **environment}
        env.pop("AWS_PROFILE", None)
        self.banner = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.run", "--port", "0", "--sfn-port", "0"],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.url = self._read_url(timeout=30)

    def _drain(self):
        # Keep the banner (it holds the demo tokens); drop the access log.
        for line in self.process.stdout:
            if len(self.banner) < 40:
                self.banner.append(line)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def issuer():
    with DevIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def jwt_stack(issuer):
    stack = ModeStack(AUTH_MODE="jwt", JWT_ISSUER=issuer.issuer, JWT_AUDIENCE=issuer.audience, ACCESS_RULES=json.dumps(RULES))
    yield stack
    stack.stop()


# --- jwt mode ---------------------------------------------------------------------------------------


def test_valid_token_runs_a_workflow_to_its_end(jwt_stack, issuer):
    ada = issuer.mint("ada", groups=["approvers"])
    response = requests.post(f"{jwt_stack.url}/executions?wait=10", json={"stateMachine": "hello", "input": {"name": "Ada"}},
                             headers=bearer(ada), timeout=30)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["output"]) == ("SUCCEEDED", {"greeting": "Hello, Ada!"})


def test_missing_token_answers_401_and_health_stays_open(jwt_stack):
    response = requests.get(f"{jwt_stack.url}/state-machines", timeout=10)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert requests.get(f"{jwt_stack.url}/health", timeout=10).json() == {"status": "ok"}


def test_every_hostile_token_answers_401(jwt_stack, issuer):
    answers = {}
    for name, token in hostile_tokens(issuer).items():
        response = requests.get(f"{jwt_stack.url}/state-machines", headers=bearer(token), timeout=10)
        answers[name] = (response.status_code, response.json())
    assert answers == {name: (401, {"message": "Unauthorized"}) for name in answers}


def test_a_thousand_malformed_tokens_are_all_refused_none_with_5xx(jwt_stack, issuer):
    # Only tokens that can travel in an HTTP header (API Gateway never sees others).
    tokens = [t for t in malformed_tokens(issuer, 1600, seed=7) if all(32 < ord(c) < 127 for c in t)][:1000]
    assert len(tokens) == 1000
    statuses = {}
    with requests.Session() as session:
        for token in tokens:
            status = session.get(f"{jwt_stack.url}/state-machines", headers=bearer(token), timeout=10).status_code
            statuses[status] = statuses.get(status, 0) + 1
    assert statuses == {401: 1000}


def test_group_rule_lets_approvers_start_and_others_only_read_what_they_may(jwt_stack, issuer):
    ada, bob = issuer.mint("ada", groups=["approvers"]), issuer.mint("bob", groups=["developers"])
    start = {"stateMachine": "hello", "input": {"name": "Bob"}}
    denied = requests.post(f"{jwt_stack.url}/executions", json=start, headers=bearer(bob), timeout=10)
    assert (denied.status_code, denied.json()["Code"]) == (403, "AccessDenied")
    assert "jwt caller 'bob' may not start on state machine 'hello'" in denied.json()["Message"]
    validate_response("POST", "/executions", 403, denied.json())  # documented in openapi.yaml
    started = requests.post(f"{jwt_stack.url}/executions", json=start, headers=bearer(ada), timeout=10)
    assert started.status_code == 201, started.text
    read = requests.get(f"{jwt_stack.url}{started.headers['Location']}", headers=bearer(bob), timeout=10)
    assert (read.status_code, read.json()["stateMachine"]) == (200, "hello")
    machines = requests.get(f"{jwt_stack.url}/state-machines", headers=bearer(bob), timeout=10).json()["stateMachines"]
    assert [m["name"] for m in machines] == ["hello"]


def test_caller_context_carries_the_token_caller(jwt_stack, issuer):
    ada = issuer.mint("ada", groups=["approvers"], scopes=["orders/start"])
    response = requests.post(f"{jwt_stack.url}/sync-executions", json={"stateMachine": "echo-express", "input": {}},
                             headers=bearer(ada), timeout=30)
    caller = response.json()["output"]["echo"]["caller"]
    assert {k: caller[k] for k in ("type", "id", "groups", "scopes")} == {
        "type": "jwt", "id": "ada", "groups": ["approvers"], "scopes": ["orders/start"]}


def test_make_run_in_jwt_mode_prints_working_tokens_for_two_demo_users():
    # Given `AUTH_MODE=jwt make run` (its own dev issuer, no JWT_ISSUER set)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JWT_")}
    stack = ModeStack(**{**environment, "AUTH_MODE": "jwt", "ACCESS_RULES": json.dumps(RULES)})
    try:
        deadline = 100
        while deadline and not any("BOB_TOKEN" in line for line in stack.banner):
            threading.Event().wait(0.05)
            deadline -= 1
        banner = "".join(stack.banner)
        tokens = dict(re.findall(r"export (\w+)_TOKEN='([^']+)'", banner))
        assert set(tokens) == {"ADA", "BOB"}
        assert "curl -s -H \"Authorization: Bearer $ADA_TOKEN\"" in banner
        # Then the approver may start, the other user may not, and both are who the banner says
        start = {"stateMachine": "slow", "input": {"seconds": 1}}
        ada = requests.post(f"{stack.url}/executions", json=start, headers=bearer(tokens["ADA"]), timeout=10)
        bob = requests.post(f"{stack.url}/executions", json=start, headers=bearer(tokens["BOB"]), timeout=10)
        assert (ada.status_code, bob.status_code, bob.json()["Code"]) == (201, 403, "AccessDenied")
    finally:
        stack.stop()


# --- iam mode: more than one local caller, rules by IAM identity, ownerOnly ------------------------------

KEYS = {
    "ada-key": ("ada-secret", "arn:aws:sts::123456789012:assumed-role/approvers/ada-laptop"),
    "bob-key": ("bob-secret", "arn:aws:iam::123456789012:user/bob"),
}
IAM_RULES = [
    {"callers": ["arn:aws:iam::123456789012:role/approvers"], "stateMachines": ["*"], "operations": ["*"]},
    {"callers": ["arn:aws:iam::123456789012:user/bob"], "stateMachines": ["slow", "hello"], "operations": ["start", "read", "stop"]},
]


@pytest.fixture(scope="module")
def iam_stack():
    """The app in process on the local engine, with slow and hello ownerOnly and two IAM callers."""
    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    engine = LocalEngine(host="127.0.0.1", port=0).start()
    try:
        machines = engine.deploy_demo_state_machines(str(PROJECT_DIR / "statemachines"))
        for name in ("slow", "hello"):
            machines[name]["ownerOnly"] = True
        machines["echo-express"]["passCallerContext"] = True
        variables = {"STATE_MACHINES": json.dumps(machines), "SFN_ENDPOINT_URL": engine.url,
                     "ACCESS_RULES": json.dumps(IAM_RULES), "TASK_ROUTES": "on"}
        config = Config(chalice_stage="local", user_provided_params={"chalice_app": app, "app_name": "sfn-gateway"},
                        config_from_disk={"stages": {"local": {"environment_variables": variables}}})
        server = make_server(app, config, access_key="testing", secret_key="testing", identities=KEYS)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        server.server_close()
    finally:
        engine.stop()
        os.environ.clear()
        os.environ.update(saved)


def as_iam(key):
    return AWS4Auth(key, KEYS[key][0], REGION, "execute-api")


def call(method, url, key, body=None):
    return requests.request(method, url, json=body, auth=as_iam(key), timeout=30)


def test_each_local_access_key_is_its_own_iam_caller(iam_stack):
    ada = call("POST", f"{iam_stack}/sync-executions", "ada-key", {"stateMachine": "echo-express", "input": {}})
    assert ada.status_code == 200, ada.text
    caller = ada.json()["output"]["echo"]["caller"]
    assert (caller["type"], caller["id"], caller["userArn"]) == (
        "iam", "arn:aws:iam::123456789012:role/approvers", KEYS["ada-key"][1])
    # Bob's rules do not name echo-express
    bob = call("POST", f"{iam_stack}/sync-executions", "bob-key", {"stateMachine": "echo-express", "input": {}})
    assert (bob.status_code, bob.json()["Code"]) == (403, "AccessDenied")


def test_the_default_key_matches_no_rule_and_is_denied(iam_stack):
    response = requests.get(f"{iam_stack}/executions?stateMachine=slow", auth=AWS4Auth("testing", "testing", REGION, "execute-api"), timeout=10)
    assert (response.status_code, response.json()["Code"]) == (403, "AccessDenied")


def test_owner_only_second_caller_cannot_read_stop_or_list_the_first_callers_execution(iam_stack):
    # Given Ada starts a slow ownerOnly execution
    started = call("POST", f"{iam_stack}/executions", "ada-key", {"stateMachine": "slow", "name": "mine", "input": {"seconds": 20}})
    assert started.status_code == 201, started.text
    arn = started.json()["executionArn"]
    assert started.json()["name"] == owner_tag({"type": "iam", "id": "arn:aws:iam::123456789012:role/approvers"}) + "mine"
    location = f"{iam_stack}/executions/{quote(arn, safe='')}"
    # And Bob starts his own under the same name: the owner tags keep them apart
    bobs = call("POST", f"{iam_stack}/executions", "bob-key", {"stateMachine": "slow", "name": "mine", "input": {"seconds": 20}})
    assert bobs.status_code == 201 and bobs.json()["executionArn"] != arn
    # When Bob reads, stops or lists, Then Ada's execution does not exist for him
    for method, url in [("GET", location), ("GET", location + "/history"), ("POST", location + "/stop")]:
        answer = call(method, url, "bob-key")
        assert (answer.status_code, answer.json()["Code"]) == (404, "ExecutionNotFound"), (method, url)
    listed = call("GET", f"{iam_stack}/executions?stateMachine=slow", "bob-key").json()["executions"]
    assert [e["executionArn"] for e in listed] == [bobs.json()["executionArn"]]
    # While Ada still sees hers running, and may stop it
    assert call("GET", location, "ada-key").json()["status"] == "RUNNING"
    assert arn in [e["executionArn"] for e in call("GET", f"{iam_stack}/executions?stateMachine=slow", "ada-key").json()["executions"]]
    assert call("POST", location + "/stop", "ada-key").status_code == 200
    assert call("POST", f"{iam_stack}/executions/{quote(bobs.json()['executionArn'], safe='')}/stop", "bob-key").status_code == 200


def test_task_routes_follow_the_tasks_operation(iam_stack):
    bob = call("POST", f"{iam_stack}/tasks/heartbeat", "bob-key", {"taskToken": "t" * 20})
    assert (bob.status_code, bob.json()["Code"]) == (403, "AccessDenied")
    ada = call("POST", f"{iam_stack}/tasks/heartbeat", "ada-key", {"taskToken": "t" * 20})
    assert ada.status_code in (400, 404) and ada.json()["Code"] != "AccessDenied"
