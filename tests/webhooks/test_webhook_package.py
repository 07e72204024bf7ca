"""Webhooks in the deploy artefacts: the function's own policy, and the failure destination added to the packages."""
import json

from tools import package, policy

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MACHINES = json.dumps({
    "orders": {"arn": "arn:aws:states:us-east-1:123456789012:stateMachine:orders"},
    "payroll": {"arn": "arn:aws:states:eu-west-1:123456789012:stateMachine:payroll"},
    "refunds": {"arn": "arn:aws:states:us-east-1:123456789012:stateMachine:refunds"},
})


def subscription(**changes):
    return {"id": "billing", "url": "https://billing.example.com/hooks", "stateMachines": ["orders"],
            "secretParameter": "/sfn-gateway/prod/webhooks/billing", **changes}


def test_webhook_policy_grants_exactly_the_parameters_keys_and_subscribed_executions():
    environ = {"STATE_MACHINES": MACHINES, "WEBHOOKS": json.dumps([
        subscription(kmsKeyArn=KEY),
        subscription(id="hr", stateMachines=["payroll"], secretParameter="hr-secret"),
    ])}
    statements = {s["Sid"]: s for s in policy.webhook_policy_for_environment(environ)["Statement"]}
    assert statements["WebhookSecrets"]["Action"] == ["ssm:GetParameter"]
    assert statements["WebhookSecrets"]["Resource"] == [
        "arn:aws:ssm:eu-west-1:123456789012:parameter/hr-secret",
        "arn:aws:ssm:us-east-1:123456789012:parameter/sfn-gateway/prod/webhooks/billing",
    ]
    assert statements["WebhookSecretKeys"] == {"Sid": "WebhookSecretKeys", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [KEY]}
    # refunds is allow-listed but not subscribed: no DescribeExecution on it
    assert statements["SubscribedExecutions"]["Action"] == ["states:DescribeExecution"]
    assert statements["SubscribedExecutions"]["Resource"] == [
        "arn:aws:states:eu-west-1:123456789012:execution:payroll:*",
        "arn:aws:states:us-east-1:123456789012:execution:orders:*",
    ]
    assert sorted(statements) == ["Logs", "SubscribedExecutions", "WebhookSecretKeys", "WebhookSecrets"]


def test_no_kms_statement_without_a_named_key():
    environ = {"STATE_MACHINES": MACHINES, "WEBHOOKS": json.dumps([subscription()])}
    sids = [s["Sid"] for s in policy.webhook_policy_for_environment(environ)["Statement"]]
    assert sids == ["Logs", "SubscribedExecutions", "WebhookSecrets"]


def test_a_stage_without_webhooks_has_no_webhook_policy():
    assert policy.webhook_policy_for_environment({"STATE_MACHINES": MACHINES}) is None


def test_committed_webhook_policies_are_up_to_date(capsys):
    assert policy.main(["--all", "--check"]) == 0
    assert "policy-dev-webhooks.json: up to date" in capsys.readouterr().out


def test_only_a_stage_with_webhooks_gets_the_failure_destination_merged():
    environ = {"STATE_MACHINES": MACHINES}
    cors = {"Resources": {"RestAPI": {"Properties": {"TracingEnabled": True}}}}
    assert package.with_webhook_failures(None, environ) is None
    assert package.with_webhook_failures(cors, environ) == cors
    merged = package.with_webhook_failures(cors, {**environ, "WEBHOOKS": json.dumps([subscription()])})
    assert sorted(merged["Resources"]) == ["RestAPI", "WebhookFailures", "WebhookFailuresSendPolicy", "Webhooks"]
    assert merged["Resources"]["RestAPI"] == cors["Resources"]["RestAPI"]
    assert list(merged["Outputs"]) == ["WebhookFailuresQueueUrl"]


def test_describe_execution_on_a_machine_with_its_own_key_may_decrypt_with_it():
    machine_key = KEY.replace("1234abcd", "5678efab")
    machines = json.dumps({
        "orders": {"arn": "arn:aws:states:us-east-1:123456789012:stateMachine:orders", "kmsKeyArn": machine_key},
        "refunds": {"arn": "arn:aws:states:us-east-1:123456789012:stateMachine:refunds", "kmsKeyArn": KEY},
    })
    environ = {"STATE_MACHINES": machines, "WEBHOOKS": json.dumps([subscription()])}
    statements = {s["Sid"]: s for s in policy.webhook_policy_for_environment(environ)["Statement"]}
    # orders is subscribed: its key; refunds is not: not its key
    assert statements["WebhookSecretKeys"]["Resource"] == [machine_key]
