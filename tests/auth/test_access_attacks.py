"""The bypasses of issue 17, each as an attacker with a valid identity of their own would try it.

Items 2 (forged owner tags), 3 (start-only callers reading, shared Idempotency-Keys), 4 (aliases
decided by the wrong entry) and 5 (a 404 mapping the stage), plus the stage secret's reading.
"""
import hashlib
import json
from datetime import datetime, timezone
from urllib.parse import quote

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib import factory
from chalicelib.auth import identity, ownership
from chalicelib.auth.access import GuardedGateway
from chalicelib.config import config_from_environ, get_config
from chalicelib.errors import AccessDenied, ExecutionNotFound, ExecutionNotRedrivable, GatewayMisconfigured
from chalicelib.stepfunctions.service import StepFunctionsGateway
from tests.conftest import (
    ACCOUNT,
    ORDERS_ARN,
    READ_STAGE_SECRET,
    TEST_STAGE_SECRET,
    TEST_STAGE_SECRET_PARAMETER,
    execution_arn,
    key_name,
    post_json,
)

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
PRIVATE_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:private"
ADA = {"type": "jwt", "id": "ada", "groups": ["canary-team"], "scopes": []}
BOB = {"type": "jwt", "id": "bob", "groups": ["live-team"], "scopes": []}


@pytest.fixture
def sfn(aws_credentials):
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def guarded(sfn, caller, machines, rules=None):
    environ = {"STATE_MACHINES": json.dumps(machines), "STAGE_SECRET_PARAMETER": TEST_STAGE_SECRET_PARAMETER}
    if rules is not None:
        environ["ACCESS_RULES"] = json.dumps(rules)
    config = config_from_environ(environ)
    return GuardedGateway(StepFunctionsGateway(lambda read_timeout=None: sfn.client, config), config.registry,
                          config.access_rules, caller, lambda: TEST_STAGE_SECRET)


# --- item 2: nobody without the stage secret makes an execution the gateway attributes to someone else ---

PRIVATE = {"private": {"arn": PRIVATE_ARN, "type": "STANDARD", "ownerOnly": True}}


def test_the_old_unkeyed_tag_computed_from_a_known_sub_no_longer_reaches_her_executions(sfn):
    # Bob knows Ada's sub, so he could compute the old tag: SHA-256 over her type and id
    unkeyed = hashlib.sha256(b"jwt\x00ada").hexdigest()[:20] + "-n1"
    with pytest.raises(ExecutionNotFound):
        guarded(sfn, BOB, PRIVATE).describe_execution(execution_arn("private", unkeyed))
    # nor does Ada herself own it: the gateway never made that name
    with pytest.raises(ExecutionNotFound):
        guarded(sfn, ADA, PRIVATE).describe_execution(execution_arn("private", unkeyed))


def test_knowing_the_full_name_of_her_execution_does_not_let_anyone_plant_another_in_her_name(sfn):
    hers = ownership.owned_name(TEST_STAGE_SECRET, ADA, "n1")
    # Somebody starts `<her tag>-n2` outside the gateway (the tag copied from her execution's name)
    planted = hers[:ownership.OWNER_TAG_LENGTH] + "n2"
    assert ownership.is_owned_by(TEST_STAGE_SECRET, ADA, hers)
    assert not ownership.is_owned_by(TEST_STAGE_SECRET, ADA, planted)
    with pytest.raises(ExecutionNotFound):
        guarded(sfn, ADA, PRIVATE).describe_execution(execution_arn("private", planted))
    # Another stage secret makes other tags: a stage cannot vouch for another's executions
    assert not ownership.is_owned_by(b"another-stage-secret-0123456789abcdef", ADA, hers)


def test_the_tag_covers_the_callers_type_so_a_cognito_user_named_like_a_jwt_user_owns_nothing_of_hers():
    hers = ownership.owned_name(TEST_STAGE_SECRET, ADA, "n1")
    assert not ownership.is_owned_by(TEST_STAGE_SECRET, {**ADA, "type": "cognito"}, hers)


def test_the_stage_secret_is_read_once_from_ssm_as_a_secure_string(aws_credentials, monkeypatch):
    monkeypatch.setenv("STATE_MACHINES", json.dumps(PRIVATE))
    monkeypatch.setenv("STAGE_SECRET_PARAMETER", "/sfn-gateway/test/real")
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name="/sfn-gateway/test/real", Value="s" * 48, Type="SecureString")
        reader = READ_STAGE_SECRET
        get_config.cache_clear()
        factory.get_ssm_client.cache_clear()
        assert reader() == b"s" * 48
        ssm.delete_parameter(Name="/sfn-gateway/test/real")
        assert reader() == b"s" * 48  # read once per container: no second call
        reader.cache_clear()
        with pytest.raises(GatewayMisconfigured, match=r"'/sfn-gateway/test/real' could not be read \(ParameterNotFound\)"):
            reader()
        ssm.put_parameter(Name="/sfn-gateway/test/real", Value="short", Type="SecureString")
        with pytest.raises(GatewayMisconfigured, match="SecureString of at least 32"):
            reader()
        ssm.put_parameter(Name="/sfn-gateway/test/real", Value="p" * 40, Type="String", Overwrite=True)
        with pytest.raises(GatewayMisconfigured, match="SecureString"):
            reader()
    factory.get_ssm_client.cache_clear()


