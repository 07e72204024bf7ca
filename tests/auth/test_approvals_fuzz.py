"""Generated approvals, callers and request sequences through the app against moto, checked against tests/auth/access_model.py.

Each hypothesis sequence draws a stage (machines, an alias, an EXPRESS one, ACCESS_RULES with `approve`
among the other operations, or none), then interleaves: queue messages (well-formed ones with generated
machines and candidates, redeliveries, late and malformed ones) through the consumer's entry point
(chalicelib.approvals.wiring.consume, which app.py's approvals_consumer calls); the end of an execution
through the closer's (wiring.close); and GET /approvals (every page), GET /approvals/{id},
POST /approvals/{id}/approve|reject from generated callers, through the app's Lambda handler. Every
status and body must be the model's: who may see and answer, newest first, first answer wins (409),
closed (410), the 404 of an approval the caller may not answer byte-identical to an unknown id's,
SendTaskSuccess sent once with the right token, and no response holding a task token or the title
or details of an approval the caller may not answer. Newest first is checked on createdAt (milliseconds):
approvals created in the same millisecond may come in either order.

ACCESS_FUZZ_EXAMPLES sets the number of sequences (default 200; `make fuzz-access` runs 20,000).
"""
import json
import logging
import os
import time

import boto3
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from moto import mock_aws

from chalicelib import factory
from chalicelib.approvals import closer, consumer, inbox, wiring  # noqa: F401 (imported here: each sets its logger's level on import)
from chalicelib.approvals.store import table_definition
from chalicelib.config import get_config
from tests.auth.access_model import Approval, Caller, Entry, Stage
from tests.auth.test_access_fuzz import ACCOUNT, CAROL, GROUPS, REGION, call, callers, rules

SEQUENCES = int(os.environ.get("ACCESS_FUZZ_EXAMPLES", "200"))
STEPS = 10
FIGURES = {"sequences": 0, "requests": 0, "messages": 0, "seconds": 0.0}
OUTCOMES = {}  # (route, status) -> how often: shows the sequences reach every answer
CANDIDATE_USERS = ("ada", "bob", CAROL, "eve", "zed")
CANDIDATE_GROUPS = GROUPS + ("nobody",)
UNKNOWN_IDS = ("apv_" + "x" * 24, "apv_" + "0" * 24, "apv_short", "not-an-approval")
STAGE_KEYS = ("STATE_MACHINES", "ACCESS_RULES", "TASK_ROUTES", "STAGE_SECRET_PARAMETER", "METRICS", "APPROVALS",
              "APPROVALS_TABLE", "APPROVALS_DLQ_URL", "APPROVALS_QUEUE")


class RecordingStepFunctions:
    """The gateway's Step Functions client for SendTaskSuccess: records what each workflow received."""

    def __init__(self):
        self.sent = []

    def send_task_success(self, taskToken, output):
        self.sent.append((taskToken, json.loads(output)))
        return {}


def machine_arn(name: str, sequence: int) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}{sequence}"


