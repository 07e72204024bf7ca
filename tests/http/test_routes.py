"""Routes x outcomes through chalice's test client, with a stubbed Step Functions client."""
import datetime
import json
from urllib.parse import quote

import pytest
from chalice.app import IAMAuthorizer

from app import app
from tests.conftest import ORDERS_ARN, OTHER_ARN, assert_error, execution_arn, post_json

STARTED = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.timezone.utc)
STOPPED = STARTED + datetime.timedelta(seconds=3)



# --- authorisation table ------------------------------------------------------------


def test_every_route_except_health_requires_the_iam_authorizer_and_no_route_answers_options():
    unprotected = [
        (path, method)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if not isinstance(entry.authorizer, IAMAuthorizer)
    ]
    assert unprotected == [("/health", "GET")]
    # Without CORS_ALLOW_ORIGIN there are no preflights at all: no anonymous Lambda invocation.
    assert all("OPTIONS" not in methods for methods in app.routes.values())


# --- health and state machines ------------------------------------------------------


def test_health_returns_ok_without_calling_step_functions(client, stub):
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok"}


def test_list_state_machines_returns_the_allow_list(client, stub):
    response = client.http.get("/state-machines")
    assert response.status_code == 200
    assert response.json_body == {
        "stateMachines": [
            {"name": "orders", "stateMachineArn": ORDERS_ARN, "type": "STANDARD"},
            {"name": "quick", "stateMachineArn": ORDERS_ARN.replace("orders", "quick"), "type": "EXPRESS"},
        ]
    }


def test_describe_state_machine_returns_parsed_definition(client, stub):
    definition = {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    stub.add_response(
        "describe_state_machine",
        {
            "stateMachineArn": ORDERS_ARN,
            "name": "orders",
            "status": "ACTIVE",
            "definition": json.dumps(definition),
            "roleArn": "arn:aws:iam::123456789012:role/sfn",
            "type": "STANDARD",
            "creationDate": STARTED,
        },
        {"stateMachineArn": ORDERS_ARN},
    )
    response = client.http.get("/state-machines/orders")
    assert response.status_code == 200
    assert response.json_body == {
        "name": "orders",
        "stateMachineArn": ORDERS_ARN,
        "type": "STANDARD",
        "status": "ACTIVE",
        "creationDate": "2026-11-25T12:00:00+00:00",
        "definition": definition,
    }


def test_describe_state_machine_by_url_encoded_arn_resolves_the_allow_listed_machine(client, stub):
    stub.add_response(
        "describe_state_machine",
        {"stateMachineArn": ORDERS_ARN, "name": "orders", "definition": "{}", "roleArn": "arn:aws:iam::123456789012:role/r", "type": "STANDARD", "creationDate": STARTED},
        {"stateMachineArn": ORDERS_ARN},
    )
    response = client.http.get("/state-machines/" + quote(ORDERS_ARN, safe=""))
    assert response.status_code == 200
    assert response.json_body["name"] == "orders"


def test_describe_state_machine_outside_allow_list_returns_404_without_a_call(client, stub):
    response = client.http.get("/state-machines/" + quote(OTHER_ARN, safe=""))
    assert_error(response, 404, "StateMachineNotFound")


def test_describe_state_machine_deleted_in_step_functions_returns_404(client, stub):
    stub.add_client_error("describe_state_machine", "StateMachineDoesNotExist", "gone", 400)
    response = client.http.get("/state-machines/orders")
    assert_error(response, 404, "StateMachineNotFound")


# --- start execution ------------------------------------------------------------------


def test_start_execution_returns_201_with_location_and_execution(client, stub):
    arn = execution_arn(name="order-42")
    stub.add_response(
        "start_execution",
        {"executionArn": arn, "startDate": STARTED},
        {"stateMachineArn": ORDERS_ARN, "name": "order-42", "input": '{"a":1,"b":[true,null]}'},
    )
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "order-42", "input": {"b": [True, None], "a": 1}})
    assert response.status_code == 201
    assert response.headers["Location"] == "/executions/" + quote(arn, safe="")
    assert response.json_body == {
        "executionArn": arn,
        "startDate": "2026-11-25T12:00:00+00:00",
        "name": "order-42",
        "stateMachine": "orders",
    }


