"""`make run` and webhooks: the local stage's own subscriptions, and a demo secret kept in .local/ across restarts."""
import json
import os
import stat
import time

import boto3
import pytest

from local.receiver import Receiver
from tests.test_end_to_end import REGION, Stack, copy_project, run_local, signed

SECRET_FILE = "webhook-secret"
MINE = {"id": "mine", "stateMachines": ["hello"], "secretParameter": "/sfn-gateway/local/webhooks/mine"}


def printed(stack, fragment: str, timeout: float = 10) -> str:
    """The first line the stack printed (banner or later) that holds fragment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stack.banner.splitlines() + list(stack.output):
            if fragment in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"the stack never printed {fragment!r}:\n{stack.banner}{''.join(stack.output)}")


def verified_webhooks(receiver, execution_arn: str, timeout: float = 10) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [w for w in receiver.received if w["verified"] and w["payload"].get("executionArn") == execution_arn]
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"no verified webhook for {execution_arn}; received: {receiver.received}")


def run_hello(stack) -> str:
    finished = signed("POST", f"{stack.url}/executions?wait=10", {"stateMachine": "hello", "input": {"name": "Hook"}})
    assert (finished.status_code, finished.json()["status"]) == (200, "SUCCEEDED"), finished.text
    return finished.json()["executionArn"]


@pytest.fixture
def receiver():
    # Started with a placeholder secret; each test gives it the one to verify with.
    with Receiver("whsec_" + "A" * 44) as running:
        yield running


# --- 19.12: one demo secret, kept across restarts -------------------------------------------


def test_the_demo_secret_is_created_once_in_the_state_folder_and_kept_across_restarts(tmp_path, receiver):
    state = tmp_path / "state"
    first = Stack({"LOCAL_STATE_DIR": str(state)})
    try:
        line = printed(first, "Secret: whsec_")
    finally:
        first.stop()
    secret = (state / SECRET_FILE).read_text().strip()
    assert f"Secret: {secret}   (kept in {state / SECRET_FILE};" in line
    assert stat.S_IMODE(os.stat(state / SECRET_FILE).st_mode) == 0o600

    # A receiver set up once with that secret keeps verifying after a restart.
    receiver.use_secret(secret)
    second = Stack({"LOCAL_STATE_DIR": str(state), "WEBHOOK_URL": receiver.url})
    try:
        assert f"Secret: {secret}   (kept in" in printed(second, "Secret: whsec_")
        [webhook] = verified_webhooks(receiver, run_hello(second))
        assert webhook["payload"]["output"] == {"greeting": "Hello, Hook!"}
    finally:
        second.stop()


def test_local_webhook_secret_from_the_environment_is_used_and_nothing_is_written(tmp_path, receiver):
    secret = "whsec_" + "c2VjcmV0LWZyb20tdGhlLXNoZWxsLTEyMzQ1Ng=="
    receiver.use_secret(secret)
    stack = Stack({"LOCAL_STATE_DIR": str(tmp_path / "state"), "LOCAL_WEBHOOK_SECRET": secret,
                   "WEBHOOK_URL": receiver.url})
    try:
        assert f"Secret: {secret}   (kept in LOCAL_WEBHOOK_SECRET;" in printed(stack, "Secret: whsec_")
        verified_webhooks(receiver, run_hello(stack))
    finally:
        stack.stop()
    assert not (tmp_path / "state" / SECRET_FILE).exists()


def test_an_unusable_local_webhook_secret_is_refused_in_one_line_without_echoing_it(tmp_path):
    ran = run_local(os.getcwd(), {"LOCAL_WEBHOOK_SECRET": "not-a-secret-value", "LOCAL_STATE_DIR": str(tmp_path)})

    assert ran.returncode == 1
    [line] = ran.stderr.splitlines()
    assert line.startswith("Could not start the local stack: LOCAL_WEBHOOK_SECRET must be one whsec_<base64")
    assert "not-a-secret-value" not in ran.stderr + ran.stdout


# --- 19.2: the local stage's own subscriptions, served as written ---------------------------


@pytest.fixture
def project_with_my_subscription(tmp_path, receiver):
    """A copy of the project whose local stage subscribes the test's receiver, beside the demo entry."""
    project = copy_project(tmp_path / "project")
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    variables = config["stages"]["local"]["environment_variables"]
    variables["WEBHOOKS"] = json.dumps(json.loads(variables["WEBHOOKS"]) + [{**MINE, "url": receiver.url}])
    config_path.write_text(json.dumps(config, indent=2))
    return project


def test_the_local_stages_own_subscription_is_served_with_a_created_secret_beside_the_demo(
        tmp_path, receiver, project_with_my_subscription):
    state = tmp_path / "state"
    stack = Stack({"LOCAL_STATE_DIR": str(state)}, project_dir=project_with_my_subscription)
    try:
        line = printed(stack, "mine: ")
        assert line.strip() == (f"mine: {receiver.url} (hello), secret /sfn-gateway/local/webhooks/mine: created with "
                                f"the secret above ({state / SECRET_FILE})")
        receiver.use_secret((state / SECRET_FILE).read_text().strip())
        arn = run_hello(stack)
        [webhook] = verified_webhooks(receiver, arn)
        assert (webhook["payload"]["stateMachine"], webhook["payload"]["status"]) == ("hello", "SUCCEEDED")
        # The demo receiver still gets every workflow's end.
        printed(stack, f"signature verified: hello SUCCEEDED {arn}")
    finally:
        stack.stop()


def test_a_secret_put_on_the_engine_while_the_stack_runs_signs_the_next_delivery(
        tmp_path, receiver, project_with_my_subscription):
    stack = Stack({"LOCAL_STATE_DIR": str(tmp_path / "state")}, project_dir=project_with_my_subscription)
    try:
        receiver.use_secret((tmp_path / "state" / SECRET_FILE).read_text().strip())
        verified_webhooks(receiver, run_hello(stack))

        rotated = "whsec_" + "cm90YXRlZC13aGlsZS10aGUtc3RhY2stcnVucw=="
        ssm = boto3.client("ssm", endpoint_url=stack.engine_url, region_name=REGION,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        ssm.put_parameter(Name=MINE["secretParameter"], Value=rotated, Type="SecureString", Overwrite=True)
        receiver.use_secret(rotated)
        [webhook] = verified_webhooks(receiver, run_hello(stack))
        assert webhook["payload"]["stateMachine"] == "hello"
    finally:
        stack.stop()


def test_a_mistake_in_the_local_stages_subscription_stops_make_run_with_one_line_naming_it(tmp_path):
    project = copy_project(tmp_path / "project")
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["local"]["environment_variables"]["WEBHOOKS"] = json.dumps(
        [{**MINE, "url": "http://127.0.0.1:9/hook", "stateMachines": ["nope"]}])
    config_path.write_text(json.dumps(config))

    ran = run_local(project, {"LOCAL_STATE_DIR": str(tmp_path / "state")})

    assert ran.returncode == 1
    [line] = ran.stderr.splitlines()
    assert line.startswith("Could not start the local stack: .chalice/config.json, stage local: ")
    assert "'nope'" in line and "STATE_MACHINES" in line
