"""The approvals inbox on the local stack (`python -m local.run`, AUTH_MODE=jwt): queue, table, closer, answers."""
import json
import threading
import time
from urllib.parse import quote

import boto3
import pytest
import requests

from local.issuer import DevIssuer
from tests.auth.test_identity_end_to_end import ModeStack, bearer

RULES = [
    {"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]},
    # bob may approve anything, but the demo workflow asks group approvers, which he is not in.
    {"callers": ["bob"], "stateMachines": ["*"], "operations": ["start", "read", "approve"]},
]


class RecordingStack(ModeStack):
    """Keeps every line the stack prints, to check that no task token is ever logged."""

    def _drain(self):
        self.lines = []
        for line in self.process.stdout:
            self.lines.append(line)


@pytest.fixture(scope="module")
def issuer():
    with DevIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def stack(issuer):
    running = RecordingStack(AUTH_MODE="jwt", JWT_ISSUER=issuer.issuer, JWT_AUDIENCE=issuer.audience,
                             ACCESS_RULES=json.dumps(RULES))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def users(issuer):
    return {"ada": bearer(issuer.mint("ada", groups=["approvers"])),
            "carol": bearer(issuer.mint("carol", groups=["approvers"])),
            "bob": bearer(issuer.mint("bob", groups=["developers"]))}


def call(stack, method, path, user, body=None):
    return requests.request(method, f"{stack.url}{path}", json=body, headers=user, timeout=30)


def start(stack, users, execution_input):
    response = call(stack, "POST", "/executions", users["ada"], {"stateMachine": "approval", "input": execution_input})
    assert response.status_code == 201, response.text
    return response.json()["executionArn"]


def listed(stack, user, execution_arn, timeout=10.0):
    """The approval of this execution once it appears in the user's GET /approvals (None if it never does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = call(stack, "GET", "/approvals?limit=100", user)
        assert page.status_code == 200, page.text
        for approval in page.json()["approvals"]:
            if approval["executionArn"] == execution_arn:
                return approval
        time.sleep(0.05)
    return None


def task_token(stack, execution_arn):
    events = stack.engine_client().get_execution_history(executionArn=execution_arn)["events"]
    return next(json.loads(e["taskScheduledEventDetails"]["parameters"])["MessageBody"]["taskToken"]
                for e in events if e["type"] == "TaskScheduled")


def test_an_approval_started_with_wait_is_answered_by_ada_and_the_wait_returns_her_decision(stack, users):
    # Given a demo approval started with ?wait by ada
    waited = {}
    name = f"refund-{time.monotonic_ns()}"

    def start_and_wait():
        waited["response"] = call(stack, "POST", "/executions?wait=25", users["ada"],
                                  {"stateMachine": "approval", "name": name, "input": {"title": "Refund 120 EUR", "amount": 120}})

    waiter = threading.Thread(target=start_and_wait)
    waiter.start()
    arn = f"arn:aws:states:us-east-1:123456789012:execution:approval:{name}"
    approval = listed(stack, users["ada"], arn)
    assert approval is not None and approval["title"] == "Refund 120 EUR"
    assert approval["candidateGroups"] == ["approvers"] and approval["stateMachine"] == "approval"
    # bob never sees it
    assert listed(stack, users["bob"], arn, timeout=0.5) is None
    shown = call(stack, "GET", f"/approvals/{approval['id']}", users["ada"])
    assert shown.status_code == 200 and shown.json()["details"] == {"title": "Refund 120 EUR", "amount": 120}
    # When ada approves it
    answered = call(stack, "POST", f"/approvals/{approval['id']}/approve", users["ada"], {"comment": "ok", "data": {"ref": 7}})
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["answeredBy"]) == ("APPROVED", "ada")
    # Then the wait returns the workflow's output: her decision
    waiter.join(30)
    response = waited["response"]
    assert response.status_code == 200, response.text
    output = response.json()["output"]
    assert (output["decision"], output["answeredBy"], output["comment"], output["data"]) == ("approved", "ada", "ok", {"ref": 7})
    assert output["answeredAt"] == answered.json()["answeredAt"]
    assert listed(stack, users["ada"], arn, timeout=0.3) is None


def test_a_non_candidate_gets_exactly_the_404_of_an_unknown_id(stack, users):
    arn = start(stack, users, {"amount": 1})
    approval = listed(stack, users["ada"], arn)
    unknown = "apv_" + "Q" * 24

    for suffix, method in (("", "GET"), ("/approve", "POST"), ("/reject", "POST")):
        theirs = call(stack, method, f"/approvals/{approval['id']}{suffix}", users["bob"], {} if method == "POST" else None)
        missing = call(stack, method, f"/approvals/{unknown}{suffix}", users["bob"], {} if method == "POST" else None)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.text.replace(approval["id"], unknown) == missing.text
    assert call(stack, "GET", f"/approvals/{approval['id']}", users["ada"]).json()["status"] == "PENDING"


def test_two_concurrent_answers_exactly_one_wins_the_other_gets_409(stack, users):
    for round_ in range(3):
        arn = start(stack, users, {"round": round_})
        approval = listed(stack, users["ada"], arn)
        barrier = threading.Barrier(2)
        answers = {}

        def answer(user, verb):
            barrier.wait()
            answers[user] = call(stack, "POST", f"/approvals/{approval['id']}/{verb}", users[user], {"comment": user})

        threads = [threading.Thread(target=answer, args=("ada", "approve")),
                   threading.Thread(target=answer, args=("carol", "reject"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(response.status_code for response in answers.values())
        assert statuses == [200, 409], [r.text for r in answers.values()]
        winner = next(user for user, response in answers.items() if response.status_code == 200)
        loser = next(response for response in answers.values() if response.status_code == 409)
        assert loser.json()["Code"] == "ApprovalAlreadyAnswered"
        # The workflow got the winner's answer, once.
        ended = requests.get(f"{stack.url}/executions/{quote(arn, safe='')}?wait=10", headers=users["ada"], timeout=30).json()
        assert ended["status"] == "SUCCEEDED"
        assert ended["output"]["answeredBy"] == winner
        assert ended["output"]["decision"] == ("approved" if winner == "ada" else "rejected")
        assert call(stack, "GET", f"/approvals/{approval['id']}", users["ada"]).json()["answeredBy"] == winner


def test_an_approval_whose_execution_ended_leaves_the_list_within_5_s_and_answers_410(stack, users):
    arn = start(stack, users, {"amount": 2})
    approval = listed(stack, users["ada"], arn)
    stopped = call(stack, "POST", f"/executions/{quote(arn, safe='')}/stop", users["ada"], {"error": "Cancelled"})
    assert stopped.status_code == 200, stopped.text
    started = time.monotonic()

    deadline = started + 5
    while time.monotonic() < deadline and listed(stack, users["ada"], arn, timeout=0) is not None:
        time.sleep(0.05)
    assert listed(stack, users["ada"], arn, timeout=0) is None, "still listed 5 s after its execution ended"

    gone = call(stack, "POST", f"/approvals/{approval['id']}/approve", users["ada"], {})
    assert gone.status_code == 410 and gone.json()["Code"] == "ApprovalClosed", gone.text
    assert call(stack, "GET", f"/approvals/{approval['id']}", users["ada"]).json()["status"] == "CLOSED"


def test_an_answer_after_the_execution_ended_gets_409_and_changes_nothing(stack, users):
    arn = start(stack, users, {"amount": 3})
    approval = listed(stack, users["ada"], arn)
    assert call(stack, "POST", f"/approvals/{approval['id']}/reject", users["carol"], {}).status_code == 200
    requests.get(f"{stack.url}/executions/{quote(arn, safe='')}?wait=10", headers=users["ada"], timeout=30)

    again = call(stack, "POST", f"/approvals/{approval['id']}/approve", users["ada"], {})

    assert again.status_code == 409 and again.json()["Code"] == "ApprovalAlreadyAnswered"
    shown = call(stack, "GET", f"/approvals/{approval['id']}", users["ada"]).json()
    assert (shown["status"], shown["answeredBy"]) == ("REJECTED", "carol")


def test_a_malformed_message_goes_to_the_dead_letter_queue(stack):
    sqs = boto3.client("sqs", endpoint_url=stack.engine_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    queue = sqs.get_queue_url(QueueName="sfn-gateway-approvals")["QueueUrl"]
    dead = sqs.get_queue_url(QueueName="sfn-gateway-approvals-dlq")["QueueUrl"]
    body = json.dumps({"taskToken": "t", "executionArn": "arn:aws:states:us-east-1:123456789012:execution:approval:bad",
                       "timeoutSeconds": "tomorrow"})
    sqs.send_message(QueueUrl=queue, MessageBody=body)

    received = []
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        received = sqs.receive_message(QueueUrl=dead, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in received] == [body]
    assert "timeoutSeconds" in received[0]["MessageAttributes"]["error"]["StringValue"]


def test_no_task_token_appears_in_any_response_or_log_line(stack, users):
    arn = start(stack, users, {"amount": 4})
    approval = listed(stack, users["ada"], arn)
    token = task_token(stack, arn)
    texts = [call(stack, "GET", "/approvals", users["ada"]).text,
             call(stack, "GET", f"/approvals/{approval['id']}", users["ada"]).text,
             call(stack, "POST", f"/approvals/{approval['id']}/approve", users["ada"], {}).text,
             call(stack, "POST", f"/approvals/{approval['id']}/approve", users["ada"], {}).text]
    time.sleep(0.3)
    assert all(token not in text for text in texts)
    assert token not in stack.banner + "".join(stack.lines)
    assert any(approval["id"] in line for line in stack.lines), "the log names approvals by their id"


# --- the Python client and the CLI ----------------------------------------------------------------


def test_the_client_lists_shows_and_approves_and_raises_the_gateways_codes(stack, users, issuer):
    from sfn_gateway_client import Gateway
    from sfn_gateway_client.errors import ApprovalAlreadyAnswered, ApprovalNotFound

    arn = start(stack, users, {"amount": 5})
    approval = listed(stack, users["ada"], arn)
    with Gateway(stack.url, token=issuer.mint("ada", groups=["approvers"])) as ada, \
            Gateway(stack.url, token=issuer.mint("bob", groups=["developers"])) as bob:
        assert approval["id"] in [a["id"] for a in ada.approvals(page_size=1)]
        assert ada.approval(approval["id"])["details"] == {"amount": 5}
        with pytest.raises(ApprovalNotFound):
            bob.approve(approval["id"])
        answered = ada.approve(approval["id"], comment="yes", data={"k": 1})
        assert (answered["status"], answered["comment"]) == ("APPROVED", "yes")
        with pytest.raises(ApprovalAlreadyAnswered) as second:
            ada.reject(approval["id"])
    assert second.value.status == 409


def test_the_cli_lists_shows_approves_and_rejects_with_the_usual_exit_codes(stack, users, issuer, capsys):
    from sfn_gateway_client.cli import main

    arns = [start(stack, users, {"cli": n}) for n in range(2)]
    ids = [listed(stack, users["ada"], arn)["id"] for arn in arns]
    ada = ["--url", stack.url, "--token", issuer.mint("ada", groups=["approvers"]), "--output", "json"]
    capsys.readouterr()

    assert main(ada + ["approvals", "list"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(ids) <= {approval["id"] for approval in lines}
    assert main(ada + ["approvals", "show", ids[0]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "PENDING"
    assert main(ada + ["approvals", "approve", ids[0], "--comment", "fine", "--data", '{"n": 1}']) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "APPROVED"
    assert main(ada + ["approvals", "reject", ids[1]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "REJECTED"
    assert main(ada + ["approvals", "approve", ids[1]]) == 3
    assert "ApprovalAlreadyAnswered (409)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(ada + ["approvals", "approve", ids[1], "--data", "[1]"])
    assert usage.value.code == 2
    output = requests.get(f"{stack.url}/executions/{quote(arns[0], safe='')}?wait=10", headers=users["ada"],
                          timeout=30).json()["output"]
    assert (output["decision"], output["comment"], output["data"]) == ("approved", "fine", {"n": 1})
