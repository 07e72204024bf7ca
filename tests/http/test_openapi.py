"""openapi.yaml: valid OpenAPI 3.0, in step with the app's routes, rules and error table."""
import re

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from app import app
from chalicelib import validation
from chalicelib.http import error_responses
from tests.openapi_schemas import (
    load_document,
    resolve,
    response_schema,
    to_json_schema,
    validate_response,
)

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PUBLIC_OPERATIONS = {("/health", "GET")}
# Error codes Chalice itself answers with, outside the gateway's error table.
CHALICE_CODES = {"UnsupportedMediaType": 415, "InternalServerError": 500}
UNDOCUMENTED_CODES: set = set()
# operationId -> (body rules, query rules) the route validates with.
REQUEST_RULES = {
    "health": (None, None),
    "list_state_machines": (None, validation.NO_QUERY),
    "describe_state_machine": (None, validation.NO_QUERY),
    "start_execution": (validation.START_EXECUTION_BODY, validation.WAIT_QUERY),
    "list_executions": (None, validation.LIST_EXECUTIONS_QUERY),
    "describe_execution": (None, validation.WAIT_QUERY),
    "stop_execution": (validation.STOP_EXECUTION_BODY, validation.NO_QUERY),
    "get_execution_history": (None, validation.HISTORY_QUERY),
    "redrive_execution": (validation.NO_BODY, validation.NO_QUERY),
    "start_sync_execution": (validation.START_EXECUTION_BODY, validation.NO_QUERY),
    "send_task_success": (validation.TASK_SUCCESS_BODY, validation.NO_QUERY),
    "send_task_failure": (validation.TASK_FAILURE_BODY, validation.NO_QUERY),
    "send_task_heartbeat": (validation.TASK_HEARTBEAT_BODY, validation.NO_QUERY),
    "list_approvals": (None, validation.LIST_APPROVALS_QUERY),
    "show_approval": (None, validation.NO_QUERY),
    "approve_approval": (validation.ANSWER_APPROVAL_BODY, validation.NO_QUERY),
    "reject_approval": (validation.ANSWER_APPROVAL_BODY, validation.NO_QUERY),
}
STARTED = {
    "executionArn": "arn:aws:states:us-east-1:123456789012:execution:orders:run-1",
    "startDate": "2024-05-01T12:00:00.123000+00:00",
    "name": "run-1",
    "stateMachine": "orders",
}


def _operations():
    """(path, METHOD, operation) for every operation in the document."""
    for path, item in load_document()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method.upper(), operation


def _error_codes(response: dict) -> set | None:
    """The Code enum of an error response, or None when it is not the Error schema."""
    schema = resolve(response)["content"]["application/json"]["schema"]
    if "oneOf" in schema:
        # e.g. 403: API Gateway's own shape, or the gateway's AccessDenied
        shapes = [_error_codes({"content": {"application/json": {"schema": part}}}) for part in schema["oneOf"]]
        return set().union(*[codes for codes in shapes if codes is not None]) if any(c is not None for c in shapes) else None
    if schema == {"$ref": "#/components/schemas/Error"}:
        return set()
    parts = schema.get("allOf", [])
    if {"$ref": "#/components/schemas/Error"} not in parts:
        return None
    return {code for part in parts for code in part.get("properties", {}).get("Code", {}).get("enum", [])}


def _parameters(operation: dict, location: str) -> dict:
    params = [resolve(p) for p in operation.get("parameters", [])]
    return {p["name"]: p for p in params if p["in"] == location}


def test_document_is_valid_openapi_3_0_3():
    document = load_document()
    assert document["openapi"] == "3.0.3"
    validate_openapi(document)


def test_document_describes_exactly_the_apps_routes():
    # Given the routes the app registers (CORS preflights aside)
    routes = {(path, method) for path, entries in app.routes.items() for method in entries if method != "OPTIONS"}
    # Then the document has one operation per route, and no other
    assert {(path, method) for path, method, _ in _operations()} == routes


def test_operation_ids_are_the_apps_view_names():
    for path, method, operation in _operations():
        assert operation["operationId"] == app.routes[path][method].view_name, (path, method)


def test_sigv4_scheme_is_api_gateway_aws_iam():
    assert load_document()["components"]["securitySchemes"]["sigv4"] == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 for service `execute-api` (API Gateway AWS_IAM authorization).",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }


def test_every_operation_but_health_requires_sigv4():
    for path, method, operation in _operations():
        expected = [] if (path, method) in PUBLIC_OPERATIONS else [{"sigv4": []}]
        assert operation.get("security") == expected, (path, method)


def test_every_operation_declares_client_errors_with_the_error_schema():
    for path, method, operation in _operations():
        client_errors = {status: r for status, r in operation["responses"].items() if status.startswith("4")}
        assert client_errors, (path, method)
        for status, response in client_errors.items():
            if status == "403":
                continue
            assert _error_codes(response) is not None, (path, method, status)


def test_every_signed_operation_documents_api_gateways_403_shape():
    for path, method, operation in _operations():
        if (path, method) in PUBLIC_OPERATIONS:
            continue
        forbidden = resolve(operation["responses"]["403"])
        schema = forbidden["content"]["application/json"]["schema"]
        assert {"$ref": "#/components/schemas/ApiGatewayError"} in schema.get("oneOf", [schema])


