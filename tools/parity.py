"""`make parity`: one scripted scenario through the gateway against two engines, and their differences.

The engines are this project's local engine (local/engine/, moto) and LocalStack's Step Functions,
an independent emulator. Each runs behind its own gateway (a child process: the gateway's
configuration is process-wide) and gets the same calls. Answers are normalised (dates, UUIDs and
error messages differ by nature) and compared field by field. Every difference is marked as a
known LocalStack fault, a known and explained difference, or NEW: a NEW one is the next gap to
look at (exit status 1). Without Python 3.13 / LocalStack the check is skipped (exit status 0).
Dev-only: never packaged, not part of `make test`.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCALSTACK_VENV = PROJECT_DIR / ".venv-parity"
LOCALSTACK_SERIES = "4.14."
# LocalStack takes the account from a 12-digit access key: with moto's default account both
# engines hand out the same ARNs, so they compare as they are.
ACCESS_KEY, SECRET_KEY, REGION = "123456789012", "parity-secret", "us-east-1"
ABSENT = "<absent>"
ROWS_PER_STEP = 3
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")


@dataclass(frozen=True)
class Known:
    """A difference already understood: which steps and fields it covers, and why it exists."""

    step: str  # fnmatch pattern on the step name
    field: str  # fnmatch pattern on the flattened field path
    verdict: str  # "LocalStack fault" or "explained"
    why: str


_CLOSED_TOKEN = ("LocalStack 4.14 answers the token of a closed task InvalidToken (400) or accepts it; "
                 "AWS answers TaskTimedOut (410)")
_STOP_WHILE_WAITING = ("LocalStack 4.14 does not abort an execution stopped while it waits on a task token: "
                       "it stays RUNNING, then ends FAILED; AWS aborts it")
KNOWN = [
    Known("history-page*", "*", "LocalStack fault",
          "LocalStack 4.14 ignores GetExecutionHistory's maxResults / reverseOrder / nextToken "
          "(always every event, oldest first, no nextToken)"),
    Known("history-bad-token", "*", "LocalStack fault",
          "LocalStack 4.14 accepts any history nextToken (AWS answers InvalidToken -> 400)"),
    Known("list-bad-token", "*", "LocalStack fault",
          "LocalStack 4.14 accepts any ListExecutions nextToken (AWS answers InvalidToken -> 400)"),
    Known("approval-stopped-*", "*", "LocalStack fault", _STOP_WHILE_WAITING),
    Known("history-*-last-event", "*", "LocalStack fault",
          "LocalStack 4.14 ignores reverseOrder / maxResults, so 'the last event' is its whole history"),
    Known("stopped-slow-describe", "body.[ec][ra]*", "LocalStack fault",
          "LocalStack 4.14 drops StopExecution's error / cause from DescribeExecution; AWS keeps them "
          "(measured: floci-io/floci#2734)"),
    Known("approval-heartbeat", "*", "LocalStack fault",
          "LocalStack 4.14 refuses a heartbeat for a waiting task without HeartbeatSeconds (InvalidToken); "
          "AWS accepts it"),
    *(Known(step, "*", "LocalStack fault", _CLOSED_TOKEN) for step in (
        "approval-success-again", "approval-*-after-success", "reject-failure-again",
        "reject-success-after-failure")),
    Known("approval-history", "body.events*.taskSubmittedEventDetails.output*", "explained",
          "SQS's MessageId / MD5OfMessageBody differ by nature (the message holds the task token)"),
    Known("*", "body.Message", "explained",
          "error messages are each engine's own words (the gateway passes them through)"),
]


# --- comparing ----------------------------------------------------------------------------------


def normalize(value):
    """Replace what differs by nature between runs and engines (dates, UUIDs) with placeholders."""
    if isinstance(value, dict):
        # Paging tokens are opaque: compare whether there is one, not what it says.
        return {key: "<token>" if key == "nextToken" and isinstance(item, str) else normalize(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        if _DATE.match(value):
            return "<date>"
        return _UUID.sub("<uuid>", value)
    return value


def flatten(value, path: str = "") -> dict:
    """{"a": {"b": [1]}} -> {"a.b.length": 1, "a.b[0]": 1}: one entry per leaf (and list length)."""
    if isinstance(value, dict):
        flat = {} if value else {path: {}}
        for key, item in value.items():
            flat.update(flatten(item, f"{path}.{key}" if path else key))
        return flat
    if isinstance(value, list):
        flat = {f"{path}.length": len(value)}
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{path}[{index}]"))
        return flat
    return {path: value}


def diff_records(ours: list[dict], theirs: list[dict]) -> list[dict]:
    """Field-level differences between two runs of the scenario, matched by step name."""
    by_step = {record["step"]: record for record in theirs}
    rows = []
    for record in ours:
        other = by_step.get(record["step"])
        left = flatten({"status": record["status"], "body": normalize(record["body"])})
        right = flatten({"status": other["status"], "body": normalize(other["body"])}) if other else {}
        for field in sorted(set(left) | set(right), key=_field_order):
            a, b = left.get(field, ABSENT), right.get(field, ABSENT)
            if a != b:
                rows.append({"step": record["step"], "field": field, "ours": a, "theirs": b})
    return rows


def _field_order(field: str):
    # Status first, then the body in reading order.
    return (field != "status", field)


def classify(row: dict, known=KNOWN) -> tuple[str, str]:
    """(verdict, why) for one difference: the first matching Known entry, else NEW."""
    for entry in known:
        if fnmatch.fnmatchcase(row["step"], entry.step) and fnmatch.fnmatchcase(row["field"], entry.field):
            return entry.verdict, entry.why
    return "NEW", ""


def summarize(rows: list[dict], known=KNOWN, per_step: int = ROWS_PER_STEP) -> list[dict]:
    """Classify every row; keep the first few per step and fold the rest into one '(+N more)' row."""
    kept, hidden = [], {}
    for row in rows:
        verdict, why = classify(row, known)
        row = {**row, "verdict": verdict, "why": why}
        shown = sum(1 for r in kept if r["step"] == row["step"])
        if shown < per_step:
            kept.append(row)
        else:
            hidden.setdefault(row["step"], []).append(row)
    for step, rest in hidden.items():
        verdicts = {r["verdict"] for r in rest}
        verdict = "NEW" if "NEW" in verdicts else rest[0]["verdict"]
        fields = ", ".join(r["field"] for r in rest[:3]) + (", ..." if len(rest) > 3 else "")
        last = max(i for i, r in enumerate(kept) if r["step"] == step)
        kept.insert(last + 1, {"step": step, "field": f"(+{len(rest)} more: {fields})", "ours": "",
                               "theirs": "", "verdict": verdict, "why": rest[0]["why"]})
    return kept


def wording_only(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Split off the steps whose only difference is the error message's wording."""
    steps = {}
    for row in rows:
        steps.setdefault(row["step"], []).append(row["field"])
    wording = [step for step, fields in steps.items() if fields == ["body.Message"]]
    return [row for row in rows if row["step"] not in wording], wording