def test_start_execution_accepts_an_allow_listed_full_arn_and_defaults_input_to_empty_object(client, stub):
    stub.add_response(
        "start_execution",
        {"executionArn": execution_arn(name="n1"), "startDate": STARTED},
        {"stateMachineArn": ORDERS_ARN, "name": "n1", "input": "{}"},
    )
    response = post_json(client, "/executions", {"stateMachine": ORDERS_ARN, "name": "n1"})
    assert response.status_code == 201
    assert response.json_body["stateMachine"] == "orders"


def test_start_execution_uses_idempotency_key_as_name(client, stub):
    stub.add_response(
        "start_execution",
        {"executionArn": execution_arn(name="key-7"), "startDate": STARTED},
        {"stateMachineArn": ORDERS_ARN, "name": "key-7", "input": '"x"'},
    )
    response = post_json(client, "/executions", {"stateMachine": "orders", "input": "x"}, {"Idempotency-Key": "key-7"})
    assert response.status_code == 201
    assert response.json_body["name"] == "key-7"


def test_start_execution_without_name_or_key_generates_a_uuid_name(client, stub):
    captured = {}

    def remember(params, **_):
        captured.update(params)

    stub.client.meta.events.register("provide-client-params.states.StartExecution", remember)
    stub.add_response("start_execution", {"executionArn": execution_arn(name="generated"), "startDate": STARTED})
    response = post_json(client, "/executions", {"stateMachine": "orders"})
    assert response.status_code == 201
    assert len(captured["name"]) == 36 and captured["name"].count("-") == 4
    assert response.json_body["name"] == captured["name"]


def test_start_execution_with_differing_name_and_idempotency_key_returns_400(client, stub):
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "a"}, {"Idempotency-Key": "b"})
    assert_error(response, 400, "ValidationError")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"name": "x"}, 400, "ValidationError"),
        ({"stateMachine": 7}, 400, "ValidationError"),
        ({"stateMachine": "orders", "extra": 1}, 400, "ValidationError"),
        ({"stateMachine": "payroll"}, 404, "StateMachineNotFound"),
        ({"stateMachine": OTHER_ARN}, 404, "StateMachineNotFound"),
        ([1, 2], 400, "ValidationError"),
        ("not json", 400, "ValidationError"),
        ('{"stateMachine": "orders", "stateMachine": "orders"}', 400, "ValidationError"),
        ('{"stateMachine": "orders", "input": NaN}', 400, "ValidationError"),
        (b'{"stateMachine": "\xff"}', 400, "ValidationError"),
        ("[" * 100_000 + "]" * 100_000, 400, "ValidationError"),
    ],
    ids=["missing-state-machine", "wrong-type", "unknown-field", "unknown-name", "arn-outside-allow-list",
         "array-body", "not-json", "duplicate-key", "nan", "invalid-utf8", "deep-nesting"],
)
def test_start_execution_rejects_bad_requests_without_calling_step_functions(client, stub, body, status, code):
    assert_error(post_json(client, "/executions", body), status, code)


def test_start_execution_with_body_over_1_mib_returns_413_before_parsing(client, stub):
    response = post_json(client, "/executions", '{"stateMachine": "orders", "input": "' + "x" * 1_048_577 + '"}')
    assert_error(response, 413, "InputTooLarge")
    assert "1048576" in response.json_body["Message"]


@pytest.mark.parametrize(
    "name",
    ["", "a" * 81, "has space", "colon:name", "slash/name", "tab\tname", "nul\x00name", "del\x7fname", "brace{", "pct%41", "c1\x85ctl"],
)
def test_start_execution_with_invalid_name_returns_400_invalid_name(client, stub, name):
    assert_error(post_json(client, "/executions", {"stateMachine": "orders", "name": name}), 400, "InvalidName")


def test_start_execution_with_invalid_idempotency_key_returns_400_invalid_name(client, stub):
    response = post_json(client, "/executions", {"stateMachine": "orders"}, {"Idempotency-Key": "a;b"})
    assert_error(response, 400, "InvalidName")


def test_start_execution_with_80_character_unicode_name_is_accepted(client, stub):
    name = "é" * 80
    stub.add_response(
        "start_execution",
        {"executionArn": execution_arn(name="u"), "startDate": STARTED},
        {"stateMachineArn": ORDERS_ARN, "name": name, "input": "{}"},
    )
    assert post_json(client, "/executions", {"stateMachine": "orders", "name": name}).status_code == 201


def test_start_execution_with_input_just_over_256_kib_returns_413(client, stub):
    too_big = "x" * (262_144 - 1)  # plus two quotes = 262,145 bytes
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "big", "input": too_big})
    assert_error(response, 413, "InputTooLarge")
    assert "262145" in response.json_body["Message"]


