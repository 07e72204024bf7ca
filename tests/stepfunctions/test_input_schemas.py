"""Input schemas: every violation listed with an RFC 6901 pointer, checked before any Step Functions call."""
import datetime
import json

import pytest

from chalicelib.config import config_from_environ
from chalicelib.stepfunctions.settings import parse_state_machines
from chalicelib.errors import GatewayMisconfigured
from chalicelib.stepfunctions.input_schemas import MAX_REPORTED_VIOLATIONS, InputSchema
from chalicelib.serialization import loads
from tests.conftest import ORDERS_ARN, QUICK_ARN, assert_error, execution_arn, post_json

STARTED = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.timezone.utc)
ORDER_SCHEMA = {
    "type": "object",
    "required": ["orderId", "amount"],
    "additionalProperties": False,
    "properties": {
        "orderId": {"type": "string", "minLength": 3},
        "amount": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
        "lines": {"type": "array", "items": {"type": "integer"}},
        "a/b": {"type": "string"},
        "x.y": {"type": "integer"},
        "x": {"type": "object"},
    },
}
MACHINES = {
    "orders": {"arn": ORDERS_ARN, "type": "STANDARD", "inputSchema": ORDER_SCHEMA},
    "quick": {"arn": QUICK_ARN, "type": "EXPRESS", "inputSchema": ORDER_SCHEMA},
}


def _violations(document: str) -> list:
    return InputSchema(ORDER_SCHEMA).violations(loads(document))


def test_a_valid_input_has_no_violations():
    assert _violations('{"orderId": "A-1", "amount": 12.50, "lines": [1, 2]}') == []


def test_every_violation_is_listed_with_its_pointer():
    found = _violations('{"orderId": "A", "amount": -1, "lines": [1, "two", 3.5], "extra": true}')
    assert sorted(found, key=lambda v: v["pointer"]) == [
        {"pointer": "/amount", "message": "must be bigger than 0"},
        {"pointer": "/extra", "message": "is not allowed"},
        {"pointer": "/lines/1", "message": "must be integer"},
        {"pointer": "/lines/2", "message": "must be integer"},
        {"pointer": "/orderId", "message": "must be longer than or equal to 3 characters"},
    ]


def test_each_missing_property_is_its_own_violation():
    assert _violations("{}") == [
        {"pointer": "/orderId", "message": "is required"},
        {"pointer": "/amount", "message": "is required"},
    ]


def test_pointers_escape_slash_and_tilde_and_follow_keys_that_hold_dots():
    found = _violations('{"orderId": "A-1", "amount": 1, "a/b": 5, "x.y": "no", "x": {}}')
    assert sorted(found, key=lambda v: v["pointer"]) == [
        {"pointer": "/a~1b", "message": "must be string"},
        {"pointer": "/x.y", "message": "must be integer"},
    ]


def test_decimal_numbers_are_checked_against_multiple_of():
    assert _violations('{"orderId": "A-1", "amount": 12.345}') == [
        {"pointer": "/amount", "message": "must be multiple of 0.01"}
    ]
    assert _violations('{"orderId": "A-1", "amount": 1e400}') == [
        {"pointer": "", "message": "holds a number the schema's checks cannot evaluate"}
    ]


def test_schema_defaults_never_change_the_input():
    schema = InputSchema({"type": "object", "properties": {"mode": {"type": "string", "default": "fast"}}})
    value = {}
    assert schema.violations(value) == [] and value == {}


@pytest.mark.parametrize("schema, reason", [
    ({"type": "nope"}, "is not a valid draft-07 schema"),
    ({"pattern": "("}, "is not a valid draft-07 schema"),
    ({"properties": 3}, "is not a valid draft-07 schema"),
    ({"$ref": "https://example.com/order.json"}, "$ref must point inside the schema"),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, '"$schema" must be draft-07'),
    ("object", "must be a JSON Schema object"),
])
def test_an_invalid_schema_is_a_configuration_error_naming_the_machine(schema, reason):
    raw = json.dumps({"orders": {"arn": ORDERS_ARN, "inputSchema": schema}})
    with pytest.raises(GatewayMisconfigured) as caught:
        parse_state_machines(raw)
    message = str(caught.value)
    assert message.startswith('Invalid gateway configuration: STATE_MACHINES["orders"].inputSchema ')
    assert reason in message and "\n" not in message


