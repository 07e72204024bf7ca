"""Webhooks in the deploy artefacts: the function's own policy, and the failure destination added to the packages."""
import json
import subprocess

import pytest

from tests.test_package import _offline_environment, _tool
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


@pytest.fixture(scope="module")
def dev_packages(tmp_path_factory):
    built = {}
    for pkg_format in ("cloudformation", "terraform"):
        out = tmp_path_factory.mktemp(f"dev-{pkg_format}")
        result = package.package("dev", pkg_format, out, _tool("chalice"), env=_offline_environment(), timeout=120)
        assert result.returncode == 0, result.stderr
        built[pkg_format] = out
    return built


def test_sam_package_sends_failed_invocations_to_an_sqs_queue_the_role_may_write(dev_packages):
    resources = json.loads((dev_packages["cloudformation"] / "sam.json").read_text())["Resources"]
    invoke = resources["Webhooks"]["Properties"]["EventInvokeConfig"]
    assert invoke["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["WebhookFailures", "Arn"]}}
    assert resources["WebhookFailures"]["Type"] == "AWS::SQS::Queue"
    send = resources["WebhookFailuresSendPolicy"]["Properties"]
    assert send["Roles"] == [{"Ref": resources["Webhooks"]["Properties"]["Role"]["Fn::GetAtt"][0]}]
    assert send["PolicyDocument"]["Statement"][0]["Action"] == "sqs:SendMessage"
    assert send["PolicyDocument"]["Statement"][0]["Resource"] == {"Fn::GetAtt": ["WebhookFailures", "Arn"]}


def test_sam_package_with_the_failure_destination_passes_cfn_lint(dev_packages):
    result = subprocess.run([_tool("cfn-lint"), "--format", "parseable", str(dev_packages["cloudformation"] / "sam.json")],
                            capture_output=True, text=True, env=_offline_environment(), timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_terraform_package_gets_the_failure_destination_beside_chalices_file(dev_packages):
    chalice_tf = json.loads((dev_packages["terraform"] / "chalice.tf.json").read_text())["resource"]
    extra = json.loads((dev_packages["terraform"] / "webhook_failures.tf.json").read_text())["resource"]
    invoke = extra["aws_lambda_function_event_invoke_config"]["webhooks"]
    assert invoke["function_name"] == "${aws_lambda_function.webhooks.function_name}"
    assert invoke["destination_config"]["on_failure"]["destination"] == "${aws_sqs_queue.webhook_failures.arn}"
    # every resource the extra file refers to exists in chalice's file
    assert "webhooks" in chalice_tf["aws_lambda_function"]
    assert extra["aws_iam_role_policy"]["webhook_failures"]["role"] == "${aws_iam_role.webhooks_role.id}"
    assert "webhooks_role" in chalice_tf["aws_iam_role"]
    assert not set(extra["aws_iam_role_policy"]) & set(chalice_tf["aws_iam_role_policy"])


def test_a_stage_without_webhooks_is_packaged_without_the_merge_template():
    assert "--merge-template" not in package.package_command("prod", "cloudformation", "out")
    assert package.package_command("dev", "cloudformation", "out")[-3:-1] == ["--merge-template", str(package.SAM_FAILURES)]