def test_start_execution_with_input_of_exactly_256_kib_is_accepted(client, stub):
    exact = "x" * (262_144 - 2)
    stub.add_response(
        "start_execution",
        {"executionArn": execution_arn(name="edge"), "startDate": STARTED},
        {"stateMachineArn": ORDERS_ARN, "name": "edge", "input": json.dumps(exact)},
    )
    assert post_json(client, "/executions", {"stateMachine": "orders", "name": "edge", "input": exact}).status_code == 201


def test_start_execution_counts_input_size_in_utf8_bytes(client, stub):
    # 131,072 two-byte characters = 262,144 bytes + 2 quotes: over the limit.
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "u", "input": "é" * 131_072})
    assert_error(response, 413, "InputTooLarge")


@pytest.mark.parametrize(
    "sfn_code, status, code",
    [
        ("ExecutionAlreadyExists", 409, "ExecutionAlreadyExists"),
        ("InvalidExecutionInput", 400, "InvalidExecutionInput"),
        ("InvalidName", 400, "InvalidName"),
        ("InvalidArn", 400, "InvalidArn"),
        ("ValidationException", 400, "ValidationError"),
        ("StateMachineDoesNotExist", 404, "StateMachineNotFound"),
        ("StateMachineTypeNotSupported", 400, "StateMachineTypeNotSupported"),
        ("InternalServerError", 502, "BackendError"),
    ],
)
def test_start_execution_maps_step_functions_errors(client, stub, sfn_code, status, code):
    stub.add_client_error("start_execution", sfn_code, "said Step Functions", 400)
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert_error(response, status, code)
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize("sfn_code", ["ThrottlingException", "KmsThrottlingException"])
def test_start_execution_when_throttled_returns_429_with_retry_after(make_client, stub, sfn_code):
    stub.add_client_error("start_execution", sfn_code, "slow down", 400)
    with make_client(SFN_MAX_ATTEMPTS="1") as client:
        response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert_error(response, 429, "Throttled")
    assert response.headers["Retry-After"] == "1"


def test_start_execution_at_the_open_execution_quota_returns_429_without_retry_after(make_client, stub):
    stub.add_client_error("start_execution", "ExecutionLimitExceeded", "limit", 400)
    with make_client(SFN_MAX_ATTEMPTS="1") as client:
        response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert_error(response, 429, "ExecutionLimitExceeded")
    assert "Retry-After" not in response.headers
    assert "quota of open executions" in response.json_body["Message"]


@pytest.mark.parametrize(
    "sfn_code, status, code, advice",
    [
        ("StateMachineDeleting", 409, "StateMachineDeleting", "being deleted"),
        ("KmsAccessDeniedException", 500, "KmsAccessDenied", "kmsKeyArn"),
        ("KmsInvalidStateException", 503, "KmsKeyUnavailable", "re-enable"),
        ("ResourceNotFound", 404, "StateMachineNotFound", "alias"),
    ],
)
def test_start_execution_maps_deletion_kms_and_missing_alias_errors(client, stub, sfn_code, status, code, advice):
    stub.add_client_error("start_execution", sfn_code, "alias not found" if sfn_code == "ResourceNotFound" else "x", 400)
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert_error(response, status, code)
    assert advice in response.json_body["Message"]
    assert "Retry-After" not in response.headers


def test_retryable_failures_are_retried_within_the_attempt_limit_then_succeed(make_client, stub):
    for _ in range(2):
        stub.add_client_error("start_execution", "InternalFailure", "boom", 500)
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED})
    with make_client(SFN_MAX_ATTEMPTS="3") as client:
        response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert response.status_code == 201
    assert response.json_body["executionArn"] == execution_arn(name="n")


def test_client_errors_are_not_retried(make_client, stub):
    stub.add_client_error("start_execution", "InvalidExecutionInput", "bad", 400)
    with make_client(SFN_MAX_ATTEMPTS="3") as client:
        response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert_error(response, 400, "InvalidExecutionInput")


def test_unexpected_step_functions_error_names_the_request_id(client, stub):
    stub.add_client_error("start_execution", "SomethingNew", "new", 400, response_meta={"RequestId": "req-123"})
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
    assert_error(response, 502, "BackendError")
    assert "req-123" in response.json_body["Message"]


# --- list executions ------------------------------------------------------------------


