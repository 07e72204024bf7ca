"""`make run` (`python -m local.run`) for a first-time user: any shell AWS settings, the banner's commands."""
import json
import os
import re
import subprocess
import time
from urllib.parse import quote

import pytest
import requests
from requests_aws4auth import AWS4Auth

from local.engine import LocalEngine
from local.run import LocalStackError, _banner, stack_region
from tests.test_end_to_end import PROJECT_DIR, REGION, Stack, signed, task_token, wait_until_ended

LOCAL_STAGE = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]["local"]
LOCAL_MACHINES = json.loads(LOCAL_STAGE["environment_variables"]["STATE_MACHINES"])


def _profile_file(tmp_path):
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = eu-central-1\n\n[profile elsewhere]\nregion = sa-east-1\n")
    return str(config)


# What a first-time user's shell may hold; None removes the variable.
SHELLS = {
    "AWS_DEFAULT_REGION": lambda tmp_path: {"AWS_DEFAULT_REGION": "eu-west-1"},
    "AWS_REGION": lambda tmp_path: {"AWS_REGION": "ap-southeast-2", "AWS_DEFAULT_REGION": None},
    "profile-with-region": lambda tmp_path: {
        "AWS_PROFILE": "elsewhere", "AWS_CONFIG_FILE": _profile_file(tmp_path), "AWS_DEFAULT_REGION": None},
    "missing-profile-and-config": lambda tmp_path: {
        "AWS_PROFILE": "does-not-exist", "AWS_CONFIG_FILE": str(tmp_path / "no-such-file"),
        "AWS_DEFAULT_REGION": None},
    "fips-and-dual-stack": lambda tmp_path: {
        "AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true", "AWS_DEFAULT_REGION": "us-gov-west-1"},
}


@pytest.mark.parametrize("shell", SHELLS)
def test_make_run_works_whatever_region_or_profile_the_shell_has(shell, tmp_path):
    stack = Stack(SHELLS[shell](tmp_path))
    try:
        # The local stage's ARNs decide the region; engine, app client and SigV4 all use it.
        assert f"region {REGION}" in stack.banner
        finished = signed("POST", f"{stack.url}/executions?wait=10", {"stateMachine": "hello", "input": {"name": "Eu"}})
        assert (finished.status_code, finished.json()["output"]) == (200, {"greeting": "Hello, Eu!"}), finished.text
        assert finished.json()["executionArn"].startswith(f"arn:aws:states:{REGION}:")
        synchronous = signed("POST", f"{stack.url}/sync-executions", {"stateMachine": "echo-express", "input": [1]})
        assert (synchronous.status_code, synchronous.json()["status"]) == (200, "SUCCEEDED"), synchronous.text
        # The approval task sends its token through the engine's SQS, in the same region.
        approval = signed("POST", f"{stack.url}/executions", {"stateMachine": "approval", "input": {}})
        assert approval.status_code == 201, approval.text
        assert task_token(stack, approval.json()["executionArn"])
    finally:
        stack.stop()


def _banner_block(banner, heading):
    """The commands under a banner heading (from its first indented line to the next blank one)."""
    lines = banner.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("  "))
    end = next(i for i in range(first, len(lines)) if not lines[i].strip())
    return "\n".join(lines[first:end])


# The stack's own key pair, or none in the shell (the local default `testing`).
KEYS = {"key-from-shell": {}, "local-default-key": {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}}