def format_table(rows: list[dict], width: int = 38) -> str:
    """A Markdown table of classified differences, one per line."""
    def cell(value):
        text = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["| # | step | field | local engine | LocalStack | verdict |", "|---|---|---|---|---|---|"]
    for number, row in enumerate(rows, 1):
        lines.append(f"| {number} | {row['step']} | {cell(row['field'])} | {cell(row['ours'])} | "
                     f"{cell(row['theirs'])} | {row['verdict']} |")
    return "\n".join(lines)


def explanations(rows: list[dict]) -> str:
    """The distinct reasons behind the known rows, one line each."""
    seen = []
    for row in rows:
        if row["why"] and row["why"] not in seen:
            seen.append(row["why"])
    return "\n".join(f"- {why}" for why in seen)


# --- the scenario ------------------------------------------------------------------------------


class _Caller:
    """Signed calls to one gateway; each recorded call is one step of the scenario."""

    def __init__(self, url: str):
        import requests
        from requests_aws4auth import AWS4Auth

        self.url = url
        self.session = requests.Session()
        self.auth = AWS4Auth(ACCESS_KEY, SECRET_KEY, REGION, "execute-api")
        self.records: list[dict] = []

    def __call__(self, step, method, path, body=None, headers=None, record=True):
        response = self.session.request(
            method, self.url + path, auth=self.auth, timeout=40, headers=headers,
            data=body if isinstance(body, str) else None,
            json=body if body is not None and not isinstance(body, str) else None,
        )
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text
        if record:
            assert all(r["step"] != step for r in self.records), f"step {step} twice"
            self.records.append({"step": step, "status": response.status_code, "body": data})
        return response.status_code, data


def _execution_path(arn: str, suffix: str = "") -> str:
    return f"/executions/{quote(arn, safe='')}{suffix}"


def _arn(body, machine: str, name: str) -> str:
    # A start that failed on one engine must not end the scenario: later steps then show 404s.
    if isinstance(body, dict) and isinstance(body.get("executionArn"), str):
        return body["executionArn"]
    return f"arn:aws:states:{REGION}:{ACCESS_KEY}:execution:{machine}:{name}"


