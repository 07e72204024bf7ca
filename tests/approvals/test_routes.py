"""The approvals routes through Chalice: status and body of every answer, and the token in none of them."""
import json

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib import factory
from chalicelib.auth import identity
from chalicelib.approvals.consumer import consume
from tests.approvals.conftest import ADA, BOB, MACHINES, RULES, TABLE, TOKEN, config_with, message
from tests.conftest import assert_error, post_json
from tests.openapi_schemas import validate_response


@pytest.fixture
def stage(make_client, dynamodb, monkeypatch):
    """A test stage with APPROVALS=on over the moto table; requests come from `caller`."""
    callers = {"now": ADA}
    monkeypatch.setattr(identity, "caller_record", lambda context: callers["now"])
    monkeypatch.setattr(factory, "get_dynamodb_client", lambda: dynamodb)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    monkeypatch.setattr(factory, "get_sfn_client", lambda read_timeout=None: sfn)
    with Stubber(sfn) as stubber, make_client(MACHINES, APPROVALS="on", APPROVALS_QUEUE="approvals",
                                              APPROVALS_TABLE=TABLE, ACCESS_RULES=json.dumps(RULES)) as client:
        client.callers = callers
        client.sfn = stubber
        yield client
        stubber.assert_no_pending_responses()


@pytest.fixture
def approval_id(stage, dynamodb):
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    from chalicelib.approvals.store import ApprovalStore

    consume([{"messageId": "m", "body": message()}], ApprovalStore(dynamodb, TABLE), config_with().registry, sqs, dlq)
    return stage.http.get("/approvals").json_body["approvals"][0]["id"]


def test_list_show_and_approve(stage, approval_id):
    listed = stage.http.get("/approvals?limit=10")
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json_body["approvals"]] == [approval_id]

    shown = stage.http.get(f"/approvals/{approval_id}")
    assert shown.status_code == 200
    assert shown.json_body["status"] == "PENDING" and shown.json_body["details"]["amount"] == 120

    stage.sfn.add_response("send_task_success", {})
    answered = post_json(stage, f"/approvals/{approval_id}/approve", {"comment": "ok", "data": {"n": 1}})
    assert answered.status_code == 200, answered.body
    assert answered.json_body["status"] == "APPROVED"
    assert answered.json_body["answeredBy"] == "ada" and answered.json_body["comment"] == "ok"
    for response in (listed, shown, answered):
        assert TOKEN not in response.body.decode()
    validate_response("GET", "/approvals", 200, listed.json_body)
    validate_response("GET", "/approvals/{approvalId}", 200, shown.json_body)
    validate_response("POST", "/approvals/{approvalId}/approve", 200, answered.json_body)


def test_a_second_answer_is_409_approval_already_answered(stage, approval_id):
    stage.sfn.add_response("send_task_success", {})
    assert post_json(stage, f"/approvals/{approval_id}/reject", {}).status_code == 200

    second = post_json(stage, f"/approvals/{approval_id}/approve", {})

    assert_error(second, 409, "ApprovalAlreadyAnswered")
    validate_response("POST", "/approvals/{approvalId}/approve", 409, second.json_body)
    assert stage.http.get(f"/approvals/{approval_id}").json_body["status"] == "REJECTED"


def test_a_closed_task_answers_410_approval_closed(stage, approval_id):
    stage.sfn.add_client_error("send_task_success", "TaskTimedOut", "Task Timed Out")

    gone = post_json(stage, f"/approvals/{approval_id}/approve", {})
    assert_error(gone, 410, "ApprovalClosed")
    validate_response("POST", "/approvals/{approvalId}/approve", 410, gone.json_body)
    assert stage.http.get(f"/approvals/{approval_id}").json_body["status"] == "CLOSED"
    assert stage.http.get("/approvals").json_body == {"approvals": [], "nextToken": None}


def test_a_non_candidate_and_an_unknown_id_get_the_same_404_body(stage, approval_id):
    stage.callers["now"] = BOB
    unknown = "apv_" + "x" * 24
    for path in ("", "/approve", "/reject"):
        method = stage.http.get if not path else (lambda p: post_json(stage, p, {}))
        theirs, missing = method(f"/approvals/{approval_id}{path}"), method(f"/approvals/{unknown}{path}")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json_body["Code"] == missing.json_body["Code"] == "ApprovalNotFound"
        assert theirs.json_body["Message"].replace(approval_id, unknown) == missing.json_body["Message"]
        assert len(theirs.body) == len(missing.body)
    assert stage.http.get("/approvals").json_body == {"approvals": [], "nextToken": None}


@pytest.mark.parametrize("path, body", [
    ("/approve", {"verdict": "yes"}),
    ("/approve", {"comment": 5}),
    ("/reject", {"data": [1, 2]}),
    ("/reject", {"comment": "c" * 2001}),
])
def test_bad_answers_are_400(stage, approval_id, path, body):
    assert_error(post_json(stage, f"/approvals/{approval_id}{path}", body), 400, "ValidationError")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "state=PENDING", "nextToken=%25%25"])
def test_bad_listing_queries_are_400(stage, query):
    assert_error(stage.http.get(f"/approvals?{query}"), 400, "ValidationError")


def test_get_never_answers(stage, approval_id):
    refused = stage.http.get(f"/approvals/{approval_id}/approve")
    assert refused.status_code == 405, refused.body
    assert stage.http.get(f"/approvals/{approval_id}").json_body["status"] == "PENDING"


def test_a_stage_without_approvals_answers_404_approvals_disabled(make_client, monkeypatch):
    monkeypatch.setattr(identity, "caller_record", lambda context: ADA)
    with make_client(MACHINES) as client:
        assert_error(client.http.get("/approvals"), 404, "ApprovalsDisabled")


def test_a_stage_with_approvals_but_no_table_names_the_setting(make_client, monkeypatch):
    monkeypatch.setattr(identity, "caller_record", lambda context: ADA)
    with make_client(MACHINES, APPROVALS="on", APPROVALS_QUEUE="q") as client:
        response = client.http.get("/approvals")
    assert_error(response, 500, "GatewayMisconfigured")
    assert "APPROVALS_TABLE" in response.json_body["Message"]