def test_list_executions_passes_filters_and_returns_iso_dates(client, stub):
    stub.add_response(
        "list_executions",
        {
            "executions": [
                {"executionArn": execution_arn(name="a"), "stateMachineArn": ORDERS_ARN, "name": "a",
                 "status": "SUCCEEDED", "startDate": STARTED, "stopDate": STOPPED},
            ],
            "nextToken": "page-2",
        },
        {"stateMachineArn": ORDERS_ARN, "statusFilter": "SUCCEEDED", "maxResults": 5, "nextToken": "page-1"},
    )
    response = client.http.get("/executions?stateMachine=orders&status=SUCCEEDED&limit=5&nextToken=page-1")
    assert response.status_code == 200
    assert response.json_body == {
        "executions": [
            {"executionArn": execution_arn(name="a"), "stateMachineArn": ORDERS_ARN, "name": "a",
             "status": "SUCCEEDED", "startDate": "2026-11-25T12:00:00+00:00", "stopDate": "2026-11-25T12:00:03+00:00"},
        ],
        "nextToken": "page-2",
    }


def test_list_executions_last_page_has_null_next_token(client, stub):
    stub.add_response("list_executions", {"executions": []}, {"stateMachineArn": ORDERS_ARN})
    response = client.http.get("/executions?stateMachine=orders")
    assert response.status_code == 200
    assert response.json_body == {"executions": [], "nextToken": None}


@pytest.mark.parametrize(
    "query, status, code",
    [
        ("", 400, "ValidationError"),
        ("?stateMachine=orders&limit=0", 400, "ValidationError"),
        ("?stateMachine=orders&limit=1001", 400, "ValidationError"),
        ("?stateMachine=orders&limit=ten", 400, "ValidationError"),
        ("?stateMachine=orders&status=DONE", 400, "ValidationError"),
        ("?stateMachine=orders&colour=red", 400, "ValidationError"),
        ("?stateMachine=orders&limit=1&limit=2", 400, "ValidationError"),
        ("?stateMachine=payroll", 404, "StateMachineNotFound"),
        ("?stateMachine=quick", 400, "StateMachineTypeNotSupported"),
    ],
    ids=["missing-state-machine", "limit-0", "limit-1001", "limit-word", "bad-status", "unknown-param",
         "repeated-param", "unknown-machine", "express-machine"],
)
def test_list_executions_rejects_bad_queries_without_calling_step_functions(client, stub, query, status, code):
    assert_error(client.http.get("/executions" + query), status, code)


# --- describe execution -----------------------------------------------------------------


def describe_response(arn):
    return {
        "executionArn": arn,
        "stateMachineArn": ORDERS_ARN,
        "name": "run-1",
        "status": "SUCCEEDED",
        "startDate": STARTED,
        "stopDate": STOPPED,
        "input": '{"name": "Ada"}',
        "inputDetails": {"included": True},
        "output": '{"greeting": "Hello, Ada!"}',
        "outputDetails": {"included": True},
    }


@pytest.mark.parametrize("encode", [False, True], ids=["raw-arn", "url-encoded-arn"])
def test_describe_execution_returns_input_and_output_as_json(client, stub, encode):
    arn = execution_arn()
    stub.add_response("describe_execution", describe_response(arn), {"executionArn": arn})
    response = client.http.get("/executions/" + (quote(arn, safe="") if encode else arn))
    assert response.status_code == 200
    body = response.json_body
    assert body["input"] == {"name": "Ada"}
    assert body["output"] == {"greeting": "Hello, Ada!"}
    assert body["startDate"] == "2026-11-25T12:00:00+00:00"
    assert body["stateMachine"] == "orders"
    assert body["executionArn"] == arn


@pytest.mark.parametrize(
    "path_arn",
    ["not-an-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:orders",
     "arn:aws:states:us-east-1:12345:execution:orders:x", "..%2F..%2Fetc%2Fpasswd",
     quote(execution_arn(name="a/../b"), safe=""), quote(execution_arn(name="nul\x00"), safe=""),
     execution_arn(name="sp%20ace")],
)
def test_describe_execution_with_malformed_arn_returns_400_invalid_arn(client, stub, path_arn):
    assert_error(client.http.get("/executions/" + path_arn), 400, "InvalidArn")


def test_describe_execution_of_state_machine_outside_allow_list_returns_404_without_a_call(client, stub):
    assert_error(client.http.get("/executions/" + execution_arn("payroll")), 404, "StateMachineNotFound")


def test_describe_execution_that_does_not_exist_returns_404(client, stub):
    stub.add_client_error("describe_execution", "ExecutionDoesNotExist", "no such execution", 400)
    assert_error(client.http.get("/executions/" + execution_arn()), 404, "ExecutionNotFound")