def _task_token(call: _Caller, arn: str, timeout: float = 15) -> str | None:
    # The token is in the TaskScheduled event; answer once the task is waiting (TaskSubmitted).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, page = call("poll", "GET", _execution_path(arn, "/history?limit=1000"), record=False)
        events = (page or {}).get("events", [])
        types = [event["type"] for event in events]
        if "TaskSubmitted" in types or "ExecutionFailed" in types:
            scheduled = next(e for e in events if e["type"] == "TaskScheduled")
            parameters = scheduled["taskScheduledEventDetails"]["parameters"]
            if isinstance(parameters, str):
                parameters = json.loads(parameters)
            body = parameters["MessageBody"]
            return (json.loads(body) if isinstance(body, str) else body)["taskToken"]
        time.sleep(0.1)
    return None


def run_scenario(url: str) -> list[dict]:
    """The scripted calls (about 65), in order; returns one record per call."""
    call = _Caller(url)
    start = lambda step, body, query="": call(step, "POST", "/executions" + query, body)  # noqa: E731

    call("health", "GET", "/health")
    call("state-machines", "GET", "/state-machines")
    call("state-machine-hello", "GET", "/state-machines/hello")
    call("state-machine-unknown", "GET", "/state-machines/nope")

    _, hello = start("start-hello", {"stateMachine": "hello", "name": "parity-hello", "input": {"name": "Ada"}})
    hello_arn = _arn(hello, "hello", "parity-hello")
    call("describe-hello-wait", "GET", _execution_path(hello_arn, "?wait=10"))
    start("start-hello-again-after-end", {"stateMachine": "hello", "name": "parity-hello", "input": {"name": "Ada"}})
    _, failed = start("start-hello-fail-wait", {"stateMachine": "hello", "name": "parity-fail",
                                                "input": {"fail": True}}, "?wait=10")
    failed_arn = _arn(failed, "hello", "parity-fail")
    call("describe-hello-fail", "GET", _execution_path(failed_arn))
    start("start-invalid-name", {"stateMachine": "hello", "name": "bad name"})
    start("start-unknown-machine", {"stateMachine": "nope"})
    start("start-not-json", "{not json")
    call("describe-unknown-execution", "GET", _execution_path(hello_arn.replace("parity-hello", "parity-nobody")))
    call("describe-malformed-arn", "GET", "/executions/arn%3Aaws%3Astates%3Anope")

    _, page = call("list-hello-limit-1", "GET", "/executions?stateMachine=hello&limit=1")
    token = quote((page or {}).get("nextToken") or "none", safe="")
    call("list-hello-next-page", "GET", f"/executions?stateMachine=hello&limit=1&nextToken={token}")
    call("list-hello-failed", "GET", "/executions?stateMachine=hello&status=FAILED")
    call("list-hello-succeeded", "GET", "/executions?stateMachine=hello&status=SUCCEEDED")
    call("list-bad-token", "GET", "/executions?stateMachine=hello&nextToken=bm90LWEtdG9rZW4")
    call("list-limit-0", "GET", "/executions?stateMachine=hello&limit=0")

    call("history-hello", "GET", _execution_path(hello_arn, "/history"))
    _, page = call("history-page-1", "GET", _execution_path(hello_arn, "/history?limit=2"))
    token = quote((page or {}).get("nextToken") or "none", safe="")
    call("history-page-2", "GET", _execution_path(hello_arn, f"/history?limit=2&nextToken={token}"))
    call("history-page-reverse", "GET", _execution_path(hello_arn, "/history?limit=2&reverse=true"))
    call("history-bad-token", "GET", _execution_path(hello_arn, "/history?nextToken=bm90LWEtdG9rZW4"))
    call("history-fail-last-event", "GET", _execution_path(failed_arn, "/history?limit=1&reverse=true"))

    _, slow = start("start-slow", {"stateMachine": "slow", "name": "parity-slow", "input": {"seconds": 30}})
    slow_arn = _arn(slow, "slow", "parity-slow")
    call("stop-slow-with-error-and-cause", "POST", _execution_path(slow_arn, "/stop"),
         {"error": "Cancelled", "cause": "by the parity check"})
    call("stopped-slow-describe", "GET", _execution_path(slow_arn))
    call("history-stopped-slow-last-event", "GET", _execution_path(slow_arn, "/history?limit=1&reverse=true"))
    call("stop-slow-again", "POST", _execution_path(slow_arn, "/stop"), {})
    _, slow2 = start("start-slow-2", {"stateMachine": "slow", "name": "parity-slow-2", "input": {"seconds": 30}})
    call("stop-slow-2-plain", "POST", _execution_path(_arn(slow2, "slow", "parity-slow-2"), "/stop"), {})
    call("stopped-slow-2-describe", "GET", _execution_path(_arn(slow2, "slow", "parity-slow-2")))
    idem = {"stateMachine": "slow", "name": "parity-idem", "input": {"seconds": 30}}
    _, first = start("start-idempotent-1", idem)
    start("start-idempotent-2-while-running", idem)
    start("start-idempotent-other-input", {**idem, "input": {"seconds": 29}})
    call("stop-idempotent", "POST", _execution_path(_arn(first, "slow", "parity-idem"), "/stop"), {})

    _, approve = start("approval-start", {"stateMachine": "approval", "name": "parity-approve", "input": {"order": 1}})
    approve_arn = _arn(approve, "approval", "parity-approve")
    token = _task_token(call, approve_arn) or "no-token"
    call("approval-heartbeat", "POST", "/tasks/heartbeat", {"taskToken": token})
    call("approval-success", "POST", "/tasks/success", {"taskToken": token, "output": {"approved": True}})
    call("approval-describe-wait", "GET", _execution_path(approve_arn, "?wait=10"))
    call("approval-success-again", "POST", "/tasks/success", {"taskToken": token, "output": {}})
    call("approval-failure-after-success", "POST", "/tasks/failure", {"taskToken": token, "error": "Late"})
    call("approval-heartbeat-after-success", "POST", "/tasks/heartbeat", {"taskToken": token})
    call("approval-history", "GET", _execution_path(approve_arn, "/history"))

    _, reject = start("reject-start", {"stateMachine": "approval", "name": "parity-reject", "input": {"order": 2}})
    reject_arn = _arn(reject, "approval", "parity-reject")
    token = _task_token(call, reject_arn) or "no-token"
    call("reject-failure", "POST", "/tasks/failure", {"taskToken": token, "error": "Rejected", "cause": "Budget"})
    call("reject-describe-wait", "GET", _execution_path(reject_arn, "?wait=10"))
    call("reject-failure-again", "POST", "/tasks/failure", {"taskToken": token, "error": "Again"})
    call("reject-success-after-failure", "POST", "/tasks/success", {"taskToken": token, "output": {}})

    _, held = start("approval-stopped-start", {"stateMachine": "approval", "name": "parity-held", "input": {"order": 3}})
    held_arn = _arn(held, "approval", "parity-held")
    token = _task_token(call, held_arn) or "no-token"
    call("approval-stopped-stop", "POST", _execution_path(held_arn, "/stop"), {"error": "Withdrawn", "cause": "by the parity check"})
    time.sleep(0.5)
    call("approval-stopped-describe", "GET", _execution_path(held_arn))
    call("approval-stopped-history-last-event", "GET", _execution_path(held_arn, "/history?limit=1&reverse=true"))
    call("approval-stopped-success", "POST", "/tasks/success", {"taskToken": token, "output": {}})
    call("approval-stopped-heartbeat", "POST", "/tasks/heartbeat", {"taskToken": token})

    call("token-malformed-success", "POST", "/tasks/success", {"taskToken": "not-a-token", "output": {}})
    call("token-malformed-failure", "POST", "/tasks/failure", {"taskToken": "not-a-token"})
    call("token-malformed-heartbeat", "POST", "/tasks/heartbeat", {"taskToken": "not-a-token"})
    call("token-missing", "POST", "/tasks/success", {"output": {}})

    call("sync-express", "POST", "/sync-executions", {"stateMachine": "echo-express", "input": {"n": 1}})
    call("sync-express-named", "POST", "/sync-executions", {"stateMachine": "echo-express", "name": "parity-sync", "input": {"n": 2}})
    call("sync-standard-refused", "POST", "/sync-executions", {"stateMachine": "hello", "input": {}})
    call("async-express-start", "POST", "/executions", {"stateMachine": "echo-express", "name": "parity-async-express", "input": {}})
    call("list-express-refused", "GET", "/executions?stateMachine=echo-express")

    call("redrive-failed", "POST", _execution_path(failed_arn, "/redrive"))
    call("redrive-succeeded", "POST", _execution_path(hello_arn, "/redrive"))
    call("stop-unknown-execution", "POST", _execution_path(hello_arn.replace("parity-hello", "parity-nobody"), "/stop"), {})
    call("history-limit-too-big", "GET", _execution_path(hello_arn, "/history?limit=1001"))
    return call.records


