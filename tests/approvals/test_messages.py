"""The approvals-queue message contract: what is accepted, and every way a message is refused."""
import json

import pytest

from chalicelib.approvals.messages import MalformedMessage, execution_named, parse_message
from tests.approvals.conftest import TOKEN, config_with, message
from tests.conftest import execution_arn

REGISTRY = config_with(None).registry


def test_a_message_following_the_contract_becomes_a_request():
    request = parse_message(message(), REGISTRY)

    assert request.task_token == TOKEN
    assert request.machine.name == "orders"
    assert request.title == "Refund 120 EUR"
    assert request.details == {"amount": 120, "currency": "EUR"}
    assert request.candidate_groups == ("approvers",)
    assert request.timeout_seconds == 3600


def test_title_defaults_to_approval_for_the_execution_name_and_optional_fields_to_empty():
    request = parse_message(message(title=None, details=None, candidateGroups=None, candidateUsers=None,
                                    timeoutSeconds=None), REGISTRY)

    assert request.title == "Approval for refund-42"
    assert (request.details, request.candidate_groups, request.candidate_users) == ({}, (), ())
    assert request.timeout_seconds == 86_400


@pytest.mark.parametrize("body, named", [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    (message(taskToken=None), "taskToken is missing"),
    (message(executionArn=None), "executionArn is missing"),
    (message(taskToken=""), "taskToken must be"),
    (message(taskToken=5), "taskToken must be"),
    (message(title=""), "title must be"),
    (message(title="x" * 201), "title must be"),
    (message(candidateGroups="approvers"), "candidateGroups must be a list"),
    (message(candidateUsers=["ada", ""]), "candidateUsers must be a list"),
    (message(timeoutSeconds=0), "timeoutSeconds must be"),
    (message(timeoutSeconds=True), "timeoutSeconds must be"),
    (message(timeoutSeconds=1.5), "timeoutSeconds must be"),
    (message(input={"a": 1}), r"unknown field\(s\) \['input'\]"),
    (message(executionArn="arn:aws:states:us-east-1:123456789012:execution:unknown:x"), "does not expose"),
    (message(executionArn="not-an-arn"), "not an execution ARN"),
])
def test_messages_breaking_the_contract_are_refused_naming_the_field(body, named):
    with pytest.raises(MalformedMessage, match=named):
        parse_message(body, REGISTRY)


def test_a_refusal_never_repeats_the_task_token():
    with pytest.raises(MalformedMessage) as refused:
        parse_message(message(taskToken="x" * 5000), REGISTRY)

    assert "xxxx" not in str(refused.value)


def test_log_lines_name_the_execution_of_a_message_even_when_it_is_malformed():
    assert execution_named(message(timeoutSeconds=-1)) == execution_arn("orders", "refund-42")
    assert execution_named("garbage") == "unknown execution"
    assert execution_named(json.dumps([1])) == "unknown execution"