@st.composite
def approval_stages(draw, sequence: int):
    """Machines orders (maybe unlisted, its alias orders-live listed), reports, quick (EXPRESS); payroll never listed."""
    orders, reports, quick = (machine_arn(n, sequence) for n in ("orders", "reports", "quick"))
    entries = {}
    if draw(st.booleans()):
        entries["orders"] = Entry("orders", orders, orders)
    if draw(st.booleans()) or not entries:
        entries["orders-live"] = Entry("orders-live", orders + ":live", orders)
    entries["reports"] = Entry("reports", reports, reports)
    entries["quick"] = Entry("quick", quick, quick, express=True)
    names = list(entries)
    grants = st.fixed_dictionaries({
        "operations": st.lists(st.sampled_from(("approve", "*", "read")), min_size=1, max_size=2, unique=True),
        "stateMachines": st.lists(st.sampled_from(names + ["*"]), min_size=1, max_size=2, unique=True),
    }, optional={"callers": st.lists(st.sampled_from(("ada", "bob", CAROL, "*", "a*")), min_size=1, max_size=2, unique=True),
                 "groups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True)}).filter(
        lambda r: "callers" in r or "groups" in r)
    # The access fuzz's rules (any operation) and, three times as often, rules that grant `approve`
    chosen = draw(st.none() | st.lists(st.one_of(grants, grants, grants, rules(names)), min_size=1, max_size=4))
    return Stage(entries=entries, rules=chosen, task_routes=False)


# What a malformed message gets wrong: each must go to the dead-letter queue, adding nothing.
MALFORMED = {
    "unlisted machine": lambda m, seq: {**m, "executionArn": _on_machine(m["executionArn"], "payroll")},
    "express machine": lambda m, seq: {**m, "executionArn": _on_machine(m["executionArn"], f"quick{seq}")},
    "groups not a list": lambda m, seq: {**m, "candidateGroups": "approvers"},
    "no token": lambda m, seq: {k: v for k, v in m.items() if k != "taskToken"},
    "unknown field": lambda m, seq: {**m, "assignee": "ada"},
    "not JSON": lambda m, seq: "{not json",
}


def _on_machine(execution_arn: str, machine: str) -> str:
    """The same execution name on another state machine."""
    prefix, _, name = execution_arn.rsplit(":", 2)
    return f"{prefix}:{machine}:{name}"


class ApprovalsModelMachine(RuleBasedStateMachine):
    """One sequence: a generated stage, then messages, execution ends and requests from several callers."""

    dynamodb = sqs = dlq = sfn = None  # set by the test
    current = None  # the sequence running now, which the consumer's ids reach

    def __init__(self):
        super().__init__()
        ApprovalsModelMachine.current = self

    @initialize(data=st.data())
    def set_up_stage(self, data):
        FIGURES["sequences"] += 1
        self.sequence = FIGURES["sequences"]
        self.stage = data.draw(approval_stages(self.sequence))
        # A fresh table per sequence (the one before it deleted): each sequence's listing starts empty
        self.table = f"approvals-fuzz-{self.sequence}"
        for table in self.dynamodb.list_tables()["TableNames"]:
            self.dynamodb.delete_table(TableName=table)
        self.dynamodb.create_table(**table_definition(self.table))
        environment = {
            "STATE_MACHINES": json.dumps({name: {"arn": e.arn, "type": "EXPRESS" if e.express else "STANDARD"}
                                          for name, e in self.stage.entries.items()}),
            "APPROVALS": "on", "APPROVALS_TABLE": self.table, "APPROVALS_DLQ_URL": self.dlq,
            "APPROVALS_QUEUE": "approvals-fuzz", "STAGE_SECRET_PARAMETER": "/sfn-gateway/fuzz/stage-secret",
            "METRICS": "off",
        }
        if self.stage.rules is not None:
            environment["ACCESS_RULES"] = json.dumps(self.stage.rules)
        for key in STAGE_KEYS:
            os.environ.pop(key, None)
        os.environ.update(environment)
        get_config.cache_clear()
        self.sent_messages = []  # SQS records already delivered once, for redeliveries
        self.clock_ms = 1_764_000_000_000  # SentTimestamp / stopDate: a logical clock, one tick per event
        self.ids = []  # the ids the consumer hands out, in order
        self.sfn.sent.clear()
        # Approvals waiting from the start, so that the requests find some
        self._deliver(data, data.draw(st.integers(0, 3)))

    # --- the checks every answer gets -----------------------------------------------------------------

    def _check_no_leak(self, caller, text: str, asked_id: str | None, route: str) -> None:
        """No task token in any answer; nothing of an approval the caller may not answer (its id only if asked for)."""
        for approval in self.stage.approvals.values():
            assert approval.token not in text, f"{route}: the task token of {approval.id} in\n{text}"
            if self.stage.may_answer(caller, approval):
                continue
            for secret in (approval.title, approval.details["note"]):
                assert secret not in text, f"{route}: {caller} saw {secret!r} of {approval.id} it may not answer:\n{text}"
            assert approval.id not in text or approval.id == asked_id, f"{route}: {caller} saw id {approval.id}:\n{text}"

    def _expect_not_found(self, caller, method, approval_id, suffix, text, body):
        """The 404 of an approval the caller may not answer is byte-identical to an unknown id's (apart from the id)."""
        assert json.loads(text)["Code"] == "ApprovalNotFound", text
        unknown = UNKNOWN_IDS[0]
        _, _, unknown_text = call(method, "/approvals/{approvalId}" + suffix, f"/approvals/{unknown}{suffix}", caller,
                                  body=body, path_parameters={"approvalId": unknown})
        assert text.replace(approval_id, unknown) == unknown_text, (text, unknown_text)

    # --- the queue and the closer -------------------------------------------------------------------

    @rule(data=st.data(), count=st.integers(1, 2))
    def messages_arrive(self, data, count):
        """A batch through the consumer entry point: new requests, redeliveries and malformed messages."""
        self._deliver(data, count)

    def _deliver(self, data, count):
        records = []
        for _ in range(count):
            self.clock_ms += 1
            # "late": sent a little earlier than it arrives, maybe before its execution ended
            kind = data.draw(st.sampled_from(["new"] * 4 + ["late", "redelivered", "malformed"]))
            if kind == "redelivered" and self.sent_messages:
                records.append(data.draw(st.sampled_from(self.sent_messages))[0])
                continue
            n = FIGURES["messages"]
            FIGURES["messages"] += 1
            execution = data.draw(st.sampled_from(["orders", "reports"])) + f"{self.sequence}:run-{data.draw(st.integers(0, 1))}"
            body = {
                "taskToken": f"AQCE{n}tok+en/with=={self.sequence}x{n}",
                "executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{execution}",
                "title": f"Title-{self.sequence}-{n}-",
                "details": {"note": f"Details-{self.sequence}-{n}-"},
                "candidateUsers": data.draw(st.lists(st.sampled_from(CANDIDATE_USERS), max_size=2, unique=True)),
                "candidateGroups": data.draw(st.lists(st.sampled_from(CANDIDATE_GROUPS), max_size=2, unique=True)),
                "timeoutSeconds": 86_400,
            }
            sent_ms = self.clock_ms - (data.draw(st.integers(1, 10)) if kind == "late" else 0)
            record = {"messageId": f"m{n}", "attributes": {"SentTimestamp": str(sent_ms)}}
            if kind == "malformed":
                broken = MALFORMED[data.draw(st.sampled_from(sorted(MALFORMED)))](body, self.sequence)
                records.append({**record, "body": broken if isinstance(broken, str) else json.dumps(broken)})
                continue
            record["body"] = json.dumps(body)
            approval = Approval(id=None, token=body["taskToken"], execution_arn=body["executionArn"], title=body["title"],
                                details=body["details"], candidate_users=tuple(body["candidateUsers"]),
                                candidate_groups=tuple(body["candidateGroups"]))
            records.append(record)
            self.sent_messages.append((record, approval))
        # The consumer hands out one id per well-formed message, in order: the model learns them the same way.
        handed = len(self.ids)
        counts = wiring.consume({"Records": records})
        new_ids = self.ids[handed:]
        # Replay the model over the batch in order, now that each well-formed message's id is known.
        expected = {"added": 0, "duplicate": 0, "ended": 0, "deadLettered": 0}
        fresh = iter(new_ids)
        for record in records:
            pair = next((p for p in self.sent_messages if p[0] is record), None)
            if pair is None:
                expected["deadLettered"] += 1
                continue
            approval = pair[1]
            given = next(fresh)
            if approval.id is None:
                approval.id = given
            candidate = approval if approval.id == given else Approval(**{**approval.__dict__, "id": given, "status": "PENDING"})
            outcome = self.stage.receive(candidate, int(record["attributes"]["SentTimestamp"]))
            expected[outcome] += 1
        assert next(fresh, None) is None, "the consumer handed out more ids than there were well-formed messages"
        assert counts == expected, (counts, expected)
        for outcome, n in counts.items():
            OUTCOMES[("message", outcome)] = OUTCOMES.get(("message", outcome), 0) + n

    @rule(data=st.data())
    def execution_ends(self, data):
        """EventBridge's status change through the closer's entry point: the run's pending approvals close."""
        self.clock_ms += 1
        execution = data.draw(st.sampled_from(["orders", "reports"])) + f"{self.sequence}:run-{data.draw(st.integers(0, 1))}"
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{execution}"
        status = data.draw(st.sampled_from(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]))
        closed = wiring.close({"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
                               "detail": {"executionArn": arn, "status": status, "stopDate": self.clock_ms}})
        assert closed == self.stage.end(arn, self.clock_ms)
        OUTCOMES[("closed", min(closed, 2))] = OUTCOMES.get(("closed", min(closed, 2)), 0) + 1

    # --- the routes -----------------------------------------------------------------------------------

    @rule(data=st.data(), limit=st.sampled_from([None, "1", "2", "3"]))
    def list_approvals(self, data, limit):
        caller = self._caller(data)
        seen, token, pages = [], None, 0
        while True:
            query = {**({"limit": limit} if limit else {}), **({"nextToken": token} if token else {})}
            status, answer, text = call("GET", "/approvals", "/approvals", caller, query=query or None)
            assert status == 200, text
            self._check_no_leak(caller, text, None, "GET /approvals")
            for secret in (a.details["note"] for a in self.stage.approvals.values()):
                assert secret not in text, f"GET /approvals holds details:\n{text}"  # the list never shows details
            if limit:
                assert len(answer["approvals"]) <= int(limit), text
            seen.extend(answer["approvals"])
            token = answer["nextToken"]
            pages += 1
            if not token:
                break
            assert pages < 30, "the listing never ends"
        expected = self.stage.pending_for(caller)
        OUTCOMES[("list", min(len(expected), 3))] = OUTCOMES.get(("list", min(len(expected), 3)), 0) + 1
        assert sorted(a["id"] for a in seen) == sorted(a.id for a in expected), (seen, expected)
        # Newest first: createdAt never rises, and the model's order (by arrival) agrees wherever createdAt differs
        created = [a["createdAt"] for a in seen]
        assert created == sorted(created, reverse=True), created
        at = {a["id"]: a["createdAt"] for a in seen}
        model_order = [at[a.id] for a in expected]
        assert model_order == sorted(model_order, reverse=True), (model_order, seen)
        by_id = {a.id: a for a in expected}
        for item in seen:
            approval = by_id[item["id"]]
            entry = self.stage.approval_entry(approval.execution_arn)
            assert (item["title"], item["stateMachine"], item["executionArn"], item["candidateUsers"],
                    item["candidateGroups"]) == (approval.title, entry.name, approval.execution_arn,
                                                 list(approval.candidate_users), list(approval.candidate_groups)), item

    def _caller(self, data) -> Caller:
        """Any generated caller, or (as often) one named by a recorded approval's candidates."""
        approvals = list(self.stage.approvals.values())
        if not approvals or data.draw(st.booleans()):
            return data.draw(callers())
        approval = data.draw(st.sampled_from(approvals))
        named = [u for u in approval.candidate_users if u != "zed"]
        if named and data.draw(st.booleans()):
            user = data.draw(st.sampled_from(named))
            if user == CAROL:
                return Caller("iam", CAROL)
            return Caller(data.draw(st.sampled_from(["jwt", "cognito"])), user,
                          tuple(data.draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))))
        groups = data.draw(st.lists(st.sampled_from(approval.candidate_groups or GROUPS), unique=True, max_size=2))
        return Caller(data.draw(st.sampled_from(["jwt", "cognito"])), data.draw(st.sampled_from(["ada", "bob", "eve"])),
                      tuple(groups))

    def _pick_id(self, data) -> str:
        known = list(self.stage.approvals)
        if known and data.draw(st.integers(0, 4)):
            return data.draw(st.sampled_from(known))
        return data.draw(st.sampled_from(UNKNOWN_IDS))

    @rule(data=st.data())
    def show_approval(self, data):
        caller = self._caller(data)
        approval_id = self._pick_id(data)
        status, answer, text = call("GET", "/approvals/{approvalId}", f"/approvals/{approval_id}", caller,
                                    path_parameters={"approvalId": approval_id})
        expected = self.stage.approval_answer(caller, approval_id, None)
        assert status == expected, (expected, text)
        OUTCOMES[("show", status)] = OUTCOMES.get(("show", status), 0) + 1
        if status == 404:
            self._expect_not_found(caller, "GET", approval_id, "", text, None)
        else:
            self._check_shown(self.stage.approvals[approval_id], answer, text)
        self._check_no_leak(caller, text, approval_id, "GET /approvals/{id}")

    @rule(data=st.data(), decision=st.sampled_from(["approved", "rejected"]),
          comment=st.sampled_from([None, "ok", "not this time"]))
    def answer_approval(self, data, decision, comment):
        caller = self._caller(data)
        approval_id = self._pick_id(data)
        suffix = {"approved": "/approve", "rejected": "/reject"}[decision]
        body = {"comment": comment} if comment is not None else {}
        before = self.stage.approvals.get(approval_id)
        previous = (before.status, before.answered_by, before.comment) if before else None
        sent_before = len(self.sfn.sent)
        status, answer, text = call("POST", "/approvals/{approvalId}" + suffix, f"/approvals/{approval_id}{suffix}",
                                    caller, body=body, path_parameters={"approvalId": approval_id})
        expected = self.stage.approval_answer(caller, approval_id, decision)
        assert status == expected, (expected, text)
        OUTCOMES[("answer", status)] = OUTCOMES.get(("answer", status), 0) + 1
        if status == 200:
            approval = self.stage.approvals[approval_id]
            approval.comment = comment or ""
            self._check_shown(approval, answer, text)
            # The workflow got exactly one SendTaskSuccess, with this approval's token and the decision
            [(token, output)] = self.sfn.sent[sent_before:]
            assert token == approval.token
            assert (output["decision"], output["comment"], output["data"], output["answeredBy"]) == (
                decision, comment or "", {}, caller.id), output
        else:
            assert self.sfn.sent[sent_before:] == [], "an answer that was refused reached the workflow"
            code = {404: "ApprovalNotFound", 409: "ApprovalAlreadyAnswered", 410: "ApprovalClosed"}[status]
            assert answer["Code"] == code, text
            if before is not None:  # nothing changed
                assert (before.status, before.answered_by, before.comment) == previous
            if status == 404:
                self._expect_not_found(caller, "POST", approval_id, suffix, text, body)
        self._check_no_leak(caller, text, approval_id, "POST /approvals/{id}" + suffix)

    def _check_shown(self, approval: Approval, shown: dict, text: str) -> None:
        assert shown["id"] == approval.id and shown["status"] == approval.status, text
        assert shown["title"] == approval.title and shown["details"] == approval.details, text
        assert shown["stateMachine"] == self.stage.approval_entry(approval.execution_arn).name, text
        if approval.status in ("APPROVED", "REJECTED"):
            assert (shown["answeredBy"], shown["comment"]) == (approval.answered_by, approval.comment), text
        else:
            assert "answeredBy" not in shown, text