def test_owner_only_without_a_stage_secret_parameter_is_a_named_mistake():
    with pytest.raises(GatewayMisconfigured, match=r"\['private'\] ownerOnly, which needs STAGE_SECRET_PARAMETER"):
        config_from_environ({"STATE_MACHINES": json.dumps(PRIVATE)})


# --- item 3: a caller without read never receives an execution's data; Idempotency-Keys are the caller's own ---

START_ONLY = [{"callers": ["bob"], "stateMachines": ["orders"], "operations": ["start", "redrive"]},
              {"callers": ["ada"], "stateMachines": ["orders"], "operations": ["*"]}]
ORDERS = {"orders": {"arn": ORDERS_ARN, "type": "STANDARD"}}


@pytest.fixture
def as_caller(monkeypatch):
    def use(caller):
        monkeypatch.setattr(identity, "caller_record", lambda context, **_: caller)
    return use


def test_a_start_only_caller_replaying_someone_elses_running_start_gets_no_status_or_output(make_client, as_caller, stub):
    # Step Functions answers the same name and input, still running, with Ada's execution
    as_caller(BOB)
    arn = execution_arn("orders", "nightly")
    stub.add_response("start_execution", {"executionArn": arn, "startDate": STARTED})
    with make_client(state_machines=ORDERS, ACCESS_RULES=json.dumps(START_ONLY)) as client:
        response = post_json(client, "/executions?wait=5", {"stateMachine": "orders", "name": "nightly", "input": {"n": 1}})
    # 202 with only what the start itself says: no DescribeExecution was made (none is stubbed)
    assert response.status_code == 202
    assert response.json_body == {"executionArn": arn, "startDate": "2026-01-02T03:04:05+00:00", "name": "nightly",
                                  "stateMachine": "orders"}


def test_a_redrive_only_caller_is_not_told_the_executions_status_in_the_error(sfn):
    arn = execution_arn("orders", "run-1")
    sfn.add_client_error("redrive_execution", "ExecutionNotRedrivable", "Execution is RUNNING and cannot be redriven", 400)
    with pytest.raises(ExecutionNotRedrivable) as refused:
        guarded(sfn, BOB, ORDERS, START_ONLY).redrive_execution(arn)
    assert "RUNNING" not in str(refused.value) and "read right" in str(refused.value)
    # A reader gets Step Functions' words
    sfn.add_client_error("redrive_execution", "ExecutionNotRedrivable", "Execution is RUNNING and cannot be redriven", 400)
    with pytest.raises(ExecutionNotRedrivable, match="RUNNING"):
        guarded(sfn, ADA, ORDERS, START_ONLY).redrive_execution(arn)


def test_the_same_idempotency_key_from_two_callers_names_two_executions_and_one_callers_retries_one(make_client, as_caller, stub):
    names = {}
    for caller in (ADA, BOB, ADA):
        as_caller(caller)
        name = key_name("order-77", caller)
        stub.add_response("start_execution", {"executionArn": execution_arn("orders", name), "startDate": STARTED},
                          {"stateMachineArn": ORDERS_ARN, "name": name, "input": "{}"})
        with make_client(state_machines=ORDERS) as client:
            response = post_json(client, "/executions", {"stateMachine": "orders"}, {"Idempotency-Key": "order-77"})
        assert response.status_code == 201
        names.setdefault(caller["id"], set()).add(response.json_body["name"])
    assert names["ada"] != names["bob"] and len(names["ada"]) == 1
    # Nobody without the stage secret can compute another caller's name for a key
    assert key_name("order-77", BOB) != ownership.idempotency_name(b"guessed-secret-0123456789abcdef0123", BOB, "order-77")


def test_a_stage_without_a_stage_secret_refuses_an_idempotency_key_naming_the_setting(make_client, monkeypatch):
    def unset():
        raise GatewayMisconfigured("Invalid gateway configuration: STAGE_SECRET_PARAMETER is not set.")
    monkeypatch.setattr(factory, "get_stage_secret", unset)
    with make_client(state_machines=ORDERS) as client:
        response = post_json(client, "/executions", {"stateMachine": "orders"}, {"Idempotency-Key": "k1"})
    assert response.status_code == 500
    assert response.json_body["Code"] == "GatewayMisconfigured" and "STAGE_SECRET_PARAMETER" in response.json_body["Message"]


# --- item 4: an alias-only stage decides each execution by the alias it was started through ---

