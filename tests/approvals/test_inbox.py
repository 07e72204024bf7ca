"""The inbox over a real (moto) DynamoDB table: who sees what, first answer wins, closed approvals."""
import json
import logging

import boto3
import pytest

from chalicelib.approvals.closer import close_ended_execution
from chalicelib.approvals.consumer import ApprovalsNotRecorded, consume
from chalicelib.approvals.inbox import ApprovalsInbox
from chalicelib.errors import (
    ApprovalAlreadyAnswered,
    ApprovalClosed,
    ApprovalNotFound,
    BackendUnavailable,
    TaskTimedOut,
    Throttled,
    ValidationError,
)
from tests.approvals.conftest import ADA, BOB, CAROL, TOKEN, config_with, message
from tests.conftest import execution_arn

CONFIG = config_with()


class FakeStepFunctions:
    """Records SendTaskSuccess calls; raises what it is told to."""

    def __init__(self):
        self.sent = []
        self.fail_with = None

    def __call__(self, token, answer):
        if self.fail_with:
            raise self.fail_with
        self.sent.append((token, answer))


@pytest.fixture
def sfn():
    return FakeStepFunctions()


@pytest.fixture
def dead_letters(dynamodb):
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs, sqs.create_queue(QueueName="approvals-dlq")["QueueUrl"]


def add(store, dead_letters, clock, *bodies, sent=None):
    sqs, dlq = dead_letters
    attributes = {"SentTimestamp": str(int(sent.timestamp() * 1000))} if sent else {}
    records = [{"messageId": f"m{i}", "body": body, "attributes": attributes} for i, body in enumerate(bodies)]
    counts = consume(records, store, CONFIG.registry, sqs, dlq, clock=clock)
    clock.tick()
    return counts


def inbox(store, caller, sfn, clock, rules=CONFIG):
    return ApprovalsInbox(store, rules.registry, rules.access_rules, caller, sfn, clock=clock)


def only_id(store, clock, caller=ADA):
    return inbox(store, caller, None, clock).list_pending()["approvals"][0]["id"]


def test_a_message_becomes_a_pending_approval_listed_for_its_candidates(store, dead_letters, clock, sfn):
    assert add(store, dead_letters, clock, message()) == {"added": 1, "duplicate": 0, "ended": 0, "deadLettered": 0}

    page = inbox(store, ADA, sfn, clock).list_pending()

    [listed] = page["approvals"]
    assert listed["id"].startswith("apv_") and len(listed["id"]) == 28
    assert listed == {
        "id": listed["id"], "title": "Refund 120 EUR", "stateMachine": "orders",
        "executionArn": execution_arn("orders", "refund-42"), "createdAt": "2026-12-04T12:00:00.000+00:00",
        "expiresAt": "2026-12-04T13:00:00.000+00:00", "candidateGroups": ["approvers"], "candidateUsers": [],
    }
    assert page["nextToken"] is None


def test_show_adds_details_and_status_and_never_the_token(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)

    shown = inbox(store, ADA, sfn, clock).show(approval_id)

    assert shown["status"] == "PENDING"
    assert shown["details"] == {"amount": 120, "currency": "EUR"}
    assert TOKEN not in json.dumps(shown)
    assert "taskToken" not in shown


def test_a_redelivered_message_adds_no_second_approval(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())

    assert add(store, dead_letters, clock, message()) == {"added": 0, "duplicate": 1, "ended": 0, "deadLettered": 0}
    assert len(inbox(store, ADA, sfn, clock).list_pending()["approvals"]) == 1


def test_a_malformed_message_goes_to_the_dead_letter_queue_with_a_log_line_naming_the_execution(
        store, dead_letters, clock, caplog):
    caplog.set_level(logging.INFO, logger="sfn_gateway.approvals")
    body = message(timeoutSeconds="soon")

    assert add(store, dead_letters, clock, body) == {"added": 0, "duplicate": 0, "ended": 0, "deadLettered": 1}

    sqs, dlq = dead_letters
    [dead] = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert dead["Body"] == body
    assert "timeoutSeconds must be" in dead["MessageAttributes"]["error"]["StringValue"]
    [line] = [json.loads(r.getMessage()) for r in caplog.records]
    assert line["event"] == "approval-message-malformed"
    assert line["executionArn"] == execution_arn("orders", "refund-42")
    assert TOKEN not in caplog.text


def test_a_table_fault_fails_the_batch_so_sqs_delivers_it_again(store, dead_letters, clock, monkeypatch):
    monkeypatch.setattr(store, "add", lambda *a: (_ for _ in ()).throw(Throttled("slow down")))

    with pytest.raises(ApprovalsNotRecorded, match="m0"):
        add(store, dead_letters, clock, message())