def test_generated_approvals_callers_and_requests_match_the_reference_model(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key in STAGE_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(logging.getLogger("sfn_gateway.access"), "level", logging.WARNING)
    monkeypatch.setattr(logging.getLogger("sfn_gateway"), "level", logging.CRITICAL)
    monkeypatch.setattr(logging.getLogger("sfn_gateway.approvals"), "level", logging.CRITICAL)
    FIGURES.update(sequences=0, requests=0, messages=0)
    OUTCOMES.clear()
    machine = ApprovalsModelMachine
    # Ids the consumer hands out, recorded in order (their shape is the store's: apv_ + 24 URL-safe characters)
    handed_out = consumer.new_id

    def recorded_id():
        approval_id = handed_out()
        machine.current.ids.append(approval_id)
        return approval_id

    monkeypatch.setattr(consumer, "new_id", recorded_id)

    started = time.perf_counter()
    requests_before = _requests()
    with mock_aws():
        machine.dynamodb = boto3.client("dynamodb", region_name=REGION)
        machine.sqs = boto3.client("sqs", region_name=REGION)
        machine.dlq = machine.sqs.create_queue(QueueName="approvals-fuzz-dlq")["QueueUrl"]
        machine.sfn = RecordingStepFunctions()
        monkeypatch.setattr(factory, "get_dynamodb_client", lambda: machine.dynamodb)
        monkeypatch.setattr(factory, "get_sqs_client", lambda: machine.sqs)
        monkeypatch.setattr(factory, "get_sfn_client", lambda read_timeout=None: machine.sfn)
        run_state_machine_as_test(ApprovalsModelMachine, settings=settings(
            max_examples=SEQUENCES, stateful_step_count=STEPS, deadline=None, derandomize=False,
            suppress_health_check=list(HealthCheck), database=None,
        ))
    for key in STAGE_KEYS:
        os.environ.pop(key, None)
    get_config.cache_clear()
    FIGURES["seconds"] = time.perf_counter() - started
    FIGURES["requests"] = _requests() - requests_before
    with capsys.disabled():
        print(f"\napprovals fuzz: {FIGURES['sequences']} generated sequences, {FIGURES['requests']} requests, "
              f"{FIGURES['messages']} queue messages, {FIGURES['seconds']:.1f} s\n"
              f"  outcomes: {dict(sorted(OUTCOMES.items()))}")
    assert FIGURES["sequences"] >= SEQUENCES


def _requests() -> int:
    from tests.auth import test_access_fuzz

    return test_access_fuzz.FIGURES["requests"]