ALIASES = {
    "orders-live": {"arn": ORDERS_ARN + ":live", "type": "STANDARD"},
    "orders-canary": {"arn": ORDERS_ARN + ":canary", "type": "STANDARD"},
}
TEAMS = [
    {"groups": ["live-team"], "stateMachines": ["orders-live"], "operations": ["*"]},
    {"groups": ["canary-team"], "stateMachines": ["orders-canary"], "operations": ["*"]},
]


def _canary_run(arn):
    return {"executionArn": arn, "stateMachineArn": ORDERS_ARN, "status": "RUNNING", "startDate": STARTED,
            "input": '{"secret": 1}', "stateMachineAliasArn": ORDERS_ARN + ":canary",
            "stateMachineVersionArn": ORDERS_ARN + ":7"}


def test_the_canary_team_reads_its_own_canary_run(sfn):
    arn = execution_arn("orders", "canary-1")
    sfn.add_response("describe_execution", _canary_run(arn), {"executionArn": arn})
    described = guarded(sfn, ADA, ALIASES, TEAMS).describe_execution(arn)
    assert described["stateMachine"] == "orders-canary" and described["input"] == {"secret": 1}


def test_the_live_team_can_neither_read_nor_stop_a_canary_run(sfn):
    # Regression: the first entry (orders-live) used to decide for every execution of the machine
    arn = execution_arn("orders", "canary-1")
    sfn.add_response("describe_execution", _canary_run(arn), {"executionArn": arn})
    with pytest.raises(ExecutionNotFound):
        guarded(sfn, BOB, ALIASES, TEAMS).describe_execution(arn)
    sfn.add_response("describe_execution", _canary_run(arn), {"executionArn": arn})
    with pytest.raises(ExecutionNotFound):
        guarded(sfn, BOB, ALIASES, TEAMS).stop_execution(arn)  # no StopExecution was made (none stubbed)


def test_listing_an_alias_keeps_only_runs_started_through_an_entry_the_caller_may_read(sfn):
    canary = {**_canary_run(execution_arn("orders", "c1")), "name": "c1"}
    live = {**canary, "executionArn": execution_arn("orders", "l1"), "name": "l1",
            "stateMachineAliasArn": ORDERS_ARN + ":live"}
    for item in (canary, live):
        item.pop("input")
    sfn.add_response("list_executions", {"executions": [canary, live]},
                     {"stateMachineArn": ORDERS_ARN + ":canary", "maxResults": 100})
    page = guarded(sfn, ADA, ALIASES, TEAMS).list_executions("orders-canary")
    assert [e["name"] for e in page["executions"]] == ["c1"]


# --- item 5: a 404 names only the machines the caller may use ---

def test_an_unknown_state_machine_names_only_the_machines_this_caller_may_use(sfn):
    from chalicelib.errors import StateMachineNotFound

    with pytest.raises(StateMachineNotFound) as missing:
        guarded(sfn, BOB, ALIASES, TEAMS).start_execution("payroll", {}, "n1")
    assert str(missing.value).endswith("known: ['orders-live'].")
    with pytest.raises(AccessDenied):
        guarded(sfn, BOB, ALIASES, TEAMS).start_execution("orders-canary", {}, "n1")


def test_an_unknown_state_machine_route_answer_lists_no_machine_to_a_caller_with_no_rights(make_client, as_caller):
    as_caller({"type": "jwt", "id": "mallory", "groups": [], "scopes": []})
    with make_client(state_machines=ALIASES, ACCESS_RULES=json.dumps(TEAMS)) as client:
        response = client.http.get("/executions/" + quote(execution_arn("orders", "x"), safe="") + "?wait=x")
        listed = client.http.get("/executions?stateMachine=payroll")
    assert response.status_code == 400
    assert listed.status_code == 404 and listed.json_body["Message"].endswith("known: [].")


def test_a_reader_of_another_entry_gets_no_status_of_a_run_its_own_entry_may_not_read(sfn):
    # Found by test_access_fuzz: Ada may read `orders` and redrive through `orders-live`, not read it.
    machines = {"orders": {"arn": ORDERS_ARN, "type": "STANDARD"}, **{"orders-live": ALIASES["orders-live"]}}
    rules = [{"callers": ["ada"], "stateMachines": ["orders"], "operations": ["read"]},
             {"callers": ["ada"], "stateMachines": ["orders", "orders-live"], "operations": ["redrive"]}]
    arn = execution_arn("orders", "live-1")
    sfn.add_response("describe_execution", {**_canary_run(arn), "stateMachineAliasArn": ORDERS_ARN + ":live"},
                     {"executionArn": arn})
    sfn.add_client_error("redrive_execution", "ExecutionNotRedrivable", "Execution is RUNNING and cannot be redriven", 400)
    with pytest.raises(ExecutionNotRedrivable) as refused:
        guarded(sfn, ADA, machines, rules).redrive_execution(arn)
    assert "RUNNING" not in str(refused.value)
