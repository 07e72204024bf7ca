"""Access rules and ownerOnly: parsed from the stage, decided before any Step Functions call."""
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.auth import identity
from chalicelib.auth.access import OPERATIONS, GuardedGateway, guard, owner_tag
from chalicelib.config import config_from_environ
from chalicelib.errors import AccessDenied, ExecutionNotFound, GatewayMisconfigured, InvalidName
from chalicelib.stepfunctions.service import StepFunctionsGateway
from tests.conftest import ACCOUNT, ORDERS_ARN, QUICK_ARN, assert_error, execution_arn, post_json

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
PRIVATE_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:private"
MACHINES = {
    "orders": {"arn": ORDERS_ARN, "type": "STANDARD"},
    "quick": {"arn": QUICK_ARN, "type": "EXPRESS"},
    "private": {"arn": PRIVATE_ARN, "type": "STANDARD", "ownerOnly": True},
}
ADA = {"type": "jwt", "id": "ada", "groups": ["approvers"], "scopes": ["orders/read"]}
BOB = {"type": "jwt", "id": "bob", "groups": ["developers"], "scopes": []}
ROLE = {"type": "iam", "id": f"arn:aws:iam::{ACCOUNT}:role/ops-deployer", "groups": [], "scopes": []}


def config_with(rules=None, machines=None):
    environ = {"STATE_MACHINES": json.dumps(machines or MACHINES)}
    if rules is not None:
        environ["ACCESS_RULES"] = json.dumps(rules)
    return config_from_environ(environ)


@pytest.fixture
def sfn(aws_credentials):
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield stubber
        # Every queued answer was used: and nothing was called that was not queued.
        stubber.assert_no_pending_responses()


def gateway_for(sfn, caller, rules=None, machines=None):
    config = config_with(rules, machines)
    return GuardedGateway(StepFunctionsGateway(lambda read_timeout=None: sfn.client, config), config.registry,
                          config.access_rules, caller)


# --- parsing ----------------------------------------------------------------------------------------


def test_no_access_rules_means_every_caller_may_do_everything():
    assert config_with().access_rules is None


@pytest.mark.parametrize("rules, named", [
    ({"callers": ["ada"]}, "ACCESS_RULES must be a JSON list"),
    ([{"callers": ["ada"], "stateMachines": ["orders"], "operations": ["launch"]}], r"unknown operations \['launch'\]"),
    ([{"callers": ["ada"], "stateMachines": ["payroll"], "operations": ["read"]}], r"names \['payroll'\], not in STATE_MACHINES"),
    ([{"stateMachines": ["orders"], "operations": ["read"]}], "matches nobody"),
    ([{"callers": ["ada"], "operations": ["read"]}], "needs stateMachines"),
    ([{"callers": ["ada"], "stateMachines": ["orders"]}], "unknown operations"),
    ([{"callers": "ada", "stateMachines": ["orders"], "operations": ["read"]}], r"ACCESS_RULES\[0\].callers must be a list"),
    ([{"callers": ["ada"], "stateMachines": ["orders"], "operations": ["read"], "effect": "deny"}], r"unknown keys \['effect'\]"),
    (["ada"], r"ACCESS_RULES\[0\] must be an object"),
])
def test_misconfigured_rules_name_the_mistake(rules, named):
    with pytest.raises(GatewayMisconfigured, match=named):
        config_with(rules)


def test_invalid_access_rules_json_is_named():
    with pytest.raises(GatewayMisconfigured, match="ACCESS_RULES is not valid JSON"):
        config_from_environ({"STATE_MACHINES": json.dumps(MACHINES), "ACCESS_RULES": "[{"})