def test_listing_is_newest_first_and_paged(store, dead_letters, clock, sfn):
    for n in range(5):
        add(store, dead_letters, clock, message(taskToken=f"token-{n}", title=f"t{n}"))
    view = inbox(store, ADA, sfn, clock)

    first = view.list_pending(limit=2)
    second = view.list_pending(limit=2, next_token=first["nextToken"])
    third = view.list_pending(limit=2, next_token=second["nextToken"])

    titles = [a["title"] for page in (first, second, third) for a in page["approvals"]]
    assert titles == ["t4", "t3", "t2", "t1", "t0"]
    assert third["nextToken"] is None


def test_a_forged_next_token_is_a_400(store, sfn, clock):
    with pytest.raises(ValidationError, match="nextToken is not valid"):
        inbox(store, ADA, sfn, clock).list_pending(next_token="eyJpZCI6IngifQ==")


def test_candidates_and_approve_rights_decide_who_sees_and_answers(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock,
        message(taskToken="a", title="orders for approvers"),
        message(taskToken="b", title="orders for bob", candidateGroups=[], candidateUsers=["bob"]),
        message(taskToken="c", title="orders for anyone", candidateGroups=[]),
        message(taskToken="d", title="payroll for approvers", executionArn=execution_arn("payroll", "p1")))

    def titles(caller):
        return sorted(a["title"] for a in inbox(store, caller, sfn, clock).list_pending()["approvals"])

    assert titles(ADA) == ["orders for anyone", "orders for approvers"]
    assert titles(CAROL) == ["orders for anyone", "orders for approvers", "payroll for approvers"]
    # bob is a candidate of one, but no rule grants him approve on orders.
    assert titles(BOB) == []
    # Without ACCESS_RULES everyone has approve; candidates still decide.
    open_stage = config_with(None)
    assert sorted(a["title"] for a in inbox(store, BOB, sfn, clock, open_stage).list_pending()["approvals"]) == [
        "orders for anyone", "orders for bob"]


def test_a_non_candidate_gets_exactly_the_404_of_an_unknown_id(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)
    unknown = "apv_" + "A" * 24

    def refusal(caller, target, action):
        with pytest.raises(ApprovalNotFound) as refused:
            action(inbox(store, caller, sfn, clock), target)
        return str(refused.value).replace(target, "<id>")

    for action in (lambda i, t: i.show(t), lambda i, t: i.answer(t, "approved")):
        assert refusal(BOB, approval_id, action) == refusal(BOB, unknown, action) == refusal(ADA, unknown, action)
    assert sfn.sent == []
    assert inbox(store, ADA, sfn, clock).show(approval_id)["status"] == "PENDING"


def test_approving_sends_the_decision_and_the_first_answer_wins(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)

    answered = inbox(store, ADA, sfn, clock).answer(approval_id, "approved", "fine", {"limit": 200})

    assert answered["status"] == "APPROVED"
    assert (answered["answeredBy"], answered["comment"]) == ("ada", "fine")
    assert sfn.sent == [(TOKEN, {"decision": "approved", "comment": "fine", "data": {"limit": 200},
                                 "answeredBy": "ada", "answeredAt": "2026-12-04T12:00:01.000+00:00"})]
    assert TOKEN not in json.dumps(answered)
    with pytest.raises(ApprovalAlreadyAnswered):
        inbox(store, CAROL, sfn, clock).answer(approval_id, "rejected", "no")
    assert len(sfn.sent) == 1
    assert inbox(store, CAROL, sfn, clock).show(approval_id)["answeredBy"] == "ada"
    assert inbox(store, ADA, sfn, clock).list_pending()["approvals"] == []


def test_a_rejection_sends_rejected_with_empty_comment_and_data(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())

    inbox(store, ADA, sfn, clock).answer(only_id(store, clock), "rejected")

    assert sfn.sent[0][1]["decision"] == "rejected"
    assert (sfn.sent[0][1]["comment"], sfn.sent[0][1]["data"]) == ("", {})


def test_an_answer_losing_the_conditional_write_gets_409_and_sends_nothing(store, dead_letters, clock, sfn, monkeypatch):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)
    view = inbox(store, ADA, sfn, clock)
    # Both read PENDING; carol writes between ada's read and ada's conditional write.
    original_get = store.get

    def get_then_lose(approval_id_):
        item = original_get(approval_id_)
        monkeypatch.setattr(store, "get", original_get)
        inbox(store, CAROL, sfn, clock).answer(approval_id_, "rejected")
        return item

    monkeypatch.setattr(store, "get", get_then_lose)

    with pytest.raises(ApprovalAlreadyAnswered):
        view.answer(approval_id, "approved")
    assert [answer["answeredBy"] for _, answer in sfn.sent] == ["carol"]
    assert view.show(approval_id)["status"] == "REJECTED"


