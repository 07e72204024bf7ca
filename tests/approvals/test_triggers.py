"""What app.py reads at import on APPROVALS=on stages: the queue and the closer's rule; and what it does not import."""
import json
import os
import subprocess
import sys

import pytest

from chalicelib.approvals import triggers
from chalicelib.approvals.settings import approvals_table, dead_letter_queue_url, parse_approvals
from chalicelib.errors import ApprovalsDisabled, GatewayMisconfigured
from tests.approvals.conftest import MACHINES, PAYROLL_ARN
from tests.conftest import ORDERS_ARN

ON = {"APPROVALS": "on", "APPROVALS_QUEUE": "sfn-gateway-test-approvals", "STATE_MACHINES": json.dumps(MACHINES)}


def test_approvals_are_off_unless_the_stage_says_on():
    assert triggers.queue_name({}) is None and triggers.closer_pattern({}) is None
    assert triggers.queue_name({"APPROVALS": "off"}) is None


def test_the_closer_rule_names_the_stages_standard_machines_and_every_end():
    assert triggers.closer_pattern(ON) == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": sorted([ORDERS_ARN, PAYROLL_ARN]),
                   "status": ["ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT"]},
    }


@pytest.mark.parametrize("environ, named", [
    ({**ON, "APPROVALS": "yes"}, "APPROVALS must be on or off"),
    ({**ON, "APPROVALS_QUEUE": ""}, "APPROVALS=on needs APPROVALS_QUEUE"),
    ({**ON, "APPROVALS_QUEUE": "bad name"}, "APPROVALS=on needs APPROVALS_QUEUE"),
])
def test_import_time_mistakes_name_the_setting(environ, named):
    with pytest.raises(GatewayMisconfigured, match=named):
        triggers.queue_name(environ)


def test_a_stage_of_express_machines_only_cannot_turn_approvals_on():
    express_only = {**ON, "STATE_MACHINES": json.dumps({"quick": MACHINES["quick"]})}
    with pytest.raises(GatewayMisconfigured, match="at least one STANDARD"):
        triggers.closer_pattern(express_only)


@pytest.mark.parametrize("environ, error, named", [
    ({**ON, "APPROVALS_TABLE": "t"}, GatewayMisconfigured, "APPROVALS_TABLE must be a DynamoDB table name"),
    ({**ON, "APPROVALS_TABLE": "approvals", "APPROVALS_DLQ_URL": "sqs://x"}, GatewayMisconfigured,
     "APPROVALS_DLQ_URL must be the URL"),
])
def test_malformed_settings_are_named_when_the_stage_is_read(environ, error, named):
    with pytest.raises(error, match=named):
        parse_approvals(environ)


def test_missing_table_and_queue_are_named_at_first_use():
    # A stage's own configuration has no table: make package creates it and names it to the functions.
    settings = parse_approvals(ON)
    with pytest.raises(GatewayMisconfigured, match="needs APPROVALS_TABLE"):
        approvals_table(settings)
    with pytest.raises(GatewayMisconfigured, match="needs APPROVALS_DLQ_URL"):
        dead_letter_queue_url(parse_approvals({**ON, "APPROVALS_TABLE": "approvals"}))
    with pytest.raises(ApprovalsDisabled, match="APPROVALS=on turns it on"):
        approvals_table(parse_approvals({}))


def test_the_app_registers_consumer_and_closer_and_the_api_cold_start_imports_neither():
    environ = {**os.environ, **ON, "AWS_DEFAULT_REGION": "us-east-1"}
    probe = ("import sys, app; print(sorted(s.name for s in app.app.event_sources), "
             "[m for m in ('chalicelib.approvals.store', 'chalicelib.approvals.inbox', 'chalicelib.approvals.consumer', "
             "'boto3') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environ, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['approvals_closer', 'approvals_consumer'] []"


def test_a_stage_with_approvals_on_and_no_queue_is_refused_when_the_app_is_built():
    environ = {**os.environ, **ON, "APPROVALS_QUEUE": ""}
    result = subprocess.run([sys.executable, "-c", "import app"], capture_output=True, text=True, env=environ,
                            timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert result.returncode != 0 and "APPROVALS=on needs APPROVALS_QUEUE" in result.stderr


PLANS = json.dumps([{"name": "acme", "throttle": {"rateLimit": 10, "burstLimit": 20}}])


def test_the_inbox_page_is_served_on_token_stages_with_approvals_on():
    assert triggers.inbox_page_served({**ON, "AUTH_MODE": "jwt"}) is True
    assert triggers.inbox_page_served({**ON, "AUTH_MODE": "iam"}) is False
    assert triggers.inbox_page_served({**ON, "AUTH_MODE": "iam", "USAGE_PLANS": PLANS}) is False


def test_the_inbox_page_and_usage_plans_on_one_stage_are_refused_naming_both_settings():
    with pytest.raises(GatewayMisconfigured, match="cannot share a stage with USAGE_PLANS") as refused:
        triggers.inbox_page_served({**ON, "AUTH_MODE": "jwt", "USAGE_PLANS": PLANS})
    assert "APPROVALS=off" in str(refused.value)


def test_a_machine_listed_only_through_two_aliases_is_refused_naming_both_and_the_fix():
    aliases = {**ON, "STATE_MACHINES": json.dumps({
        "orders-live": {"arn": ORDERS_ARN + ":live"}, "orders-canary": {"arn": ORDERS_ARN + ":canary"}})}
    with pytest.raises(GatewayMisconfigured, match=r"\['orders-canary', 'orders-live'\]") as refused:
        triggers.closer_pattern(aliases)
    assert "Add the unqualified entry" in str(refused.value)


def test_aliases_beside_the_unqualified_entry_or_a_single_alias_are_accepted():
    beside = {**ON, "STATE_MACHINES": json.dumps({
        "orders": {"arn": ORDERS_ARN}, "orders-live": {"arn": ORDERS_ARN + ":live"},
        "orders-canary": {"arn": ORDERS_ARN + ":canary"}})}
    single = {**ON, "STATE_MACHINES": json.dumps({"orders-live": {"arn": ORDERS_ARN + ":live"}})}
    assert triggers.closer_pattern(beside)["detail"]["stateMachineArn"] == [ORDERS_ARN]
    assert triggers.closer_pattern(single)["detail"]["stateMachineArn"] == [ORDERS_ARN]
