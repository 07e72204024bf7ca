"""Generated stages, callers and request sequences through the app against moto, checked against tests/auth/access_model.py.

Each hypothesis sequence draws a stage (entries with aliases and versions, ownerOnly, ACCESS_RULES
with groups, scopes and wildcards, TASK_ROUTES), seeds executions started outside the gateway, then
sends requests from several callers over every route through the app's Lambda handler, with the
request context API Gateway would pass (JWT authorizer, Cognito, IAM). Every answer's status must be
the model's, and no answer may carry the input of an execution the caller may not read.

ACCESS_FUZZ_EXAMPLES sets the number of sequences (default 500; `make fuzz-access` runs 20,000).
"""
import json
import logging
import os
import time
from urllib.parse import quote

import boto3
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from moto import mock_aws

from app import app
from chalicelib import factory
from chalicelib.config import get_config
from tests.auth.access_model import OPERATIONS, Caller, Entry, Execution, Stage

SEQUENCES = int(os.environ.get("ACCESS_FUZZ_EXAMPLES", "500"))
STEPS = 10
ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sfn-gateway-fuzz"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
CAROL = f"arn:aws:iam::{ACCOUNT}:user/carol"
GROUPS = ("g1", "g2", "approvers")
SCOPES = ("s1", "orders/read")
RULE_CALLERS = ("ada", "bob", CAROL, "*", "a*", f"arn:aws:iam::{ACCOUNT}:user/*")
NAMES = ("n1", "n2", "n3")
INPUTS = ("i1", "i2")
FIGURES = {"sequences": 0, "requests": 0, "seconds": 0.0}


class AliasAwareSfn:
    """moto's Step Functions plus what moto 5.2.5 lacks: executions started through an alias or version.

    AWS: StartExecution takes a version or alias ARN; the execution belongs to the machine and
    DescribeExecution / ListExecutions report stateMachineAliasArn / stateMachineVersionArn;
    ListExecutions of an alias or version lists the executions started through it.
    """

    def __init__(self, client):
        self._client = client
        self.started_through = {}  # execution ARN -> {"stateMachineAliasArn": ..., "stateMachineVersionArn": ...}
        self.meta = client.meta

    def __getattr__(self, name):
        return getattr(self._client, name)

    @staticmethod
    def _split(arn: str) -> tuple:
        parts = arn.split(":")
        if len(parts) == 8:
            base = ":".join(parts[:7])
            if parts[7].isdigit():
                return base, {"stateMachineVersionArn": arn}
            return base, {"stateMachineAliasArn": arn, "stateMachineVersionArn": base + ":1"}
        return arn, {}

    def start_execution(self, **params):
        base, through = self._split(params["stateMachineArn"])
        started = self._client.start_execution(**{**params, "stateMachineArn": base})
        self.started_through.setdefault(started["executionArn"], through)
        return started

    def describe_execution(self, **params):
        described = self._client.describe_execution(**params)
        return {**described, **self.started_through.get(params["executionArn"], {})}

    def redrive_execution(self, **params):
        # moto has no RedriveExecution; AWS refuses to redrive an execution that has not failed.
        described = self._client.describe_execution(executionArn=params["executionArn"])
        raise ClientError({"Error": {"Code": "ExecutionNotRedrivable",
                                     "Message": f"Execution is {described['status']}; only FAILED, TIMED_OUT or ABORTED "
                                                "executions can be redriven"}}, "RedriveExecution")

    def describe_state_machine(self, **params):
        return self._client.describe_state_machine(stateMachineArn=self._split(params["stateMachineArn"])[0])

    def list_executions(self, **params):
        base, through = self._split(params["stateMachineArn"])
        if not through:
            page = self._client.list_executions(**params)
            return {**page, "executions": [{**i, **self.started_through.get(i["executionArn"], {})} for i in page["executions"]]}
        # An alias's or version's own executions, paged over them alone (as AWS pages them)
        wanted, items, token = params["stateMachineArn"], [], None
        while True:
            page = self._client.list_executions(stateMachineArn=base, **({"nextToken": token} if token else {}))
            items.extend({**i, **self.started_through.get(i["executionArn"], {})} for i in page["executions"])
            token = page.get("nextToken")
            if not token:
                break
        items = [i for i in items if wanted in (i.get("stateMachineAliasArn"), i.get("stateMachineVersionArn"))]
        start = int(params.get("nextToken") or 0)
        end = start + params.get("maxResults", 100)
        return {"executions": items[start:end], **({"nextToken": str(end)} if end < len(items) else {})}


