"""Issue 9's defects, each through the routes with a stubbed Step Functions client (Given / When / Then)."""
import datetime
import json
import time
from urllib.parse import quote

import pytest
from botocore.stub import ANY

from app import app
from chalicelib import factory
from tests.conftest import ORDERS_ARN, QUICK_ARN, assert_error, execution_arn, post_json

STARTED = datetime.datetime(2026, 11, 26, 9, 0, 0, tzinfo=datetime.timezone.utc)
EXPRESS_ARN = "arn:aws:states:us-east-1:123456789012:express:quick:run-1:4a1c2a5e-5c1f-4c3a-9b7e-2f0f7a1d9c11"
LIVE_ARN = ORDERS_ARN + ":live"
V3_ARN = ORDERS_ARN + ":3"


# --- 1. Express on /executions ------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?wait=5"])
def test_starting_an_express_machine_on_executions_is_refused_before_any_call(client, stub, query):
    response = post_json(client, f"/executions{query}", {"stateMachine": "quick", "name": "n"})
    assert_error(response, 400, "StateMachineTypeNotSupported")
    assert "/sync-executions" in response.json_body["Message"]


@pytest.mark.parametrize("suffix", ["", "/history", "?wait=1"])
def test_real_express_execution_arns_get_the_documented_error_not_invalid_arn(client, stub, suffix):
    response = client.http.get(f"/executions/{quote(EXPRESS_ARN, safe='')}{suffix}")
    assert_error(response, 400, "StateMachineTypeNotSupported")
    assert "/sync-executions" in response.json_body["Message"]


def test_stopping_a_real_express_execution_arn_gets_the_documented_error(client, stub):
    response = post_json(client, f"/executions/{quote(EXPRESS_ARN, safe='')}/stop", {})
    assert_error(response, 400, "StateMachineTypeNotSupported")


def test_express_arn_of_a_machine_outside_the_allow_list_is_not_found(client, stub):
    arn = EXPRESS_ARN.replace(":quick:", ":payroll:")
    assert_error(client.http.get(f"/executions/{quote(arn, safe='')}"), 404, "StateMachineNotFound")


def test_express_arn_without_its_id_is_malformed(client, stub):
    arn = "arn:aws:states:us-east-1:123456789012:express:quick:run-1"
    assert_error(client.http.get(f"/executions/{quote(arn, safe='')}"), 400, "InvalidArn")


# --- 3. Lone surrogates --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, code",
    [
        ('{"stateMachine": "orders", "input": "\\ud800"}', "ValidationError"),
        ('{"stateMachine": "orders", "input": {"\\udfff": 1}}', "ValidationError"),
        ('{"stateMachine": "orders\\ud800"}', "ValidationError"),
        ('{"stateMachine": "orders", "name": "a\\ud800"}', "InvalidName"),
    ],
)
def test_lone_surrogates_in_a_start_return_400_without_a_call(client, stub, raw, code):
    response = post_json(client, "/executions", raw)
    assert_error(response, 400, code)
    assert "surrogate" in response.json_body["Message"]


def test_lone_surrogate_in_a_task_output_returns_400_without_a_call(make_client, stub):
    with make_client(TASK_ROUTES="on") as client:
        response = post_json(client, "/tasks/success", '{"taskToken": "t", "output": ["\\ud83d"]}')
    assert_error(response, 400, "ValidationError")


def test_a_proper_surrogate_pair_is_an_ordinary_character(client, stub):
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED},
                      {"stateMachineArn": ORDERS_ARN, "name": "n", "input": '"\U0001f600"'})
    assert post_json(client, "/executions", '{"stateMachine": "orders", "name": "n", "input": "\\ud83d\\ude00"}').status_code == 201


# --- 4. Numbers ----------------------------------------------------------------------------


def test_numbers_reach_step_functions_exactly_as_the_client_wrote_them(client, stub):
    sent = '{"big":12345678901234567.89,"huge":1e400,"int":123456789012345678901234567890,"tiny":-0.0,"z":1.50}'
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED},
                      {"stateMachineArn": ORDERS_ARN, "name": "n", "input": sent})
    body = '{"stateMachine": "orders", "name": "n", "input": {"z": 1.50, "tiny": -0.0, "huge": 1e400, ' \
           '"int": 123456789012345678901234567890, "big": 12345678901234567.89}}'
    assert post_json(client, "/executions", body).status_code == 201