def test_stages_without_schemas_do_not_import_the_validator():
    import subprocess
    import sys

    code = ("import json, sys; from chalicelib.stepfunctions.settings import parse_state_machines; "
            "parse_state_machines(json.dumps({'a': {'arn': 'arn:aws:states:us-east-1:123456789012:stateMachine:a'}})); "
            "print('fastjsonschema' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- through the routes --------------------------------------------------------------------


@pytest.fixture
def schema_client(make_client):
    with make_client(MACHINES) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/executions", "/executions?wait=5", "/sync-executions"])
def test_a_start_with_bad_input_returns_400_listing_violations_before_any_step_functions_call(schema_client, stub, path):
    machine = "quick" if path == "/sync-executions" else "orders"
    response = post_json(schema_client, path, {"stateMachine": machine, "input": {"amount": "12"}})
    assert response.status_code == 400
    assert response.json_body == {
        "Code": "InputSchemaViolation",
        "Message": f"The input does not match the input schema of {machine!r} (2 violations).",
        "Errors": [{"pointer": "/orderId", "message": "is required"},
                   {"pointer": "/amount", "message": "must be number"}],
    }


def test_a_start_with_valid_input_reaches_step_functions(schema_client, stub):
    arn = execution_arn(name="n1")
    stub.add_response("start_execution", {"executionArn": arn, "startDate": STARTED},
                      {"stateMachineArn": ORDERS_ARN, "name": "n1", "input": '{"amount":9.99,"orderId":"A-1"}'})
    response = post_json(schema_client, "/executions", {"stateMachine": "orders", "name": "n1",
                                                         "input": {"orderId": "A-1", "amount": 9.99}})
    assert response.status_code == 201, response.json_body
    assert response.json_body["executionArn"] == arn


def test_at_most_twenty_violations_are_listed(make_client, stub):
    many = {"orders": {"arn": ORDERS_ARN, "inputSchema": {"type": "array", "items": {"type": "string"}}}}
    with make_client(many) as test_client:
        response = post_json(test_client, "/executions", {"stateMachine": "orders", "input": list(range(25))})
    assert_error(response, 400, "InputSchemaViolation")
    assert response.json_body["Message"].endswith("(25 violations; the first 20 are listed).")
    assert response.json_body["Errors"] == [{"pointer": f"/{i}", "message": "must be string"}
                                            for i in range(MAX_REPORTED_VIOLATIONS)]


def test_describe_state_machine_includes_the_input_schema(schema_client, stub):
    stub.add_response("describe_state_machine", {
        "stateMachineArn": ORDERS_ARN, "name": "orders", "definition": "{}", "roleArn": "arn:aws:iam::123456789012:role/r",
        "type": "STANDARD", "creationDate": STARTED, "status": "ACTIVE"}, {"stateMachineArn": ORDERS_ARN})
    response = schema_client.http.get("/state-machines/orders")
    assert response.status_code == 200
    assert response.json_body["inputSchema"] == ORDER_SCHEMA


def test_a_stage_with_an_invalid_schema_answers_500_naming_the_machine(make_client, stub):
    broken = {"orders": {"arn": ORDERS_ARN, "inputSchema": {"type": "nope"}}}
    with make_client(broken) as test_client:
        response = post_json(test_client, "/executions", {"stateMachine": "orders", "input": {}})
    assert_error(response, 500, "GatewayMisconfigured")
    assert 'STATE_MACHINES["orders"].inputSchema' in response.json_body["Message"]


def test_config_keeps_the_schema_for_each_machine():
    config = config_from_environ({"STATE_MACHINES": json.dumps(MACHINES)})
    assert config.registry.resolve("orders").input_schema.schema == ORDER_SCHEMA