@pytest.mark.parametrize("keys", KEYS)
def test_banner_approval_commands_start_read_the_token_and_answer_it(keys):
    stack = Stack(KEYS[keys])
    try:
        script = _banner_block(stack.banner, "Approval") + '\nprintf "\\n%s\\n" "$ARN"'
        ran = subprocess.run(["bash", "-c", script], cwd=PROJECT_DIR, env=stack.environment,
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        answer, arn = ran.stdout.strip().splitlines()[-2:]
        assert json.loads(answer) == {}, ran.stdout
        described = requests.get(f"{stack.url}/executions/{quote(arn, safe='')}?wait=10", auth=_stack_auth(stack),
                                 timeout=30).json()
        assert (described["status"], described["output"]) == ("SUCCEEDED", {"approved": True})
    finally:
        stack.stop()


def test_readme_approval_commands_are_the_banners_for_the_default_settings():
    banner = _banner("http://127.0.0.1:8000", "testing", "testing", "us-east-1", "http://127.0.0.1:8083",
                     LOCAL_MACHINES, python=".venv/bin/python")
    printed = _banner_block(banner, "Approval").splitlines()
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme[readme.index("### Answering the approval workflow"):]
    documented = section[section.index("```sh\n") + 6:section.index("\n# ->")].splitlines()

    # Same commands; only the indentation differs.
    assert [line.strip() for line in documented] == [line.strip() for line in printed]


def _stack_auth(stack):
    environment = stack.environment
    return AWS4Auth(environment.get("AWS_ACCESS_KEY_ID", "testing"), environment.get("AWS_SECRET_ACCESS_KEY", "testing"),
                    REGION, "execute-api")


def _run_python_example(stack):
    ran = subprocess.run(["bash", "-c", _banner_block(stack.banner, "Python (")], cwd=PROJECT_DIR,
                         env=stack.environment, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_banner_shows_the_local_default_secret_key():
    stack = Stack(KEYS["local-default-key"])
    try:
        assert "access key 'testing', secret key 'testing'" in stack.banner
        assert "--user testing:testing" in stack.banner
        assert "'status': 'SUCCEEDED'" in _run_python_example(stack)
    finally:
        stack.stop()


def test_banner_never_shows_a_secret_key_taken_from_the_shell_and_says_where_it_comes_from():
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    stack = Stack({"AWS_SECRET_ACCESS_KEY": secret})
    try:
        assert secret not in stack.banner and "wJalrXUtnFEMI" not in stack.banner
        assert "secret key taken from AWS_SECRET_ACCESS_KEY (not shown)" in stack.banner
        # The commands still work: they read the key from the shell.
        script = _banner_block(stack.banner, "curl (")
        assert '--user "e2e-key:$AWS_SECRET_ACCESS_KEY"' in script
        ran = subprocess.run(["bash", "-c", script], cwd=PROJECT_DIR, env=stack.environment,
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        decoder = json.JSONDecoder()
        started, end = decoder.raw_decode(ran.stdout)
        listed, _ = decoder.raw_decode(ran.stdout, end)
        assert (started["status"], started["output"]) == ("SUCCEEDED", {"greeting": "Hello, Ada!"})
        assert started["executionArn"] in [execution["executionArn"] for execution in listed["executions"]]
        assert "'output': {'greeting': 'Hello, Ada!'}" in _run_python_example(stack)
    finally:
        stack.stop()


def test_banner_names_the_shell_settings_it_does_not_use():
    stack = Stack({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_PROFILE": "does-not-exist"})
    try:
        assert "Not used from your shell: AWS_DEFAULT_REGION=eu-west-1, AWS_PROFILE=does-not-exist" in stack.banner
    finally:
        stack.stop()


def test_make_run_serves_every_state_machine_of_the_local_stage_as_configured():
    stack = Stack()
    try:
        served = signed("GET", f"{stack.url}/state-machines").json()["stateMachines"]
        by_name = {machine["name"]: machine for machine in served}
        for name, entry in LOCAL_MACHINES.items():
            assert (by_name[name]["stateMachineArn"], by_name[name]["type"]) == (entry["arn"], entry.get("type", "STANDARD"))
        assert f"state machines: {', '.join(by_name)}" in stack.banner
    finally:
        stack.stop()


def _stage_with(*arns):
    machines = {f"m{n}": {"arn": arn, "type": "STANDARD"} for n, arn in enumerate(arns)}
    return {"stages": {"local": {"environment_variables": {"STATE_MACHINES": json.dumps(machines)}}}}


def test_stack_region_is_the_region_of_the_local_stage_arns():
    assert stack_region(_stage_with("arn:aws:states:eu-west-1:123456789012:stateMachine:a",
                                    "arn:aws:states:eu-west-1:123456789012:stateMachine:b")) == "eu-west-1"
    assert stack_region({"stages": {"local": {}}}) == "us-east-1"
    assert stack_region(json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())) == REGION


def test_local_stage_with_arns_in_two_regions_is_refused_naming_both():
    with pytest.raises(LocalStackError) as refused:
        stack_region(_stage_with("arn:aws:states:eu-west-1:123456789012:stateMachine:a",
                                 "arn:aws:states:us-east-1:123456789012:stateMachine:b"))

    assert "2 regions (eu-west-1, us-east-1)" in str(refused.value)


def test_local_stage_with_a_malformed_arn_is_refused_naming_the_stage_and_the_entry():
    with pytest.raises(LocalStackError) as refused:
        stack_region(_stage_with("arn:aws:states:eu-west-1:orders"))

    assert str(refused.value).startswith(".chalice/config.json, stage local: ")
    assert 'STATE_MACHINES["m0"].arn' in str(refused.value)


def test_engine_runs_the_demo_workflows_and_their_queue_in_the_region_it_is_given():
    with LocalEngine(region="eu-west-1").start() as engine:
        deployed = engine.deploy_demo_state_machines(str(PROJECT_DIR / "statemachines"))
        assert deployed["approval"]["arn"] == "arn:aws:states:eu-west-1:123456789012:stateMachine:approval"
        client = engine.client()
        arn = client.start_execution(stateMachineArn=deployed["approval"]["arn"], input="{}")["executionArn"]
        assert arn.startswith("arn:aws:states:eu-west-1:")
        for _ in range(100):
            types = [event["type"] for event in client.get_execution_history(executionArn=arn)["events"]]
            if "TaskSubmitted" in types or "TaskFailed" in types:
                break
            time.sleep(0.05)
        # The message reached the approvals queue of this region; the task waits for its token.
        assert "TaskSubmitted" in types and "TaskFailed" not in types, types
        assert client.describe_execution(executionArn=arn)["status"] == "RUNNING"