def test_owner_only_must_be_a_boolean_on_a_standard_machine():
    with pytest.raises(GatewayMisconfigured, match="ownerOnly must be true or false"):
        config_with(machines={"orders": {"arn": ORDERS_ARN, "ownerOnly": "yes"}})
    with pytest.raises(GatewayMisconfigured, match="ownerOnly applies to STANDARD machines only"):
        config_with(machines={"quick": {"arn": QUICK_ARN, "type": "EXPRESS", "ownerOnly": True}})


def test_tasks_only_rule_needs_no_state_machines():
    rules = config_with([{"groups": ["approvers"], "operations": ["tasks"]}]).access_rules
    assert rules.allows(ADA, "tasks") and not rules.allows(BOB, "tasks")


# --- matching -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_is_allowed_only_when_a_rule_names_it(operation):
    rules = config_with([{"callers": ["ada"], "stateMachines": ["orders"], "operations": [operation]}]).access_rules
    for other in OPERATIONS:
        assert rules.allows(ADA, other, "orders") is (other == operation), other


def test_rules_match_by_caller_id_group_or_scope():
    rules = config_with([
        {"callers": ["bob"], "stateMachines": ["orders"], "operations": ["stop"]},
        {"groups": ["approvers"], "stateMachines": ["orders"], "operations": ["start"]},
        {"scopes": ["orders/read"], "stateMachines": ["orders"], "operations": ["read"]},
    ]).access_rules
    assert [rules.allows(ADA, op, "orders") for op in ("stop", "start", "read")] == [False, True, True]
    assert [rules.allows(BOB, op, "orders") for op in ("stop", "start", "read")] == [True, False, False]