def test_numbers_in_step_functions_output_reach_the_client_exactly_and_never_as_infinity(client, stub):
    arn = execution_arn()
    stub.add_response("describe_execution", {
        "executionArn": arn, "stateMachineArn": ORDERS_ARN, "status": "SUCCEEDED", "startDate": STARTED,
        "input": '{"n": 1e400}', "output": '{"total": 12345678901234567.89, "count": 98765432109876543210}',
    })
    response = client.http.get(f"/executions/{quote(arn, safe='')}")
    assert response.status_code == 200
    text = response.body.decode()
    assert '"total":12345678901234567.89' in text
    assert '"count":98765432109876543210' in text
    assert '"n":1e400' in text
    assert "Infinity" not in text and "NaN" not in text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_body_are_refused(client, stub, constant):
    response = post_json(client, "/executions", f'{{"stateMachine": "orders", "input": {constant}}}')
    assert_error(response, 400, "ValidationError")


# --- 5. Responses that would pass Lambda's 6 MB limit ---------------------------------------


def _events(first_id: int, count: int, payload: str) -> list:
    return [{"timestamp": STARTED, "type": "TaskStateExited", "id": event_id, "previousEventId": event_id - 1,
             "stateExitedEventDetails": {"name": "S", "output": json.dumps({"text": payload})}}
            for event_id in range(first_id, first_id + count)]


def test_a_history_page_too_large_for_lambda_is_shortened_and_continued_by_its_next_token(client, stub):
    arn = execution_arn()
    # 400 events of 8,000 non-ASCII characters: ~19 MB once Lambda escapes them as \\uXXXX.
    events = _events(1, 400, "é" * 8000)
    stub.add_response("get_execution_history", {"events": events, "nextToken": "sfn-2"},
                      {"executionArn": arn, "reverseOrder": False, "maxResults": 400})
    first = client.http.get(f"/executions/{quote(arn, safe='')}/history?limit=400")
    assert first.status_code == 200
    assert len(json.dumps(first.body.decode())) < 6 * 1024 * 1024
    kept = first.json_body["events"]
    assert 0 < len(kept) < 400
    assert [event["id"] for event in kept] == list(range(1, len(kept) + 1))
    token = first.json_body["nextToken"]
    assert token.startswith("gw1.")

    # The continuation asks Step Functions for the same page and skips what was already sent.
    stub.add_response("get_execution_history", {"events": events, "nextToken": "sfn-2"},
                      {"executionArn": arn, "reverseOrder": False, "maxResults": 400})
    second = client.http.get(f"/executions/{quote(arn, safe='')}/history?limit=400&nextToken={quote(token)}")
    assert second.status_code == 200
    assert second.json_body["events"][0]["id"] == len(kept) + 1


def test_a_continued_page_ends_with_step_functions_own_token(client, stub):
    arn = execution_arn()
    events = _events(1, 10, "x")
    token = "gw1." + __import__("base64").urlsafe_b64encode(b'{"t":"sfn-1","a":7}').decode()
    stub.add_response("get_execution_history", {"events": events, "nextToken": "sfn-2"},
                      {"executionArn": arn, "reverseOrder": False, "nextToken": "sfn-1"})
    response = client.http.get(f"/executions/{quote(arn, safe='')}/history?nextToken={quote(token)}")
    assert [event["id"] for event in response.json_body["events"]] == [8, 9, 10]
    assert response.json_body["nextToken"] == "sfn-2"


@pytest.mark.parametrize("token", ["gw1.!!!", "gw1.e30=", "gw1." + "eyJ0IjoxLCJhIjoiMiJ9"])
def test_a_forged_gateway_history_token_returns_400_without_a_call(client, stub, token):
    response = client.http.get(f"/executions/{quote(execution_arn(), safe='')}/history?nextToken={quote(token)}")
    assert_error(response, 400, "ValidationError")


# --- 9. Location behind a stage -------------------------------------------------------------


class _LambdaContext:
    aws_request_id = "req-1"
    function_name = "sfn-gateway"
    memory_limit_in_mb = 256

    def get_remaining_time_in_millis(self):
        return 29_000


def _api_gateway_event(path: str, body: dict, stage_prefix: str) -> dict:
    return {
        "resource": "/executions", "path": path, "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": "/executions", "httpMethod": "POST", "path": stage_prefix + path,
                           "stage": "api", "requestId": "req-1", "identity": {"sourceIp": "203.0.113.9"}},
        "body": json.dumps(body), "isBase64Encoded": False,
    }


