"""`python -m local.issuer token`: a token for any caller from the dev issuer that `AUTH_MODE=jwt make run` runs."""
import json
import signal
import subprocess
import sys

import jwt
import pytest
import requests

from tests.test_end_to_end import PROJECT_DIR, Stack

# Callers in group ops may start and read hello; nobody else may do anything.
RULES = [{"groups": ["ops"], "stateMachines": ["hello"], "operations": ["start", "read"]}]


def token_command(stack_environment: dict, *arguments: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: from the project folder, in make run's environment."""
    return subprocess.run([sys.executable, "-m", "local.issuer", "token", *arguments], cwd=PROJECT_DIR,
                          env=stack_environment, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def jwt_stack():
    stack = Stack({"AUTH_MODE": "jwt", "JWT_ISSUER": None, "JWT_AUDIENCE": None, "ACCESS_RULES": json.dumps(RULES)})
    yield stack
    stack.stop()


def start_hello(stack, token: str):
    return requests.post(f"{stack.url}/executions", json={"stateMachine": "hello", "input": {"name": "Carol"}},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_token_prints_only_a_token_with_the_given_sub_groups_and_scopes(jwt_stack):
    made = token_command(jwt_stack.environment, "--sub", "carol", "--groups", "approvers,ops",
                         "--scopes", "orders/start orders/read", "--expires-in", "600")

    assert (made.returncode, made.stderr) == (0, "")
    token = made.stdout.removesuffix("\n")
    assert "\n" not in token and made.stdout.endswith("\n")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["groups"], claims["scope"]) == ("carol", ["approvers", "ops"], "orders/start orders/read")
    assert claims["exp"] - claims["iat"] == 600
    started = start_hello(jwt_stack, token)
    assert started.status_code == 201, started.text
    assert started.json()["stateMachine"] == "hello"


def test_a_token_outside_the_rules_groups_is_refused_403(jwt_stack):
    made = token_command(jwt_stack.environment, "--sub", "dave", "--groups", "developers")

    refused = start_hello(jwt_stack, made.stdout.strip())
    assert refused.status_code == 403, refused.text
    assert refused.json()["Code"] == "AccessDenied"


def test_an_expired_token_from_a_negative_expires_in_is_refused_401(jwt_stack):
    made = token_command(jwt_stack.environment, "--sub", "carol", "--groups", "ops", "--expires-in", "-60")

    assert made.returncode == 0, made.stderr
    claims = jwt.decode(made.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == -60
    refused = start_hello(jwt_stack, made.stdout.strip())
    assert (refused.status_code, refused.json()) == (401, {"message": "Unauthorized"})


def test_without_a_running_issuer_token_says_how_to_start_one_and_prints_no_token(tmp_path):
    stack = Stack({"AUTH_MODE": "jwt", "JWT_ISSUER": None, "JWT_AUDIENCE": None,
                   "LOCAL_STATE_DIR": str(tmp_path / "state")})
    environment = stack.environment
    assert token_command(environment, "--sub", "carol").returncode == 0
    stack.stop()

    made = token_command(environment, "--sub", "carol")

    assert (made.returncode, made.stdout) == (1, "")
    assert made.stderr.strip() == ("No dev issuer is running: start one with `AUTH_MODE=jwt make run` "
                                   f"(it writes {tmp_path / 'state' / 'dev-issuer.json'}).")


def test_after_a_killed_run_token_finds_its_issuer_gone_instead_of_minting_for_it(tmp_path):
    stack = Stack({"AUTH_MODE": "jwt", "JWT_ISSUER": None, "JWT_AUDIENCE": None,
                   "LOCAL_STATE_DIR": str(tmp_path / "state")})
    environment = stack.environment
    stack.stop(signum=signal.SIGKILL)
    assert (tmp_path / "state" / "dev-issuer.json").exists()

    made = token_command(environment, "--sub", "carol")

    assert (made.returncode, made.stdout) == (1, "")
    assert made.stderr.strip().endswith("does not answer; is `AUTH_MODE=jwt make run` still running?")