DATA_FIELDS = {"status", "input", "output", "error", "cause"}


def _execution_records(value):
    """Every object in an answer that names an execution and carries some of its data."""
    if isinstance(value, dict):
        if "executionArn" in value and DATA_FIELDS & set(value):
            yield value
        for item in value.values():
            yield from _execution_records(item)
    elif isinstance(value, list):
        for item in value:
            yield from _execution_records(item)


class _LambdaContext:
    @staticmethod
    def get_remaining_time_in_millis():
        return 29_000


def request_context(caller: Caller | None, malformed: bool = False) -> dict:
    """The requestContext API Gateway passes for this caller (JWT authorizer, Cognito authorizer or IAM)."""
    if caller is None:
        return {}
    if malformed:
        # A context the gateway must refuse (401), never read as some groups
        return {"authorizer": {"callerType": "jwt", "sub": caller.id, "groups": "approvers,g1", "scopes": "[]",
                               "exp": str(int(time.time()) + 600)}}
    if caller.type == "jwt":
        return {"authorizer": {"callerType": "jwt", "sub": caller.id, "principalId": caller.id,
                               "groups": json.dumps(list(caller.groups)), "scopes": json.dumps(list(caller.scopes)),
                               "exp": str(int(time.time()) + 600)}}
    if caller.type == "cognito":
        claims = {"sub": caller.id, "token_use": "access"}
        if caller.groups:
            claims["cognito:groups"] = ",".join(caller.groups)
        if caller.scopes:
            claims["scope"] = " ".join(caller.scopes)
        return {"authorizer": {"claims": claims}}
    return {"identity": {"userArn": caller.id, "accountId": ACCOUNT}}


def call(method: str, route: str, path: str, caller: Caller | None, query=None, body=None, headers=None,
         path_parameters=None, malformed=False) -> tuple[int, dict, str]:
    """One request through the app's Lambda handler; (status, JSON body, raw body text)."""
    event = {
        "httpMethod": method,
        "resource": route,
        "path": path,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
        "requestContext": {"httpMethod": method, "resourcePath": route, "path": "/api" + path,
                           "requestId": "fuzz", **request_context(caller, malformed)},
    }
    FIGURES["requests"] += 1
    response = app(event, _LambdaContext())
    text = response["body"] or ""
    return response["statusCode"], (json.loads(text) if text else {}), text


# --- stages -----------------------------------------------------------------------------------------

CALLERS = (
    Caller("jwt", "ada"), Caller("cognito", "ada"), Caller("cognito", "bob"), Caller("iam", CAROL), Caller("jwt", "eve"),
)


@st.composite
def callers(draw):
    base = draw(st.sampled_from(CALLERS))
    if base.type == "iam":
        return base
    return Caller(base.type, base.id, tuple(draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))),
                  tuple(draw(st.lists(st.sampled_from(SCOPES), unique=True, max_size=2))))


@st.composite
def rules(draw, names):
    operations = draw(st.lists(st.sampled_from(OPERATIONS + ("*",)), min_size=1, max_size=3, unique=True))
    rule = {"operations": operations}
    if operations != ["tasks"] or draw(st.booleans()):
        rule["stateMachines"] = draw(st.lists(st.sampled_from(names + ["*"]), min_size=1, max_size=3, unique=True))
    who = draw(st.sets(st.sampled_from(("callers", "groups", "scopes")), min_size=1))
    pools = {"callers": RULE_CALLERS, "groups": GROUPS, "scopes": SCOPES}
    for key in who:
        rule[key] = draw(st.lists(st.sampled_from(pools[key]), min_size=1, max_size=2, unique=True))
    return rule


@st.composite
def stages(draw, sequence: int):
    orders = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders{sequence}"
    reports = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:reports{sequence}"
    quick = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:quick{sequence}"
    orders_owner_only, reports_owner_only = draw(st.booleans()), draw(st.booleans())
    pool = [
        Entry("orders", orders, orders, owner_only=orders_owner_only),
        Entry("orders-live", orders + ":live", orders, owner_only=orders_owner_only),
        Entry("orders-canary", orders + ":canary", orders, owner_only=orders_owner_only),
        Entry("orders-v1", orders + ":1", orders, owner_only=orders_owner_only),
        Entry("reports", reports, reports, owner_only=reports_owner_only),
        Entry("quick", quick, quick, express=True),
    ]
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique_by=lambda e: e.name))
    names = [entry.name for entry in chosen]
    access_rules = draw(st.none() | st.lists(rules(names), min_size=1, max_size=4))
    return Stage(entries={entry.name: entry for entry in chosen}, rules=access_rules, task_routes=draw(st.booleans()))


