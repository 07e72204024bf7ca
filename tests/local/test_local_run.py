"""`make run` (`python -m local.run`) for a first-time user: any shell AWS settings, the banner's commands."""
import json
import subprocess
import time
from urllib.parse import quote

import pytest
import requests
from requests_aws4auth import AWS4Auth

from local.engine import LocalEngine
from local.run import LocalStackError, _banner, stack_region
from tests.test_end_to_end import PROJECT_DIR, REGION, Stack, signed, task_token

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
        named = [f"{name}={stack.environment[name]}" for name in
                 ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")
                 if stack.environment.get(name)]
        assert f"Not used from your shell: {', '.join(named)} (" in stack.banner
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


# A secret key from the shell (it must never be printed), or none (the local default `testing`).
SHELL_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
KEYS = {
    "key-from-shell": {"AWS_SECRET_ACCESS_KEY": SHELL_SECRET},
    "local-default-key": {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
}


@pytest.fixture(scope="module", params=KEYS)
def keyed_stack(request):
    """One stack per key setting, shared by the banner tests."""
    stack = Stack(KEYS[request.param])
    stack.keys = request.param
    yield stack
    stack.stop()


def _stack_auth(stack):
    environment = stack.environment
    return AWS4Auth(environment.get("AWS_ACCESS_KEY_ID", "testing"), environment.get("AWS_SECRET_ACCESS_KEY", "testing"),
                    REGION, "execute-api")


def _run_banner_block(stack, heading, after=""):
    ran = subprocess.run(["bash", "-c", _banner_block(stack.banner, heading) + after], cwd=PROJECT_DIR,
                         env=stack.environment, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_banner_approval_commands_start_read_the_token_and_answer_it(keyed_stack):
    output = _run_banner_block(keyed_stack, "Approval", after='\nprintf "\\n%s\\n" "$ARN"')

    answer, arn = output.strip().splitlines()[-2:]
    assert json.loads(answer) == {}, output
    described = requests.get(f"{keyed_stack.url}/executions/{quote(arn, safe='')}?wait=10",
                             auth=_stack_auth(keyed_stack), timeout=30).json()
    assert (described["status"], described["output"]) == ("SUCCEEDED", {"approved": True})


def test_banner_curl_commands_start_hello_and_list_it(keyed_stack):
    output = _run_banner_block(keyed_stack, "curl (")

    decoder = json.JSONDecoder()
    started, end = decoder.raw_decode(output)
    listed, _ = decoder.raw_decode(output, end)
    assert (started["status"], started["output"]) == ("SUCCEEDED", {"greeting": "Hello, Ada!"})
    assert started["executionArn"] in [execution["executionArn"] for execution in listed["executions"]]


def test_banner_python_example_starts_hello_and_prints_its_result(keyed_stack):
    output = _run_banner_block(keyed_stack, "Python (")

    assert "'status': 'SUCCEEDED'" in output and "'output': {'greeting': 'Hello, Ada!'}" in output


def test_banner_shows_the_secret_key_only_when_it_is_the_local_default(keyed_stack):
    if keyed_stack.keys == "local-default-key":
        assert "access key 'testing', secret key 'testing'" in keyed_stack.banner
        assert "--user testing:testing" in keyed_stack.banner
    else:
        assert SHELL_SECRET not in keyed_stack.banner and "wJalrXUtnFEMI" not in keyed_stack.banner
        assert "access key 'e2e-key', secret key taken from AWS_SECRET_ACCESS_KEY (not shown)" in keyed_stack.banner
        # The commands read the key from the shell again.
        assert '--user "e2e-key:$AWS_SECRET_ACCESS_KEY"' in keyed_stack.banner
        assert "os.environ['AWS_SECRET_ACCESS_KEY']" in keyed_stack.banner


def test_make_run_serves_every_state_machine_of_the_local_stage_as_configured(keyed_stack):
    listed = requests.get(f"{keyed_stack.url}/state-machines", auth=_stack_auth(keyed_stack), timeout=30)
    by_name = {machine["name"]: machine for machine in listed.json()["stateMachines"]}

    for name, entry in LOCAL_MACHINES.items():
        assert (by_name[name]["stateMachineArn"], by_name[name]["type"]) == (entry["arn"], entry.get("type", "STANDARD"))
    assert f"state machines: {', '.join(by_name)}" in keyed_stack.banner


def test_readme_approval_commands_are_the_banners_for_the_default_settings():
    banner = _banner("http://127.0.0.1:8000", "testing", "testing", "us-east-1", "http://127.0.0.1:8083",
                     LOCAL_MACHINES, python=".venv/bin/python")
    printed = _banner_block(banner, "Approval").splitlines()
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme[readme.index("### Answering the approval workflow"):]
    documented = section[section.index("```sh\n") + 6:section.index("\n# ->")].splitlines()

    # Same commands; only the indentation differs.
    assert [line.strip() for line in documented] == [line.strip() for line in printed]


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