def test_the_end_of_the_execution_closes_a_pending_approval_410_and_unlisted(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)
    assert close_ended_execution(ended(clock), store) == 1

    view = inbox(store, ADA, sfn, clock)
    assert view.list_pending()["approvals"] == []
    assert view.show(approval_id)["status"] == "CLOSED"
    with pytest.raises(ApprovalClosed):
        view.answer(approval_id, "approved")
    assert sfn.sent == []


def test_an_answered_approval_keeps_its_answer_when_the_execution_ends(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)
    inbox(store, ADA, sfn, clock).answer(approval_id, "approved")

    assert close_ended_execution(ended(clock, status="SUCCEEDED"), store) == 0

    with pytest.raises(ApprovalAlreadyAnswered):
        inbox(store, CAROL, sfn, clock).answer(approval_id, "approved")
    assert inbox(store, CAROL, sfn, clock).show(approval_id)["status"] == "APPROVED"


def test_a_task_that_no_longer_waits_closes_the_approval_with_410(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)
    sfn.fail_with = TaskTimedOut("closed")

    with pytest.raises(ApprovalClosed):
        inbox(store, ADA, sfn, clock).answer(approval_id, "approved")

    assert inbox(store, ADA, sfn, clock).show(approval_id)["status"] == "CLOSED"


def test_an_answer_step_functions_did_not_take_is_undone_so_it_can_be_given_again(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message())
    approval_id = only_id(store, clock)
    sfn.fail_with = BackendUnavailable("down")

    with pytest.raises(BackendUnavailable):
        inbox(store, ADA, sfn, clock).answer(approval_id, "approved")

    assert inbox(store, ADA, sfn, clock).show(approval_id)["status"] == "PENDING"
    assert len(inbox(store, ADA, sfn, clock).list_pending()["approvals"]) == 1
    sfn.fail_with = None
    inbox(store, ADA, sfn, clock).answer(approval_id, "approved")
    assert sfn.sent[0][0] == TOKEN


def test_expired_approvals_leave_the_list(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message(timeoutSeconds=60))
    clock.tick(61)

    assert inbox(store, ADA, sfn, clock).list_pending()["approvals"] == []


def test_a_caller_who_sees_few_of_many_gets_short_pages_that_still_reach_the_end(store, dead_letters, clock, sfn):
    bodies = [message(taskToken=f"t{n}", candidateGroups=[], candidateUsers=["carol" if n % 50 else "ada"])
              for n in range(120)]
    add(store, dead_letters, clock, *bodies)

    seen, token = [], None
    for _ in range(10):
        page = inbox(store, ADA, sfn, clock).list_pending(limit=1, next_token=token)
        seen += page["approvals"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(seen) == 3


def ended(clock, execution=None, status="ABORTED"):
    return {"detail": {"executionArn": execution or execution_arn("orders", "refund-42"), "status": status,
                       "stopDate": int(clock.now.timestamp() * 1000)}}


def test_a_message_sent_before_its_execution_ended_adds_nothing_whenever_it_is_consumed(store, dead_letters, clock, sfn):
    sent = clock.now
    clock.tick(2)
    # The execution ends (and the closer runs) before the consumer gets to the message.
    assert close_ended_execution(ended(clock), store) == 0

    assert add(store, dead_letters, clock, message(), sent=sent) == {"added": 0, "duplicate": 0, "ended": 1,
                                                                     "deadLettered": 0}
    assert inbox(store, ADA, sfn, clock).list_pending()["approvals"] == []


def test_a_redriven_run_asks_again_after_its_first_end(store, dead_letters, clock, sfn):
    add(store, dead_letters, clock, message(taskToken="first-run"))
    close_ended_execution(ended(clock, status="FAILED"), store)
    clock.tick(5)

    assert add(store, dead_letters, clock, message(taskToken="redriven-run"), sent=clock.now)["added"] == 1
    [listed] = inbox(store, ADA, sfn, clock).list_pending()["approvals"]
    # ... and its end closes that one too.
    clock.tick(5)
    assert close_ended_execution(ended(clock), store) == 1
    assert inbox(store, ADA, sfn, clock).show(listed["id"])["status"] == "CLOSED"