@pytest.mark.parametrize("prefix", ["/api", "/v1/orders-api", ""])
def test_location_carries_the_stage_or_base_path_the_request_came_through(stub, monkeypatch, prefix):
    monkeypatch.setenv("STATE_MACHINES", json.dumps({"orders": {"arn": ORDERS_ARN}}))
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED})
    answer = app(_api_gateway_event("/executions", {"stateMachine": "orders", "name": "n"}, prefix), _LambdaContext())
    assert answer["statusCode"] == 201
    assert answer["headers"]["Location"] == prefix + "/executions/" + quote(execution_arn(name="n"), safe="")


# --- 10. Unknown query parameters on every route --------------------------------------------


@pytest.mark.parametrize(
    "path, body",
    [
        ("/sync-executions?wait=3", {"stateMachine": "quick"}),
        (f"/executions/{execution_arn()}/stop?foo=1", {}),
        (f"/executions/{execution_arn()}/redrive?foo=1", {}),
        ("/tasks/heartbeat?foo=1", {"taskToken": "t"}),
        ("/tasks/success?foo=1", {"taskToken": "t"}),
        ("/tasks/failure?foo=1", {"taskToken": "t"}),
    ],
)
def test_unknown_query_parameters_are_refused_on_post_routes_without_a_call(make_client, stub, path, body):
    with make_client(TASK_ROUTES="on") as client:
        response = post_json(client, path, body)
    assert_error(response, 400, "ValidationError")
    assert "Unknown query field" in response.json_body["Message"]


# --- 12. Versions and aliases ---------------------------------------------------------------

RELEASES = {
    "orders": {"arn": ORDERS_ARN, "type": "STANDARD"},
    "orders-live": {"arn": LIVE_ARN, "type": "STANDARD"},
    "orders-v3": {"arn": V3_ARN, "type": "STANDARD"},
    "quick": {"arn": QUICK_ARN, "type": "EXPRESS"},
}


@pytest.mark.parametrize("name, arn", [("orders-live", LIVE_ARN), ("orders-v3", V3_ARN), (LIVE_ARN, LIVE_ARN)])
def test_an_alias_or_version_starts_through_its_qualified_arn(make_client, stub, name, arn):
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED},
                      {"stateMachineArn": arn, "name": "n", "input": "{}"})
    with make_client(RELEASES) as client:
        response = post_json(client, "/executions", {"stateMachine": name, "name": "n"})
    assert response.status_code == 201
    assert response.json_body["stateMachine"] == ("orders-live" if name == LIVE_ARN else name)


def test_executions_of_an_alias_resolve_to_its_state_machine(make_client, stub):
    arn = execution_arn(name="n")
    stub.add_response("describe_execution", {
        "executionArn": arn, "stateMachineArn": ORDERS_ARN, "stateMachineAliasArn": LIVE_ARN,
        "status": "RUNNING", "startDate": STARTED, "input": "{}",
    }, {"executionArn": arn})
    with make_client(RELEASES) as client:
        response = client.http.get(f"/executions/{quote(arn, safe='')}")
    assert response.status_code == 200
    assert response.json_body["stateMachineAliasArn"] == LIVE_ARN


def test_executions_when_only_an_alias_is_listed_resolve_to_that_alias(make_client, stub):
    arn = execution_arn(name="n")
    stub.add_response("list_executions", {"executions": []}, {"stateMachineArn": LIVE_ARN})
    stub.add_response("describe_execution", {
        "executionArn": arn, "stateMachineArn": ORDERS_ARN, "status": "RUNNING", "startDate": STARTED, "input": "{}",
    }, {"executionArn": arn})
    with make_client({"orders-live": {"arn": LIVE_ARN}}) as client:
        assert client.http.get("/executions?stateMachine=orders-live").status_code == 200
        response = client.http.get(f"/executions/{quote(arn, safe='')}")
    assert response.json_body["stateMachine"] == "orders-live"


def test_trace_header_of_the_request_is_passed_to_step_functions(client, stub, monkeypatch):
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED},
                      {"stateMachineArn": ORDERS_ARN, "name": "n", "input": "{}",
                       "traceHeader": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"})
    assert post_json(client, "/executions", {"stateMachine": "orders", "name": "n"}).status_code == 201


def test_an_oversized_trace_header_is_dropped_not_refused(client, stub):
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED},
                      {"stateMachineArn": ORDERS_ARN, "name": "n", "input": ANY})
    response = post_json(client, "/executions", {"stateMachine": "orders", "name": "n"}, {"X-Amzn-Trace-Id": "R" * 300})
    assert response.status_code == 201


# --- 2. One time budget per request ----------------------------------------------------------


class _AlmostSpentContext(_LambdaContext):
    def get_remaining_time_in_millis(self):
        return 4_600