def test_wildcards_cover_every_machine_every_operation_every_caller_and_id_prefixes():
    rules = config_with([
        {"callers": ["*"], "stateMachines": ["orders"], "operations": ["read"]},
        {"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]},
        {"callers": [f"arn:aws:iam::{ACCOUNT}:role/ops-*"], "stateMachines": ["private"], "operations": ["stop"]},
    ]).access_rules
    assert rules.allows(BOB, "read", "orders") and not rules.allows(BOB, "read", "private")
    assert all(rules.allows(ADA, op, machine) for op in OPERATIONS for machine in MACHINES)
    assert rules.allows(ROLE, "stop", "private") and not rules.allows(ROLE, "stop", "orders")
    assert not rules.allows({**ROLE, "id": f"arn:aws:iam::{ACCOUNT}:role/dev"}, "stop", "private")


def test_unauthenticated_callers_match_no_rule_not_even_a_wildcard():
    rules = config_with([{"callers": ["*"], "stateMachines": ["*"], "operations": ["*"]}]).access_rules
    assert not rules.allows(None, "read", "orders")
    assert not rules.allows({"type": "iam", "id": None, "groups": [], "scopes": []}, "read", "orders")


def test_evaluating_is_independent_of_the_rules_order():
    forward = [
        {"callers": ["bob"], "stateMachines": ["orders"], "operations": ["read"]},
        {"groups": ["approvers"], "stateMachines": ["*"], "operations": ["start"]},
    ]
    a, b = config_with(forward).access_rules, config_with(list(reversed(forward))).access_rules
    for caller in (ADA, BOB, ROLE):
        for op in OPERATIONS:
            assert a.allows(caller, op, "orders") == b.allows(caller, op, "orders")


# --- the guarded gateway: decided before any Step Functions call ---------------------------------------

READ_ONLY_BOB = [
    {"callers": ["bob"], "stateMachines": ["orders"], "operations": ["read"]},
    {"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]},
]


@pytest.mark.parametrize("call, operation", [
    (lambda g: g.start_execution("orders", {}, "n1"), "start"),
    (lambda g: g.start_sync_execution("quick", {}, "n1"), "sync"),
    (lambda g: g.stop_execution(execution_arn()), "stop"),
    (lambda g: g.redrive_execution(execution_arn()), "redrive"),
    (lambda g: g.send_task_success("token", {}), "tasks"),
    (lambda g: g.send_task_failure("token"), "tasks"),
    (lambda g: g.send_task_heartbeat("token"), "tasks"),
    (lambda g: g.describe_state_machine("private"), "read"),
    (lambda g: g.list_executions("private"), "read"),
])
def test_denied_operations_raise_access_denied_without_calling_step_functions(sfn, call, operation):
    gateway = gateway_for(sfn, BOB, READ_ONLY_BOB)
    with pytest.raises(AccessDenied) as denied:
        call(gateway)  # the stubber has no answer queued: any call would fail differently
    assert f"may not {operation}" in str(denied.value)
    assert "'bob'" in str(denied.value)


def test_allowed_read_reaches_step_functions(sfn):
    sfn.add_response("describe_execution", {
        "executionArn": execution_arn(), "stateMachineArn": ORDERS_ARN, "status": "RUNNING", "startDate": STARTED,
    }, {"executionArn": execution_arn()})
    assert gateway_for(sfn, BOB, READ_ONLY_BOB).describe_execution(execution_arn())["status"] == "RUNNING"


def test_state_machine_list_holds_only_the_machines_the_caller_may_use(sfn):
    assert [m["name"] for m in gateway_for(sfn, BOB, READ_ONLY_BOB).list_state_machines()["stateMachines"]] == ["orders"]
    assert [m["name"] for m in gateway_for(sfn, ADA, READ_ONLY_BOB).list_state_machines()["stateMachines"]] == ["orders", "quick", "private"]
    tasks_only = [{"callers": ["bob"], "operations": ["tasks"]}]
    assert gateway_for(sfn, BOB, tasks_only).list_state_machines() == {"stateMachines": []}


def test_unknown_state_machine_is_still_404_before_access_is_considered(sfn):
    from chalicelib.errors import StateMachineNotFound

    with pytest.raises(StateMachineNotFound):
        gateway_for(sfn, BOB, READ_ONLY_BOB).start_execution("payroll", {}, "n1")


def test_without_rules_or_owner_only_machines_the_gateway_is_not_wrapped(sfn):
    config = config_with(machines={"orders": MACHINES["orders"]})
    plain = StepFunctionsGateway(lambda read_timeout=None: sfn.client, config)
    assert guard(plain, config) is plain
    assert isinstance(guard(plain, config_with()), GuardedGateway)


def test_every_public_operation_of_the_service_is_guarded():
    # A new StepFunctionsGateway operation must get its access check too, or it would bypass the rules.
    public = {name for name in vars(StepFunctionsGateway) if not name.startswith("_")}
    assert public <= set(vars(GuardedGateway))


# --- ownerOnly ------------------------------------------------------------------------------------------


def test_owner_only_start_prefixes_the_name_with_the_callers_owner_tag(sfn):
    tag = owner_tag(ADA)
    arn = execution_arn("private", tag + "n1")
    sfn.add_response("start_execution", {"executionArn": arn, "startDate": STARTED},
                     {"stateMachineArn": PRIVATE_ARN, "name": tag + "n1", "input": "{}"})
    started = gateway_for(sfn, ADA).start_execution("private", {}, "n1")
    assert (started["executionArn"], started["name"]) == (arn, tag + "n1")
    assert len(tag) == 21 and tag != owner_tag(BOB) and tag != owner_tag({**ADA, "type": "cognito"})


def test_a_client_cannot_pick_another_callers_tag_as_its_name(sfn):
    # Bob names his execution with Ada's tag: the gateway still prefixes his own.
    forged = owner_tag(ADA) + "n1"
    sfn.add_response("start_execution", {"executionArn": execution_arn("private", owner_tag(BOB) + forged), "startDate": STARTED},
                     {"stateMachineArn": PRIVATE_ARN, "name": owner_tag(BOB) + forged, "input": "{}"})
    assert gateway_for(sfn, BOB).start_execution("private", {}, forged)["name"].startswith(owner_tag(BOB))


@pytest.mark.parametrize("call", [
    lambda g, arn: g.describe_execution(arn),
    lambda g, arn: g.wait_for_execution(arn, 1),
    lambda g, arn: g.stop_execution(arn),
    lambda g, arn: g.get_execution_history(arn),
    lambda g, arn: g.redrive_execution(arn),
])
def test_another_callers_execution_answers_not_found_without_any_call(sfn, call):
    adas = execution_arn("private", owner_tag(ADA) + "n1")
    with pytest.raises(ExecutionNotFound):
        call(gateway_for(sfn, BOB), adas)
    with pytest.raises(ExecutionNotFound):  # nor can an execution started outside the gateway be reached
        call(gateway_for(sfn, BOB), execution_arn("private", "console-run"))


def test_owner_only_list_keeps_only_the_callers_own_executions(sfn):
    mine, theirs = owner_tag(BOB) + "a", owner_tag(ADA) + "b"
    executions = [{"executionArn": execution_arn("private", n), "stateMachineArn": PRIVATE_ARN, "name": n,
                   "status": "RUNNING", "startDate": STARTED} for n in (mine, theirs, "console-run")]
    sfn.add_response("list_executions", {"executions": executions, "nextToken": "more"}, {"stateMachineArn": PRIVATE_ARN})
    page = gateway_for(sfn, BOB).list_executions("private")
    assert [e["name"] for e in page["executions"]] == [mine]
    assert page["nextToken"] == "more"


def test_owner_only_names_leave_room_for_the_tag(sfn):
    with pytest.raises(InvalidName, match="at most 59 characters"):
        gateway_for(sfn, ADA).start_execution("private", {}, "n" * 60)


def test_owner_only_needs_an_identified_caller(sfn):
    with pytest.raises(AccessDenied, match="ownerOnly"):
        gateway_for(sfn, None).start_execution("private", {}, "n1")


def test_start_then_wait_needs_no_read_right(sfn):
    start_only = [{"callers": ["bob"], "stateMachines": ["orders"], "operations": ["start"]}]
    arn = execution_arn("orders", "n1")
    sfn.add_response("start_execution", {"executionArn": arn, "startDate": STARTED})
    sfn.add_response("describe_execution", {"executionArn": arn, "stateMachineArn": ORDERS_ARN, "status": "SUCCEEDED",
                                            "startDate": STARTED, "stopDate": STARTED, "output": "{}"})
    gateway = gateway_for(sfn, BOB, start_only)
    started = gateway.start_execution("orders", {}, "n1")
    assert gateway.wait_for_execution(started["executionArn"], 1)[0] is True
    with pytest.raises(AccessDenied):  # another request (a new gateway) needs the read right
        gateway_for(sfn, BOB, start_only).describe_execution(arn)


# --- through the routes -------------------------------------------------------------------------------


@pytest.fixture
def as_caller(monkeypatch):
    """Make every request come from the given caller record (what API Gateway's context would say)."""
    def use(caller):
        monkeypatch.setattr(identity, "caller_record", lambda context: caller)
    return use


def test_denied_route_answers_403_access_denied_naming_operation_and_machine(make_client, as_caller, stub):
    as_caller(BOB)
    with make_client(state_machines=MACHINES, ACCESS_RULES=json.dumps(READ_ONLY_BOB)) as client:
        response = post_json(client, "/executions", {"stateMachine": "orders"})
    assert_error(response, 403, "AccessDenied")
    assert "may not start on state machine 'orders'" in response.json_body["Message"]


def test_misconfigured_rules_answer_500_gateway_misconfigured(make_client, as_caller):
    as_caller(ADA)
    rules = [{"callers": ["ada"], "stateMachines": ["payroll"], "operations": ["read"]}]
    with make_client(state_machines=MACHINES, ACCESS_RULES=json.dumps(rules)) as client:
        response = client.http.get("/state-machines")
    assert_error(response, 500, "GatewayMisconfigured")
    assert "payroll" in response.json_body["Message"]


def test_state_machines_route_lists_only_usable_machines(make_client, as_caller):
    as_caller(BOB)
    with make_client(state_machines=MACHINES, ACCESS_RULES=json.dumps(READ_ONLY_BOB)) as client:
        response = client.http.get("/state-machines")
    assert response.status_code == 200
    assert [m["name"] for m in response.json_body["stateMachines"]] == ["orders"]


def test_merged_decisions_equal_rule_by_rule_evaluation_on_random_rule_sets():
    import random

    rng = random.Random(10)
    names, people, groups, scopes = list(MACHINES), ["ada", "bob", "eve"], ["g1", "g2", "g3"], ["s1", "s2"]
    for _ in range(200):
        rules = []
        for _ in range(rng.randint(1, 6)):
            rule = {"operations": rng.sample(OPERATIONS + ("*",), rng.randint(1, 3)),
                    "stateMachines": rng.sample(names + ["*"], rng.randint(1, 2))}
            for key, pool in (("callers", people + ["*", "a*"]), ("groups", groups), ("scopes", scopes)):
                if rng.random() < 0.5:
                    rule[key] = rng.sample(pool, rng.randint(1, 2))
            rule.setdefault("callers", [rng.choice(people)])
            rules.append(rule)
        access = config_with(rules).access_rules
        for person in people:
            caller = {"type": "jwt", "id": person, "groups": rng.sample(groups, rng.randint(0, 2)), "scopes": rng.sample(scopes, rng.randint(0, 1))}
            for operation in OPERATIONS:
                for machine in names:
                    naive = any(r.covers(operation, machine) and r.matches_caller(caller) for r in access.rules)
                    assert access.allows(caller, operation, machine) is naive, (rules, caller, operation, machine)


def test_versions_and_aliases_of_one_machine_must_agree_on_owner_only():
    machines = {
        "orders": {"arn": ORDERS_ARN, "type": "STANDARD", "ownerOnly": True},
        "orders-live": {"arn": ORDERS_ARN + ":live", "type": "STANDARD"},
    }
    with pytest.raises(GatewayMisconfigured, match="must all set the same ownerOnly"):
        config_with(machines=machines)
    machines["orders-live"]["ownerOnly"] = True
    assert config_with(machines=machines).registry.resolve("orders-live").owner_only


def test_a_retry_by_another_token_caller_does_not_get_the_first_callers_running_execution(sfn):
    # Token callers have no userArn: the caller id must tell them apart when a start is replayed.
    machines = {"orders": {"arn": ORDERS_ARN, "type": "STANDARD", "passCallerContext": True}}
    config = config_with(machines=machines)
    gateway = StepFunctionsGateway(lambda read_timeout=None: sfn.client, config)
    arn = execution_arn("orders", "k1")
    running = {"executionArn": arn, "stateMachineArn": ORDERS_ARN, "status": "RUNNING", "startDate": STARTED,
               "input": json.dumps({"input": {"n": 1}, "caller": {"userArn": None, "type": "jwt", "id": "ada"}})}
    from chalicelib.errors import ExecutionAlreadyExists

    sfn.add_client_error("start_execution", "ExecutionAlreadyExists", "exists", 400)
    sfn.add_response("describe_execution", running, {"executionArn": arn})
    with pytest.raises(ExecutionAlreadyExists):
        gateway.start_execution("orders", {"n": 1}, "k1", {"userArn": None, "type": "jwt", "id": "bob"})
    # While Ada's own retry gets her running execution back
    sfn.add_client_error("start_execution", "ExecutionAlreadyExists", "exists", 400)
    sfn.add_response("describe_execution", running, {"executionArn": arn})
    assert gateway.start_execution("orders", {"n": 1}, "k1", {"userArn": None, "type": "jwt", "id": "ada"})["executionArn"] == arn