# --- one side: a gateway in front of one engine (child process) ---------------------------------


def _serve_gateway(engine_url: str | None) -> int:
    """Child: start a gateway (and our engine if engine_url is None), run the scenario, print JSON."""
    import threading

    from local.engine import LocalEngine
    from local.run import _stage_config
    from local.server import make_server

    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
                      TASK_ROUTES="on")
    os.environ.pop("AWS_PROFILE", None)
    engine = None
    if engine_url is None:
        engine = LocalEngine().start()
        engine.credentials = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": "testing"}
    else:
        engine = LocalEngine.at(engine_url, {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": "testing"})
    try:
        machines = engine.deploy_demo_state_machines(str(PROJECT_DIR / "statemachines"))
        from app import app

        server = make_server(app, _stage_config(app, engine.url, machines), "127.0.0.1", 0,
                             access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        records = run_scenario(f"http://{host}:{port}")
        server.shutdown()
        server.server_close()
    finally:
        if engine_url is None:
            engine.stop()
    print("PARITY-RECORDS " + json.dumps(records), flush=True)
    return 0


def _side(engine_url: str | None) -> list[dict]:
    command = [sys.executable, "-m", "tools.parity", "--side", engine_url or "local"]
    done = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith("PARITY-RECORDS "):
            return json.loads(line[len("PARITY-RECORDS "):])
    raise RuntimeError(f"the scenario against {engine_url or 'the local engine'} did not finish:\n"
                       f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


# --- LocalStack --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def localstack_version(python: str) -> str | None:
    """LocalStack's version importable by that Python, or None."""
    if not python or not Path(python).exists():
        return None
    done = subprocess.run([python, "-c", "from localstack import constants; print(constants.VERSION)"],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else None


class LocalStack:
    """LocalStack's gateway run directly on this host (no Docker), Step Functions and SQS only."""

    def __init__(self, python: str, port: int = 0):
        self.python = os.path.abspath(python)  # not resolve(): a venv's python is a symlink
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = tempfile.mkdtemp(prefix="parity-localstack-")
        self.process = None

    def start(self, timeout: float = 90) -> "LocalStack":
        """Start it in its own process group and wait until its health endpoint answers."""
        import requests

        env = {
            **os.environ,
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
            # The SQS task integration calls STS first; everything else stays off.
            "SERVICES": "stepfunctions,sqs,sts",
            # The default server (twisted) needs service_identity; hypercorn is LocalStack's other one.
            "GATEWAY_SERVER": "hypercorn",
            # LocalStack believes it is in its container whenever /.dockerenv exists; its files
            # then go to /var/lib/localstack. Keep them in a temporary folder instead.
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": self.root,
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "PERSISTENCE": "0",
        }
        self.log = open(Path(self.root) / "localstack.log", "w")
        self.process = subprocess.Popen([self.python, "-m", "localstack.runtime.main"], cwd=self.root, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                health = requests.get(f"{self.url}/_localstack/health", timeout=2).json()
                if health["services"].get("stepfunctions") in ("available", "running"):
                    return self
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"LocalStack did not start; its log: {Path(self.root) / 'localstack.log'}")

    def stop(self) -> None:
        """Stop the process group started above (only it)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None


def main(argv=None) -> int:
    """Run the scenario against both engines and print the table of differences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--localstack-python", default=str(LOCALSTACK_VENV / "bin" / "python"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCALSTACK_PORT", 0)))
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        return _serve_gateway(None if args.side == "local" else args.side)

    version = localstack_version(args.localstack_python)
    if version is None or not version.startswith(LOCALSTACK_SERIES):
        print(f"make parity: skipped: LocalStack {LOCALSTACK_SERIES}x is not installed for "
              f"{args.localstack_python} (found: {version or 'none'}). It needs Python 3.13; "
              "`make parity` creates .venv-parity/ from requirements-parity.txt when python3.13 exists.")
        return 0
    localstack = LocalStack(args.localstack_python, args.port)
    try:
        localstack.start()
        print(f"LocalStack {version} on {localstack.url}; running the scenario against both engines ...",
              flush=True)
        theirs = _side(localstack.url)
    finally:
        localstack.stop()
        shutil.rmtree(localstack.root, ignore_errors=True)
    ours = _side(None)
    rows, wording = wording_only(diff_records(ours, theirs))
    rows = summarize(rows)
    new = sum(1 for row in rows if row["verdict"] == "NEW")
    steps = len({r["step"] for r in rows})
    same = len(ours) - steps - len(wording)
    print(f"\n{len(ours)} calls: {same} answered alike, {len(wording)} alike but for the error message's "
          f"wording, {steps} differ ({new} NEW differences).\n")
    if rows:
        print(format_table(rows))
        print("\nKnown differences:\n" + (explanations(rows) or "- none"))
    if wording:
        print("\nSame status and code, own wording of the message: " + ", ".join(wording))
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
