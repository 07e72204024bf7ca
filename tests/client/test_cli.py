"""The `sfn-gateway` command, installed with `pip install ./client` into a fresh venv, against the local stack."""
import json
import os
import pty
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.client.client_helpers import FaultyProxy, RecordingServer, start_stack_with_task_routes
from tests.test_end_to_end import ACCESS_KEY, REGION, SECRET_KEY

PROJECT_DIR = Path(__file__).resolve().parents[2]
INSTALL = {}


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """A fresh venv with `pip install ./client` in it (a copy, so the build leaves the repo clean)."""
    root = tmp_path_factory.mktemp("client-venv")
    source = root / "client"
    shutil.copytree(PROJECT_DIR / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    subprocess.run([str(root / "venv" / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    str(source)], check=True, capture_output=True)
    INSTALL["seconds"] = time.monotonic() - began
    return root / "venv" / "bin"


@pytest.fixture(scope="module")
def stack():
    running = start_stack_with_task_routes()
    yield running
    running.stop()


def user_env(home, **extra):
    """A user's environment: PATH, HOME and the standard AWS variables, nothing from the test process."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}
    env.update(extra)
    return {name: value for name, value in env.items() if value is not None}


@pytest.fixture(scope="module")
def cli(installed, stack, tmp_path_factory):
    """Run `sfn-gateway ARGS` with SFN_GATEWAY_URL set to the stack; returns (exit code, stdout, stderr)."""
    home = tmp_path_factory.mktemp("home")

    def run(*args, stdin=None, url=stack.url, timeout=60, **env):
        done = subprocess.run([str(installed / "sfn-gateway"), *args], input=stdin, capture_output=True, text=True,
                              env=user_env(home, SFN_GATEWAY_URL=url, **env), timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    run.home = home
    return run


def started_arn(cli, *args):
    code, out, err = cli("start", *args)
    assert code == 0, err
    return json.loads(out)["executionArn"]


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def proxy(stack):
    running = FaultyProxy(stack.url)
    yield running
    running.stop()


# --- the installed package ------------------------------------------------------------------------


def test_pip_install_of_client_gives_the_command_and_botocore_as_the_only_requirement(installed, cli):
    shown = subprocess.run([str(installed / "pip"), "show", "sfn-gateway-client"], capture_output=True, text=True)
    assert "Requires: botocore" in shown.stdout.splitlines()
    where = subprocess.run([str(installed / "python"), "-c", "import sfn_gateway_client as s; print(s.__file__)"],
                           capture_output=True, text=True, cwd=cli.home)
    assert where.stdout.startswith(str(installed.parent)), where
    code, out, _ = cli("--version")
    assert (code, out.strip()) == (0, "sfn-gateway 0.1.0")
    print(f"python -m venv + pip install ./client: {INSTALL['seconds']:.1f} s")


# --- every command ----------------------------------------------------------------------------------


def test_machines_prints_json_when_piped_and_a_table_with_output_text(cli):
    code, out, _ = cli("machines")
    assert code == 0
    assert {machine["name"] for machine in json.loads(out)} == {"hello", "slow", "approval", "deadline", "echo-express"}
    code, out, _ = cli("machines", "--output", "text")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "ARN"]
    assert any(line.split()[:2] == ["echo-express", "EXPRESS"] for line in out.splitlines())


def test_machines_with_a_name_describes_it_with_its_definition(cli):
    code, out, _ = cli("machines", "slow")
    assert code == 0
    assert json.loads(out)["definition"]["StartAt"] == "HasSeconds"


def test_start_prints_the_started_execution_and_describe_reads_it(cli):
    arn = started_arn(cli, "hello", "--input", '{"name": "Ada"}', "--name", "cli-ada")
    assert arn.endswith(":execution:hello:cli-ada")
    code, out, _ = cli("wait", arn, "--timeout", "10")
    assert code == 0
    code, out, _ = cli("describe", arn)
    assert code == 0
    described = json.loads(out)
    assert (described["status"], described["output"]) == ("SUCCEEDED", {"greeting": "Hello, Ada!"})


def test_start_wait_exits_0_on_success_1_on_failure_and_4_while_still_running(cli):
    code, out, _ = cli("start", "hello", "--input", '{"name": "Bo"}', "--wait", "10")
    assert (code, json.loads(out)["status"]) == (0, "SUCCEEDED")
    code, out, _ = cli("start", "hello", "--input", '{"fail": true}', "--wait", "10")
    assert (code, json.loads(out)["error"]) == (1, "DemoFailure")
    code, out, _ = cli("start", "slow", "--input", '{"seconds": 3}', "--wait", "0.5")
    assert (code, json.loads(out)["status"]) == (4, "RUNNING")


def test_wait_with_a_timeout_exits_4_then_0_once_the_execution_ends(cli):
    arn = started_arn(cli, "slow", "--input", '{"seconds": 4}')
    code, out, err = cli("wait", arn, "--timeout", "0.5")
    assert (code, json.loads(out)["status"]) == (4, "RUNNING")
    assert "Still RUNNING after 0.5 s" in err
    code, out, _ = cli("wait", arn)
    assert (code, json.loads(out)["status"]) == (0, "SUCCEEDED")


def test_input_is_read_from_a_file_or_stdin(cli, tmp_path):
    (tmp_path / "input.json").write_text('{"name": "File"}')
    code, out, _ = cli("start", "hello", "--input", f"@{tmp_path / 'input.json'}", "--wait", "10")
    assert json.loads(out)["output"] == {"greeting": "Hello, File!"}
    code, out, _ = cli("start", "hello", "--input", "-", "--wait", "10", stdin='{"name": "Pipe"}')
    assert json.loads(out)["output"] == {"greeting": "Hello, Pipe!"}


def test_run_prints_the_express_result(cli):
    code, out, _ = cli("run", "echo-express", "--input", '{"order": 9}')
    result = json.loads(out)
    assert (code, result["status"], result["output"]["echo"]["input"]) == (0, "SUCCEEDED", {"order": 9})


def test_list_prints_one_json_object_per_line_honouring_limit_and_status(cli):
    for name in ("L1", "L2", "L3"):
        cli("start", "hello", "--input", json.dumps({"name": name}), "--wait", "10")
    cli("start", "hello", "--input", '{"fail": true}', "--wait", "10")
    code, out, _ = cli("list", "hello", "--limit", "2")
    assert (code, len(json_lines(out))) == (0, 2)
    code, out, _ = cli("list", "hello", "--status", "FAILED", "--all")
    assert code == 0 and {execution["status"] for execution in json_lines(out)} == {"FAILED"}


def test_list_all_pages_through_next_token_one_execution_per_request(cli, proxy):
    _, everything, _ = cli("list", "hello", "--all")
    code, paged, _ = cli("list", "hello", "--all", "--page-size", "1", url=proxy.url)
    assert code == 0
    assert json_lines(paged) == json_lines(everything)
    assert proxy.forwarded("GET", "/executions?") == len(json_lines(everything)) >= 4


def test_history_prints_events_and_reverse_prints_newest_first(cli, proxy):
    _, out, _ = cli("start", "hello", "--input", '{"name": "H"}', "--wait", "10")
    arn = json.loads(out)["executionArn"]
    code, out, _ = cli("history", arn, "--page-size", "2", url=proxy.url)
    events = json_lines(out)
    assert code == 0
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))
    assert proxy.forwarded("GET", "/executions/") > 1
    _, out, _ = cli("history", arn, "--reverse")
    assert json_lines(out) == events[::-1]


def test_history_follow_prints_the_slow_workflows_events_as_they_happen(cli, installed, stack):
    arn = started_arn(cli, "slow", "--input", '{"seconds": 4}')
    process = subprocess.Popen([str(installed / "sfn-gateway"), "history", arn, "--follow"], stdout=subprocess.PIPE,
                               text=True, env=user_env(cli.home, SFN_GATEWAY_URL=stack.url))
    arrivals = {}
    for line in process.stdout:
        event = json.loads(line)
        arrivals[event["type"]] = (event, time.time())
    assert process.wait(10) == 0
    assert list(arrivals)[0] == "ExecutionStarted" and list(arrivals)[-1] == "ExecutionSucceeded"
    # WaitStateEntered was printed before the Wait state ended: live, not all at the end.
    wait_ended = datetime.fromisoformat(arrivals["WaitStateExited"][0]["timestamp"]).timestamp()
    assert arrivals["WaitStateEntered"][1] < wait_ended


def test_history_follow_exits_1_when_the_execution_fails(cli):
    _, out, _ = cli("start", "hello", "--input", '{"fail": true}', "--wait", "10")
    code, out, _ = cli("history", json.loads(out)["executionArn"], "--follow")
    assert (code, json_lines(out)[-1]["type"]) == (1, "ExecutionFailed")


def test_stop_aborts_with_error_and_cause(cli):
    arn = started_arn(cli, "slow", "--input", '{"seconds": 30}')
    code, out, _ = cli("stop", arn, "--error", "Cancelled", "--cause", "by the CLI test")
    assert code == 0 and "stopDate" in json.loads(out)
    _, out, _ = cli("describe", arn)
    described = json.loads(out)
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Cancelled", "by the CLI test")


def test_redrive_reports_the_local_engines_501_with_exit_3(cli):
    _, out, _ = cli("start", "hello", "--input", '{"fail": true}', "--wait", "10")
    code, out, err = cli("redrive", json.loads(out)["executionArn"])
    assert (code, out) == (3, "")
    assert "NotImplementedByBackend (501): " in err


def _task_token(cli, arn):
    for _ in range(50):
        for event in json_lines(cli("history", arn)[1]):
            if event["type"] == "TaskScheduled":
                return event["taskScheduledEventDetails"]["parameters"]["MessageBody"]["taskToken"]
        time.sleep(0.1)
    raise AssertionError("no TaskScheduled event")


def test_approval_flow_start_read_the_token_answer_success_and_get_the_result(cli):
    arn = started_arn(cli, "approval", "--input", '{"order": 1}')
    token = _task_token(cli, arn)
    assert cli("task", "heartbeat", token)[:2] == (0, "{}\n")
    assert cli("task", "success", token, "--task-output", '{"approved": true}')[:2] == (0, "{}\n")
    code, out, _ = cli("wait", arn, "--timeout", "10")
    assert (code, json.loads(out)["output"]) == (0, {"approved": True})


def test_approval_flow_task_failure_from_stdin_makes_wait_exit_1(cli):
    arn = started_arn(cli, "approval", "--input", '{"order": 2}')
    code, _, err = cli("task", "failure", "-", "--error", "Rejected", "--cause", "no", stdin=_task_token(cli, arn) + "\n")
    assert code == 0, err
    code, out, _ = cli("wait", arn, "--timeout", "10")
    assert (code, json.loads(out)["error"]) == (1, "Rejected")


# --- exit codes for errors ------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("machines",), "no gateway URL"),
    (("teleport",), "invalid choice"),
    (("start", "hello", "--input", "{not json"), "not valid JSON"),
    (("list", "hello", "--limit", "2", "--all"), "not allowed with"),
    (("history", "arn:x", "--follow", "--reverse"), "cannot be combined"),
    (("wait", "arn:x", "--timeout", "soon"), "not a number"),
])
def test_usage_errors_exit_2_with_a_message(cli, args, message):
    url = None if args == ("machines",) else "http://127.0.0.1:9"
    code, out, err = cli(*args, url=url)
    assert (code, out) == (2, "")
    assert message in err


def test_an_unknown_state_machine_exits_3_printing_code_and_message(cli):
    code, out, err = cli("start", "payroll")
    assert (code, out) == (3, "")
    assert "StateMachineNotFound (404): " in err and "payroll" in err


def test_a_wrong_secret_exits_3_with_api_gateways_403(cli):
    code, _, err = cli("machines", AWS_SECRET_ACCESS_KEY="wrong")
    assert code == 3
    assert "HTTP 403: " in err


def test_an_unreachable_gateway_exits_3(cli):
    code, _, err = cli("machines", url="http://127.0.0.1:9")
    assert code == 3 and "Could not reach the gateway" in err


def test_an_unknown_profile_exits_2_naming_it(cli):
    code, _, err = cli("machines", "--profile", "no-such-profile")
    assert code == 2 and "no-such-profile" in err


def test_missing_credentials_exit_2_naming_the_fix(cli):
    code, _, err = cli("machines", AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    assert code == 2 and "No AWS credentials found" in err and "--token" in err


# --- bearer tokens, retries -------------------------------------------------------------------------


def test_token_option_and_environment_send_a_bearer_authorization(cli):
    recorder = RecordingServer({"stateMachines": []})
    try:
        assert cli("--token", "tok-option", "machines", url=recorder.url)[0] == 0
        assert cli("machines", url=recorder.url, SFN_GATEWAY_TOKEN="tok-env")[0] == 0
        assert cli("machines", "--token", "tok-after", url=recorder.url, SFN_GATEWAY_TOKEN="tok-env")[0] == 0
    finally:
        recorder.stop()
    sent = [request["headers"] for request in recorder.requests]
    assert [headers["Authorization"] for headers in sent] == ["Bearer tok-option", "Bearer tok-env", "Bearer tok-after"]
    assert not any("X-Amz-Date" in headers for headers in sent)


def test_start_retries_429_and_503_and_a_lost_answer_without_a_second_execution(cli, proxy, stack):
    proxy.faults["POST"] += [(429, "1"), (503, "0"), ("lose_answer",)]
    began = time.monotonic()
    code, out, err = cli("start", "hello", "--input", '{"name": "Retried"}', "--wait", "10", url=proxy.url)
    assert code == 0, err
    assert time.monotonic() - began >= 1.0
    described = json.loads(out)
    assert described["output"] == {"greeting": "Hello, Retried!"}
    assert [status for method, _, status, _ in proxy.log if method == "POST"] == [429, 503, 503, 409]
    engine = stack.engine_client()
    listed = engine.list_executions(stateMachineArn=described["stateMachineArn"], maxResults=1000)["executions"]
    assert [execution["name"] for execution in listed].count(described["name"]) == 1


# --- terminals ---------------------------------------------------------------------------------------


def test_on_a_terminal_output_is_text_and_progress_goes_to_stderr(installed, stack, cli):
    out_master, out_slave = pty.openpty()
    err_master, err_slave = pty.openpty()
    process = subprocess.Popen(
        [str(installed / "sfn-gateway"), "start", "slow", "--input", '{"seconds": 2}', "--wait", "10"],
        stdout=out_slave, stderr=err_slave, env=user_env(cli.home, SFN_GATEWAY_URL=stack.url))
    os.close(out_slave)
    os.close(err_slave)
    assert process.wait(30) == 0
    out, err = _read_all(out_master), _read_all(err_master)
    assert "status:       SUCCEEDED" in out and "{" not in out.splitlines()[0]
    assert "slow  RUNNING" in err and "\r" in err
    assert "status:" not in err


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()
