"""WEBHOOKS: subscriptions parsed and validated on first use, each mistake named with its fix."""
import json

import pytest

from chalicelib.config import config_from_environ
from chalicelib.errors import GatewayMisconfigured
from tests.conftest import ORDERS_ARN, TEST_STATE_MACHINES

BILLING = {
    "id": "billing",
    "url": "https://billing.example.com/hooks/sfn",
    "stateMachines": ["orders"],
    "statuses": ["SUCCEEDED", "FAILED"],
    "secretParameter": "/sfn-gateway/prod/webhooks/billing",
}


def environ(webhooks, **overrides):
    return {"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES), "WEBHOOKS": json.dumps(webhooks), **overrides}


def test_no_webhooks_setting_means_no_subscriptions():
    config = config_from_environ({"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES)})
    assert (config.webhooks, config.webhooks_allow_local) == ((), False)


def test_a_subscription_resolves_short_names_to_arns_and_keeps_its_settings():
    [subscription] = config_from_environ(environ([BILLING])).webhooks
    assert subscription.id == "billing"
    assert subscription.url == "https://billing.example.com/hooks/sfn"
    assert subscription.state_machine_arns == (ORDERS_ARN,)
    assert subscription.statuses == ("FAILED", "SUCCEEDED")
    assert subscription.secret_parameter == "/sfn-gateway/prod/webhooks/billing"
    assert subscription.kms_key_arn is None


def test_statuses_default_to_every_end_and_arns_are_accepted_as_names():
    entry = {**BILLING, "stateMachines": [ORDERS_ARN]}
    del entry["statuses"]
    [subscription] = config_from_environ(environ([entry])).webhooks
    assert subscription.statuses == ("ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT")
    assert subscription.state_machine_arns == (ORDERS_ARN,)


def test_the_local_stage_may_deliver_over_http_to_loopback():
    entry = {**BILLING, "url": "http://127.0.0.1:9000/hooks"}
    config = config_from_environ(environ([entry], WEBHOOKS_ALLOW_LOCAL="on"))
    assert config.webhooks_allow_local is True
    assert config.webhooks[0].url == "http://127.0.0.1:9000/hooks"


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"stateMachines": ["payroll"]}, "names 'payroll', which is not in STATE_MACHINES"),
        ({"stateMachines": ["quick"]}, "EXPRESS machine"),
        ({"stateMachines": []}, "non-empty list of names"),
        ({"url": "http://billing.example.com/hooks"}, "must be an https:// URL"),
        ({"url": "ftp://billing.example.com/hooks"}, "must be an https:// URL"),
        ({"url": "https:///no-host"}, "must be an https:// URL"),
        ({"url": "https://user:pw@billing.example.com/"}, "must not carry credentials"),
        ({"url": "https://127.0.0.1/hooks"}, "non-public address (127.0.0.1)"),
        ({"url": "https://169.254.169.254/latest/meta-data"}, "non-public address"),
        ({"url": "https://[::ffff:10.0.0.1]/hooks"}, "non-public address"),
        ({"statuses": ["DONE"]}, "statuses must be a non-empty list"),
        ({"statuses": ["RUNNING"]}, "statuses must be a non-empty list"),
        ({"statuses": ["FAILED", "FAILED"]}, "without repeats"),
        ({"statuses": []}, "non-empty list"),
        ({"secretParameter": "not a name!"}, "secretParameter must be an SSM parameter name"),
        ({"secretParameter": None}, "secretParameter must be an SSM parameter name"),
        ({"kmsKeyArn": "alias/aws/ssm"}, "kmsKeyArn must be the ARN of the KMS key"),
        ({"id": "no spaces"}, ".id must be 1-64 letters"),
        ({"colour": "red"}, "unknown keys ['colour']"),
    ],
)
def test_a_bad_subscription_is_refused_with_a_message_naming_it(change, fragment):
    with pytest.raises(GatewayMisconfigured) as raised:
        config_from_environ(environ([{**BILLING, **change}]))
    assert fragment in str(raised.value)
    assert "WEBHOOKS[0]" in str(raised.value)


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("{not json", "WEBHOOKS is not valid JSON"),
        (json.dumps(BILLING), "must be a JSON list"),
        (json.dumps(["billing"]), "WEBHOOKS[0] must be an object"),
        (json.dumps([BILLING, BILLING]), "uses the id 'billing' twice"),
    ],
)
def test_a_malformed_webhooks_list_is_refused(raw, fragment):
    env = {"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES), "WEBHOOKS": raw}
    with pytest.raises(GatewayMisconfigured) as raised:
        config_from_environ(env)
    assert fragment in str(raised.value)


def test_allow_local_accepts_only_on_or_off():
    with pytest.raises(GatewayMisconfigured, match="WEBHOOKS_ALLOW_LOCAL must be on or off"):
        config_from_environ(environ([BILLING], WEBHOOKS_ALLOW_LOCAL="yes"))


def test_a_kms_key_arn_is_kept_for_the_policy():
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    [subscription] = config_from_environ(environ([{**BILLING, "kmsKeyArn": key}])).webhooks
    assert subscription.kms_key_arn == key