def test_describe_execution_rejects_unknown_query_parameters(client, stub):
    assert_error(client.http.get("/executions/" + execution_arn() + "?verbose=1"), 400, "ValidationError")


# --- stop execution ---------------------------------------------------------------------


def test_stop_execution_passes_error_and_cause_and_returns_stop_date(client, stub):
    arn = execution_arn()
    stub.add_response("stop_execution", {"stopDate": STOPPED}, {"executionArn": arn, "error": "Cancelled", "cause": "by operator"})
    response = post_json(client, f"/executions/{quote(arn, safe='')}/stop", {"error": "Cancelled", "cause": "by operator"})
    assert response.status_code == 200
    assert response.json_body == {"stopDate": "2026-11-25T12:00:03+00:00"}


def test_stop_execution_without_body_stops_plainly(client, stub):
    arn = execution_arn()
    stub.add_response("stop_execution", {"stopDate": STOPPED}, {"executionArn": arn})
    response = client.http.post(f"/executions/{arn}/stop")
    assert response.status_code == 200
    assert response.json_body == {"stopDate": "2026-11-25T12:00:03+00:00"}


@pytest.mark.parametrize("body", [{"reason": "x"}, {"error": "e" * 257}, {"cause": 5}])
def test_stop_execution_rejects_bad_bodies(client, stub, body):
    assert_error(post_json(client, f"/executions/{execution_arn()}/stop", body), 400, "ValidationError")


def test_stop_execution_of_express_machine_returns_400_before_any_call(client, stub):
    response = client.http.post(f"/executions/{execution_arn('quick')}/stop")
    assert_error(response, 400, "StateMachineTypeNotSupported")


def test_stop_execution_that_does_not_exist_returns_404(client, stub):
    stub.add_client_error("stop_execution", "ExecutionDoesNotExist", "none", 400)
    assert_error(client.http.post(f"/executions/{execution_arn()}/stop"), 404, "ExecutionNotFound")


# --- history ------------------------------------------------------------------------------


def test_history_passes_paging_and_order_and_parses_event_payloads(client, stub):
    arn = execution_arn()
    stub.add_response(
        "get_execution_history",
        {
            "events": [
                {"timestamp": STARTED, "type": "ExecutionStarted", "id": 1, "previousEventId": 0,
                 "executionStartedEventDetails": {"input": '{"name": "Ada"}', "roleArn": "arn:aws:iam::123456789012:role/r"}},
            ],
            "nextToken": "more",
        },
        {"executionArn": arn, "maxResults": 1, "reverseOrder": True, "nextToken": "t1"},
    )
    response = client.http.get(f"/executions/{quote(arn, safe='')}/history?limit=1&reverse=true&nextToken=t1")
    assert response.status_code == 200
    assert response.json_body == {
        "events": [
            {"timestamp": "2026-11-25T12:00:00+00:00", "type": "ExecutionStarted", "id": 1, "previousEventId": 0,
             "executionStartedEventDetails": {"input": {"name": "Ada"}, "roleArn": "arn:aws:iam::123456789012:role/r"}},
        ],
        "nextToken": "more",
    }


@pytest.mark.parametrize("query", ["?reverse=yes", "?limit=-1", "?page=2"])
def test_history_rejects_bad_queries(client, stub, query):
    assert_error(client.http.get(f"/executions/{execution_arn()}/history{query}"), 400, "ValidationError")


def test_history_of_unknown_execution_returns_404(client, stub):
    stub.add_client_error("get_execution_history", "ExecutionDoesNotExist", "none", 400)
    assert_error(client.http.get(f"/executions/{execution_arn()}/history"), 404, "ExecutionNotFound")


# --- logging --------------------------------------------------------------------------------


def test_each_request_logs_one_json_line_with_route_status_and_execution(client, stub, caplog):
    arn = execution_arn()
    stub.add_client_error("describe_execution", "ExecutionDoesNotExist", "none", 400)
    with caplog.at_level("INFO", logger="sfn_gateway.access"):
        client.http.get("/executions/" + quote(arn, safe=""))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sfn_gateway.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/executions/{executionArn}"
    assert line["method"] == "GET"
    assert line["status"] == 404
    assert line["errorCode"] == "ExecutionNotFound"
    assert line["executionArn"] == arn
    assert line["sourceIp"] == "127.0.0.1"
    assert line["durationMs"] >= 0
    assert "requestId" in line