def test_every_path_parameter_is_declared():
    for path, method, operation in _operations():
        assert set(_parameters(operation, "path")) == set(re.findall(r"{(\w+)}", path)), (path, method)


def test_documented_error_codes_match_the_gateways_error_table():
    # Given the one table that maps domain errors to HTTP (plus Chalice's own codes)
    table = {cls.__name__: status for cls, (status, _) in error_responses._HTTP_STATUS.items()}
    expected = {code: status for code, status in {**table, **CHALICE_CODES}.items() if code not in UNDOCUMENTED_CODES}
    # When every documented Code enum is collected by status
    documented = {}
    for _, _, operation in _operations():
        for status, response in operation["responses"].items():
            for code in _error_codes(response) or ():
                documented[code] = int(status)
    # Then each code appears, under the status the table gives it
    assert documented == expected


def test_retry_after_is_documented_where_the_gateway_sends_it():
    retry_statuses = {status for status, retry_after in error_responses._HTTP_STATUS.values() if retry_after is not None}
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            has_header = "Retry-After" in resolve(response).get("headers", {})
            assert has_header == (int(status) in retry_statuses), (path, method, status)


@pytest.mark.parametrize(
    "path,method,operation", list(_operations()), ids=[f"{method} {path}" for path, method, _ in _operations()]
)
def test_request_body_and_query_match_the_validation_rules(path, method, operation):
    body_rules, query_rules = REQUEST_RULES[operation["operationId"]]
    if body_rules:
        schema = resolve(operation["requestBody"]["content"]["application/json"]["schema"])
        assert set(schema["properties"]) == set(body_rules)
        assert set(schema.get("required", [])) == {name for name, rule in body_rules.items() if rule.required}
        assert schema["additionalProperties"] is False
    else:
        assert "requestBody" not in operation
    query = _parameters(operation, "query")
    assert set(query) == set(query_rules or {})
    assert {name for name, p in query.items() if p.get("required")} == {
        name for name, rule in (query_rules or {}).items() if rule.required
    }


def test_to_json_schema_translates_nullable_and_keeps_property_names():
    schema = to_json_schema(
        {"type": "object", "properties": {"example": {"type": "string", "nullable": True, "example": "x"}}}
    )
    assert schema == {"type": "object", "properties": {"example": {"type": ["string", "null"]}}}


def test_validate_response_accepts_documented_bodies():
    validate_response("POST", "/executions", 201, STARTED, {"Location": "/executions/arn%3A..."})
    validate_response("GET", "/health", 200, {"status": "ok"})
    validate_response("GET", "/executions", 200, {"executions": [], "nextToken": None})
    validate_response(
        "POST",
        "/sync-executions",
        200,
        {**STARTED, "status": "FAILED", "output": None, "error": "Boom", "cause": "x", "stopDate": STARTED["startDate"]},
    )
    validate_response("POST", "/tasks/heartbeat", 200, {})
    validate_response("GET", "/executions/{executionArn}", 404, {"Code": "ExecutionNotFound", "Message": "gone"})
    validate_response("GET", "/state-machines", 403, {"message": "Missing Authentication Token"})
    validate_response("GET", "/state-machines/{name}", 429, {"Code": "Throttled", "Message": "slow down"},
                      {"Retry-After": "1"})


@pytest.mark.parametrize(
    "method,path,status,body",
    [
        ("POST", "/executions", 201, {**STARTED, "startDate": "yesterday"}),
        ("POST", "/executions", 201, {key: value for key, value in STARTED.items() if key != "name"}),
        ("GET", "/executions/{executionArn}", 404, {"Code": "ExecutionNotFound"}),
        ("GET", "/executions/{executionArn}", 404, {"Code": "Throttled", "Message": "wrong status for this code"}),
        ("POST", "/tasks/success", 200, {"ok": True}),
        ("GET", "/health", 200, {"status": "down"}),
    ],
)
def test_validate_response_rejects_bodies_that_break_the_document(method, path, status, body):
    with pytest.raises(jsonschema.ValidationError):
        validate_response(method, path, status, body)


def test_validate_response_rejects_undocumented_status_and_missing_headers():
    with pytest.raises(AssertionError, match="does not document status 418"):
        validate_response("GET", "/health", 418, {})
    with pytest.raises(AssertionError, match="Location"):
        validate_response("POST", "/executions", 201, STARTED, {"Content-Type": "application/json"})


def test_response_schema_is_self_contained_json_schema():
    schema = response_schema("GET", "/state-machines", 200)
    jsonschema.Draft4Validator.check_schema(schema)


def test_real_responses_of_the_app_match_the_document(client):
    # Given the app on a test stage (these routes make no Step Functions call)
    health = client.http.get("/health")
    listed = client.http.get("/state-machines")
    bad_query = client.http.get("/state-machines?verbose=1")
    unknown = client.http.get("/state-machines/payroll")
    # Then status and body are as documented
    assert (health.status_code, listed.status_code, bad_query.status_code, unknown.status_code) == (200, 200, 400, 404)
    validate_response("GET", "/health", 200, health.json_body, health.headers)
    validate_response("GET", "/state-machines", 200, listed.json_body, listed.headers)
    validate_response("GET", "/state-machines", 400, bad_query.json_body, bad_query.headers)
    validate_response("GET", "/state-machines/{name}", 404, unknown.json_body, unknown.headers)
    assert listed.json_body["stateMachines"][0]["name"] == "orders"
