"""Policies and packaging that hold the access model (issue 17: items 2b, 10)."""
import json

import pytest

from tools import package as packaging
from tools import policy

ACCOUNT = "123456789012"
ORDERS = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:orders"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _stage(machines: dict, **variables) -> dict:
    return {"environment_variables": {"STATE_MACHINES": json.dumps(machines), **variables}}


def _config(**stages) -> dict:
    return {"version": "2.0", "app_name": "sfn-gateway", "stages": stages}


SECRET = {"STAGE_SECRET_PARAMETER": "/sfn-gateway/x/stage-secret"}


@pytest.mark.parametrize("exposed_arn", [ORDERS, ORDERS + ":live", ORDERS + ":3"])
def test_a_machine_owner_only_in_one_stage_and_exposed_without_it_in_another_is_refused_naming_both(exposed_arn):
    # Regression (item 2b): a second stage without ownerOnly read and planted the owners' executions
    config = _config(
        private=_stage({"orders": {"arn": ORDERS, "ownerOnly": True}}, **SECRET),
        open=_stage({"orders-any": {"arn": exposed_arn}}),
    )
    [conflict] = policy.owner_only_conflicts(config)
    assert "'private'" in conflict and "'open'" in conflict and ORDERS in conflict
    assert any("'open'" in refusal for refusal in packaging.deploy_refusals(config, "private"))


def test_policy_check_refuses_the_cross_stage_owner_only_gap_with_exit_2(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(_config(
        a=_stage({"orders": {"arn": ORDERS, "ownerOnly": True}}, **SECRET), b=_stage({"orders": {"arn": ORDERS}}))))
    assert policy.main(["--all", "--check"], chalice_dir=tmp_path) == 2
    assert "ownerOnly in stage 'a' but exposed without ownerOnly in stage 'b'" in capsys.readouterr().err


def test_stages_that_agree_on_owner_only_have_no_conflict():
    config = _config(a=_stage({"orders": {"arn": ORDERS, "ownerOnly": True}}, **SECRET),
                     b=_stage({"orders-live": {"arn": ORDERS + ":live", "ownerOnly": True}}, **SECRET))
    assert policy.owner_only_conflicts(config) == []


def test_the_stage_secret_is_granted_exactly_its_parameter_and_its_key_only_through_ssm():
    environment = _stage({"orders": {"arn": ORDERS, "ownerOnly": True}}, **SECRET,
                         STAGE_SECRET_KMS_KEY_ARN=KEY)["environment_variables"]
    by_sid = {s["Sid"]: s for s in policy.policy_for_environment(environment)["Statement"]}
    assert by_sid["StageSecret"]["Action"] == ["ssm:GetParameter"]
    assert by_sid["StageSecret"]["Resource"] == [f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/sfn-gateway/x/stage-secret"]
    assert by_sid["StageSecretKey"] == {"Sid": "StageSecretKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [KEY],
                                        "Condition": {"StringEquals": {"kms:ViaService": ["ssm.us-east-1.amazonaws.com"]}}}


def test_state_machine_keys_are_usable_only_through_step_functions():
    environment = _stage({"orders": {"arn": ORDERS, "kmsKeyArn": KEY}})["environment_variables"]
    by_sid = {s["Sid"]: s for s in policy.policy_for_environment(environment)["Statement"]}
    assert by_sid["StateMachineKeys"]["Condition"] == {"StringEquals": {"kms:ViaService": ["states.us-east-1.amazonaws.com"]}}


def test_webhook_secret_keys_are_usable_only_through_ssm_and_machine_keys_only_through_step_functions():
    webhook = {"id": "w", "url": "https://hooks.example.com/x", "stateMachines": ["orders"],
               "secretParameter": "/w", "kmsKeyArn": KEY.replace("1234abcd", "9999abcd")}
    environment = _stage({"orders": {"arn": ORDERS, "kmsKeyArn": KEY}}, WEBHOOKS=json.dumps([webhook]))["environment_variables"]
    by_sid = {s["Sid"]: s for s in policy.webhook_policy_for_environment(environment)["Statement"]}
    assert by_sid["WebhookSecretKeys"]["Condition"]["StringEquals"]["kms:ViaService"] == ["ssm.us-east-1.amazonaws.com"]
    assert by_sid["SubscribedMachineKeys"]["Condition"]["StringEquals"]["kms:ViaService"] == ["states.us-east-1.amazonaws.com"]
    assert by_sid["SubscribedMachineKeys"]["Resource"] == [KEY]


def test_the_jwt_authorizer_may_write_only_its_own_log_groups():
    # Regression (item 10): it was granted arn:*:logs:*:*:* (every log group of the account)
    document = json.loads((policy.CHALICE_DIR / policy.JWT_AUTHORIZER_POLICY_FILE).read_text())
    [statement] = document["Statement"]
    assert statement["Resource"] == ["arn:aws:logs:*:*:log-group:/aws/lambda/sfn-gateway-*-jwt_authorizer",
                                     "arn:aws:logs:*:*:log-group:/aws/lambda/sfn-gateway-*-jwt_authorizer:*"]
    assert document == policy.jwt_authorizer_policy()


@pytest.mark.parametrize("stage, variables, named", [
    ("local", {}, "stage 'local'"),
    ("demo", {"WEBHOOKS_ALLOW_LOCAL": "on"}, "WEBHOOKS_ALLOW_LOCAL=on"),
    ("demo", {"SFN_ENDPOINT_URL": "http://127.0.0.1:8083"}, "SFN_ENDPOINT_URL"),
    ("demo", {"AWS_ENDPOINT_URL_SSM": "http://localhost:8083"}, "AWS_ENDPOINT_URL_SSM"),
    ("demo", {"JWT_ISSUER": "http://[::1]:9000"}, "JWT_ISSUER"),
])
def test_local_only_stages_are_not_deployable(stage, variables, named):
    config = _config(**{stage: _stage({"orders": {"arn": ORDERS}}, **variables)})
    refusals = packaging.deploy_refusals(config, stage)
    assert refusals and named in refusals[0]


def test_make_package_refuses_the_local_stage_before_packaging(capsys, tmp_path):
    assert packaging.main(["--stage", "local", str(tmp_path / "out")]) == 2
    assert "make package refused: stage 'local'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_deployable_stages_of_the_project_have_no_refusals():
    config = policy.load_config()
    assert packaging.deploy_refusals(config, "prod") == [] and packaging.deploy_refusals(config, "dev") == []