class _SlowStart:
    """The stubbed client, with a StartExecution that takes 300 ms."""

    def __init__(self, client):
        self._client = client

    def start_execution(self, **params):
        time.sleep(0.3)
        return self._client.start_execution(**params)


def test_a_start_that_spends_the_budget_answers_202_with_its_location_instead_of_losing_the_arn(stub, monkeypatch):
    monkeypatch.setenv("STATE_MACHINES", json.dumps({"orders": {"arn": ORDERS_ARN}}))
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED})
    monkeypatch.setattr(factory, "get_sfn_client", lambda read_timeout=None: _SlowStart(stub.client))
    event = _api_gateway_event("/executions", {"stateMachine": "orders", "name": "n"}, "/api")
    event["queryStringParameters"] = {"wait": "25"}
    event["multiValueQueryStringParameters"] = {"wait": ["25"]}
    answer = app(event, _AlmostSpentContext())
    # 4.6 s left - 1.5 s margin = 3.1 s: enough to start (2 s connect + 1 s read); after a 300 ms
    # start, not enough to describe too.
    assert answer["statusCode"] == 202
    assert answer["headers"]["Location"] == "/api/executions/" + quote(execution_arn(name="n"), safe="")
    assert json.loads(answer["body"])["executionArn"] == execution_arn(name="n")


def test_a_request_without_time_for_one_call_changes_nothing_and_answers_504(stub, monkeypatch):
    monkeypatch.setenv("STATE_MACHINES", json.dumps({"orders": {"arn": ORDERS_ARN}}))

    class Spent(_LambdaContext):
        def get_remaining_time_in_millis(self):
            return 3_000

    answer = app(_api_gateway_event("/executions", {"stateMachine": "orders", "name": "n"}, "/api"), Spent())
    assert answer["statusCode"] == 504
    assert json.loads(answer["body"])["Code"] == "BackendTimeout"


# --- 20. Metrics in CloudWatch's embedded metric format --------------------------------------

# From the EMF specification: units CloudWatch accepts, and the structural rules below.
EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
             "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
             "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
             "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def _assert_embedded_metric_format(line: dict) -> None:
    metadata = line["_aws"]
    assert isinstance(metadata["Timestamp"], int) and metadata["Timestamp"] > 1_600_000_000_000
    for directive in metadata["CloudWatchMetrics"]:
        assert 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            assert all(isinstance(line[name], str) and line[name] for name in dimension_set)
        for metric in directive["Metrics"]:
            assert isinstance(line[metric["Name"]], (int, float)) and metric["Unit"] in EMF_UNITS


def _logged_lines(caplog) -> list:
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == "sfn_gateway.access"]


def test_each_access_line_is_an_embedded_metric_document_by_route_machine_and_status_class(client, stub, caplog):
    stub.add_response("start_execution", {"executionArn": execution_arn(name="n"), "startDate": STARTED})
    with caplog.at_level("INFO", logger="sfn_gateway.access"):
        post_json(client, "/executions", {"stateMachine": "orders", "name": "n"})
        post_json(client, "/executions", {"stateMachine": "no-such-machine"})
    started, refused = _logged_lines(caplog)
    for line in (started, refused):
        _assert_embedded_metric_format(line)
        assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sfn-gateway"
    assert (started["Route"], started["StateMachine"], started["StatusClass"]) == ("POST /executions", "orders", "2xx")
    # A client's typo never becomes a dimension value.
    assert (refused["StateMachine"], refused["StatusClass"]) == ("none", "4xx")
    assert started["Requests"] == 1 and started["Latency"] == started["durationMs"]


def test_metrics_off_leaves_a_plain_access_line(make_client, stub, caplog):
    with make_client(METRICS="off") as client, caplog.at_level("INFO", logger="sfn_gateway.access"):
        client.http.get("/state-machines")
    [line] = _logged_lines(caplog)
    assert "_aws" not in line and line["status"] == 200


# --- 17. Messages say what to do ------------------------------------------------------------


def test_a_body_sent_without_the_json_content_type_is_told_to_send_json(client, stub):
    response = client.http.post("/executions", body='{"stateMachine": "orders"}', headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "UnsupportedMediaType")
    assert "Content-Type: application/json" in response.json_body["Message"]


def test_a_bad_paging_token_is_not_called_a_task_token(client, stub):
    stub.add_client_error("list_executions", "InvalidToken", "Invalid Token: 'Invalid token'", 400)
    response = client.http.get("/executions?stateMachine=orders&nextToken=bogus")
    assert_error(response, 400, "InvalidToken")
    assert "pass back the nextToken" in response.json_body["Message"]
    assert "task token" not in response.json_body["Message"]