def stage_environment(stage: Stage) -> dict:
    machines = {name: {"arn": e.arn, "type": "EXPRESS" if e.express else "STANDARD",
                       **({"ownerOnly": True} if e.owner_only else {})} for name, e in stage.entries.items()}
    environment = {"STATE_MACHINES": json.dumps(machines), "TASK_ROUTES": "on" if stage.task_routes else "off",
                   "STAGE_SECRET_PARAMETER": "/sfn-gateway/fuzz/stage-secret", "METRICS": "off"}
    if stage.rules is not None:
        environment["ACCESS_RULES"] = json.dumps(stage.rules)
    return environment


class AccessModelMachine(RuleBasedStateMachine):
    """One sequence: a generated stage, executions outside the gateway, then requests from several callers."""

    sfn = None  # AliasAwareSfn, set by the test

    @initialize(data=st.data())
    def set_up_stage(self, data):
        FIGURES["sequences"] += 1
        sequence = FIGURES["sequences"]
        self.sent = {}
        self.stage = data.draw(stages(sequence))
        for key in ("STATE_MACHINES", "ACCESS_RULES", "TASK_ROUTES"):
            os.environ.pop(key, None)
        os.environ.update(stage_environment(self.stage))
        get_config.cache_clear()
        raw = self.sfn._client
        for entry in self.stage.entries.values():
            if not entry.qualified and entry.base not in _CREATED:
                raw.create_state_machine(name=entry.base.rsplit(":", 1)[1], definition=PASS, roleArn=ROLE_ARN,
                                         type="EXPRESS" if entry.express else "STANDARD", publish=not entry.express)
                _CREATED.add(entry.base)
        for entry in self.stage.entries.values():
            if entry.base not in _CREATED:
                raw.create_state_machine(name=entry.base.rsplit(":", 1)[1], definition=PASS, roleArn=ROLE_ARN, publish=True)
                _CREATED.add(entry.base)
        # Executions started outside the gateway (console, other tools): through the machine or an alias.
        for index, entry in enumerate(e for e in self.stage.entries.values() if not e.express):
            started = self.sfn.start_execution(stateMachineArn=entry.arn, name=f"console-{index}",
                                               input=json.dumps({"m": f"M{sequence}x{index}"}))
            self._remember(started["executionArn"], entry, None, f"M{sequence}x{index}")

    def _remember(self, arn: str, entry: Entry, owner, marker: str) -> None:
        if arn in self.stage.executions:
            return
        through = self.sfn.started_through.get(arn, {})
        self.stage.executions[arn] = Execution(
            arn=arn, base=entry.base, through=through.get("stateMachineAliasArn") or through.get("stateMachineVersionArn") or entry.base,
            version=through.get("stateMachineVersionArn"), owner=owner, marker=marker)

    # --- the checks every answer gets -------------------------------------------------------------

    def _check_no_leak(self, caller: Caller, text: str, route: str) -> None:
        """No input the caller did not send itself, and no status, input, output, error or cause, of an execution it may not read."""
        sent = self.sent.setdefault(caller.key, set())
        for execution in self.stage.executions.values():
            if execution.marker in text and execution.marker not in sent and not self.stage.readable(caller, execution):
                raise AssertionError(f"{route}: {caller} received the input of {execution} it may not read:\n{text}")
        for described in _execution_records(json.loads(text) if text else {}):
            execution = self.stage.executions.get(described["executionArn"])
            assert execution is not None and self.stage.readable(caller, execution), (
                f"{route}: {caller} received {sorted(set(described) & DATA_FIELDS)} of {described['executionArn']}, "
                f"which it may not read:\n{text}")

    # --- rules: one per route -------------------------------------------------------------------

    @rule(caller=callers(), data=st.data())
    def list_state_machines(self, caller, data):
        status, body, text = call("GET", "/state-machines", "/state-machines", caller)
        assert status == 200, text
        assert [m["name"] for m in body["stateMachines"]] == self.stage.usable(caller)

    @rule(caller=callers(), name=st.sampled_from(["orders", "orders-live", "orders-canary", "orders-v1", "reports", "quick", "payroll"]),
          how=st.sampled_from(["name", "key", "none"]), wait=st.booleans(), value=st.sampled_from(INPUTS), data=st.data())
    def start(self, caller, name, how, wait, value, data):
        body = {"stateMachine": name, "input": {"v": value, "m": f"S{FIGURES['sequences']}{value}"}}
        headers = {}
        chosen = data.draw(st.sampled_from(NAMES))
        if how == "name":
            body["name"] = chosen
        elif how == "key":
            headers["Idempotency-Key"] = chosen
        self.sent.setdefault(caller.key, set()).add(body["input"]["m"])
        status, answer, text = call("POST", "/executions", "/executions", caller, query={"wait": "0"} if wait else None,
                                    body=body, headers=headers)
        entry = self.stage.entries.get(name)
        if entry is None:
            assert status == 404, text
            # Item 5: the 404 names only the machines this caller may use
            assert answer["Message"].endswith(f"known: {sorted(self.stage.usable(caller))}."), text
            return
        if not self.stage.allows(caller, "start", name):
            assert status == 403, text
            return
        if entry.express:
            assert status == 400, text
            return
        assert status in (200, 201, 202, 404, 409), text
        if status in (200, 201, 202):
            self._remember(answer["executionArn"], entry, caller.key, body["input"]["m"])
            execution = self.stage.executions[answer["executionArn"]]
            if wait and not self.stage.allows(caller, "read", name):
                # Item 3: a start-only caller learns nothing of the execution it got back
                assert status == 202 and set(answer) <= {"executionArn", "startDate", "name", "stateMachine"}, text
            elif wait:
                assert status == (202 if self.stage.readable(caller, execution) else 404), text
            else:
                assert status == 201, text
        elif status == 404:
            # Only a ?wait= on a running execution of the same name and input that the caller may not read
            assert wait and not self.stage.readable(caller, self._by_name(entry, answer)), text
        self._check_no_leak(caller, text, "POST /executions")

    def _by_name(self, entry, answer):
        arn = answer["Message"].split("'")[1]
        return self.stage.executions[arn]

    @rule(caller=callers(), data=st.data(),
          route=st.sampled_from(["describe", "history", "stop", "redrive", "wait"]))
    def execution_route(self, caller, data, route):
        arn, base = self._pick_arn(data)
        operation = {"describe": "read", "history": "read", "wait": "read", "stop": "stop", "redrive": "redrive"}[route]
        encoded = quote(arn, safe="")
        method, template, path, query = {
            "describe": ("GET", "/executions/{executionArn}", f"/executions/{encoded}", None),
            "wait": ("GET", "/executions/{executionArn}", f"/executions/{encoded}", {"wait": "0"}),
            "history": ("GET", "/executions/{executionArn}/history", f"/executions/{encoded}/history", None),
            "stop": ("POST", "/executions/{executionArn}/stop", f"/executions/{encoded}/stop", None),
            "redrive": ("POST", "/executions/{executionArn}/redrive", f"/executions/{encoded}/redrive", None),
        }[route]
        status, answer, text = call(method, template, path, caller, query=query, path_parameters={"executionArn": encoded})
        expected = self.stage.execution_answer(caller, operation, arn, base)
        if expected is not None:
            assert status == expected, (route, expected, text)
        elif route in ("describe", "history"):
            assert status == 200, text
        elif route == "wait":
            assert status in (200, 202), text
        elif route == "stop":
            assert status == 200, text
        else:
            assert status == 409 and answer["Code"] == "ExecutionNotRedrivable", text
            if not self.stage.readable(caller, self.stage.executions[arn]):
                # Item 3: a redrive-only caller is not told the execution's status
                assert "RUNNING" not in text and "ABORTED" not in text, text
        self._check_no_leak(caller, text, route)

    def _pick_arn(self, data) -> tuple:
        known = sorted(self.stage.executions)
        bases = sorted({e.base for e in self.stage.entries.values()} | {f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:payroll"})
        if known and data.draw(st.integers(0, 3)):
            arn = data.draw(st.sampled_from(known))
            return arn, self.stage.executions[arn].base
        # A guessed or forged name: another's name with its tag swapped, or one that never ran
        base = data.draw(st.sampled_from(bases))
        name = data.draw(st.sampled_from(["never-ran", "0123456789abcdef0123-n1"] + [a.rsplit(":", 1)[1][-10:] for a in known]))
        return base.replace(":stateMachine:", ":execution:", 1) + ":" + name, base

    @rule(caller=callers(), name=st.sampled_from(["orders", "orders-live", "orders-canary", "orders-v1", "reports", "quick", "payroll"]),
          limit=st.sampled_from([None, "1", "2"]))
    def list_executions(self, caller, name, limit):
        query = {"stateMachine": name, **({"limit": limit} if limit else {})}
        seen, token, pages = [], None, 0
        while True:
            status, answer, text = call("GET", "/executions", "/executions", caller, query={**query, **({"nextToken": token} if token else {})})
            entry = self.stage.entries.get(name)
            if entry is None:
                assert status == 404, text
                return
            if not self.stage.allows(caller, "read", name):
                assert status == 403, text
                return
            if entry.express:
                assert status == 400, text
                return
            assert status == 200, text
            self._check_no_leak(caller, text, "GET /executions")
            items = answer["executions"]
            token = answer.get("nextToken")
            # Item 6: never an empty page with a nextToken
            assert items or not token, text
            seen.extend(item["executionArn"] for item in items)
            pages += 1
            if not token or pages > 20:
                break
        expected = {e.arn for e in self.stage.listed_by(entry) if self.stage.readable(caller, e)}
        assert set(seen) == expected, (seen, expected)

    @rule(caller=callers(), name=st.sampled_from(["orders", "orders-live", "reports", "quick", "payroll"]))
    def describe_state_machine(self, caller, name):
        status, answer, text = call("GET", "/state-machines/{name}", f"/state-machines/{name}", caller,
                                    path_parameters={"name": name})
        if name not in self.stage.entries:
            assert status == 404, text
        elif not self.stage.allows(caller, "read", name):
            assert status == 403, text
        else:
            assert status == 200, text

    @rule(caller=callers(), name=st.sampled_from(["quick", "orders", "payroll"]))
    def start_sync(self, caller, name):
        status, answer, text = call("POST", "/sync-executions", "/sync-executions", caller,
                                    body={"stateMachine": name, "input": {"m": "sync"}})
        entry = self.stage.entries.get(name)
        if entry is None:
            assert status == 404, text
        elif not self.stage.allows(caller, "sync", name):
            assert status == 403, text
        else:
            assert status not in (401, 403, 404), text
        self._check_no_leak(caller, text, "POST /sync-executions")

    @rule(caller=callers(), route=st.sampled_from(["success", "failure", "heartbeat"]))
    def answer_task(self, caller, route):
        body = {"taskToken": "AAAA-not-a-real-token"}
        status, answer, text = call("POST", f"/tasks/{route}", f"/tasks/{route}", caller, body=body)
        if not self.stage.allows(caller, "tasks"):
            assert status == 403, text
        elif not self.stage.task_routes:
            assert status == 404 and answer["Code"] == "TaskRoutesDisabled", text
        else:
            assert status not in (401, 403), text

    @rule(caller=callers(), route=st.sampled_from(["/state-machines", "/executions"]))
    def malformed_identity(self, caller, route):
        # Item 1: an authorizer context that is not exactly the authorizer's form is refused, never guessed
        status, answer, text = call("GET", route, route, caller, query={"stateMachine": "orders"} if route == "/executions" else None,
                                    malformed=True)
        assert status == 401 and answer["Code"] == "CallerRefused", text

    @invariant()
    def nothing_unexpected(self):
        pass


_CREATED = set()


def test_generated_stages_callers_and_requests_match_the_reference_model(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key in ("STATE_MACHINES", "ACCESS_RULES", "TASK_ROUTES", "STAGE_SECRET_PARAMETER", "METRICS"):
        monkeypatch.delenv(key, raising=False)
    # One JSON access line per request is the app's; thousands of them captured would only slow the run.
    monkeypatch.setattr(logging.getLogger("sfn_gateway.access"), "level", logging.WARNING)
    monkeypatch.setattr(logging.getLogger("sfn_gateway"), "level", logging.CRITICAL)
    FIGURES.update(sequences=0, requests=0)
    _CREATED.clear()
    started = time.perf_counter()
    with mock_aws():
        sfn = AliasAwareSfn(boto3.client("stepfunctions", region_name=REGION))
        monkeypatch.setattr(factory, "get_sfn_client", lambda read_timeout=None: sfn)
        AccessModelMachine.sfn = sfn
        run_state_machine_as_test(AccessModelMachine, settings=settings(
            max_examples=SEQUENCES, stateful_step_count=STEPS, deadline=None, derandomize=False,
            suppress_health_check=list(HealthCheck), database=None,
        ))
    for key in ("STATE_MACHINES", "ACCESS_RULES", "TASK_ROUTES", "STAGE_SECRET_PARAMETER", "METRICS"):
        os.environ.pop(key, None)
    get_config.cache_clear()
    FIGURES["seconds"] = time.perf_counter() - started
    with capsys.disabled():
        print(f"\naccess fuzz: {FIGURES['sequences']} generated sequences, {FIGURES['requests']} requests, "
              f"{FIGURES['seconds']:.1f} s")
    assert FIGURES["sequences"] >= SEQUENCES
