"""Workflow interaction routes (sync runs, ?wait=, task tokens, redrive, caller context, CORS), stubbed."""
import datetime
import json
from urllib.parse import quote

import pytest

from tests.conftest import (
    ORDERS_ARN,
    QUICK_ARN,
    TEST_STATE_MACHINES,
    assert_error,
    execution_arn,
    post_json,
)

STARTED = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.timezone.utc)
STOPPED = STARTED + datetime.timedelta(seconds=1)
IDENTITY_CONTEXT = {"userArn": "arn:aws:iam::123456789012:user/ada", "accountId": "123456789012"}



def description(arn, status, output=None):
    described = {"executionArn": arn, "stateMachineArn": ORDERS_ARN, "name": "w", "status": status,
                 "startDate": STARTED, "input": "{}"}
    if output is not None:
        described.update(output=json.dumps(output), stopDate=STOPPED)
    return described


# --- synchronous Express runs -----------------------------------------------------------


def test_sync_execution_returns_the_result_of_an_express_run(client, stub):
    stub.add_response(
        "start_sync_execution",
        {"executionArn": "arn:aws:states:us-east-1:123456789012:express:quick:s1:abc", "startDate": STARTED,
         "stopDate": STOPPED, "status": "SUCCEEDED", "output": '{"echo": 1}'},
        {"stateMachineArn": QUICK_ARN, "name": "s1", "input": '{"n":1}'},
    )
    response = post_json(client, "/sync-executions", {"stateMachine": "quick", "name": "s1", "input": {"n": 1}})
    assert response.status_code == 200
    assert response.json_body == {
        "executionArn": "arn:aws:states:us-east-1:123456789012:express:quick:s1:abc", "stateMachine": "quick",
        "name": "s1", "status": "SUCCEEDED", "output": {"echo": 1}, "error": None, "cause": None,
        "startDate": "2026-11-25T12:00:00+00:00", "stopDate": "2026-11-25T12:00:01+00:00",
    }


def test_failed_sync_execution_is_still_200_with_its_error(client, stub):
    stub.add_response(
        "start_sync_execution",
        {"executionArn": "arn:aws:states:us-east-1:123456789012:express:quick:s2:x", "startDate": STARTED,
         "stopDate": STOPPED, "status": "FAILED", "error": "Boom", "cause": "it broke"},
    )
    response = post_json(client, "/sync-executions", {"stateMachine": "quick", "name": "s2"})
    assert response.status_code == 200
    assert (response.json_body["status"], response.json_body["error"], response.json_body["cause"]) == ("FAILED", "Boom", "it broke")
    assert response.json_body["output"] is None


def test_sync_execution_of_standard_machine_returns_400_before_any_call(client, stub):
    assert_error(post_json(client, "/sync-executions", {"stateMachine": "orders"}), 400, "StateMachineTypeNotSupported")


def test_sync_execution_with_unknown_machine_returns_404(client, stub):
    assert_error(post_json(client, "/sync-executions", {"stateMachine": "nope"}), 404, "StateMachineNotFound")


# --- ?wait= ------------------------------------------------------------------------------


def test_start_with_wait_returns_200_with_output_once_the_execution_ends(client, stub):
    arn = execution_arn(name="w")
    stub.add_response("start_execution", {"executionArn": arn, "startDate": STARTED})
    stub.add_response("describe_execution", description(arn, "RUNNING"), {"executionArn": arn})
    stub.add_response("describe_execution", description(arn, "SUCCEEDED", {"done": True}), {"executionArn": arn})
    response = post_json(client, "/executions?wait=5", {"stateMachine": "orders", "name": "w"})
    assert response.status_code == 200
    assert response.json_body["status"] == "SUCCEEDED"
    assert response.json_body["output"] == {"done": True}


def test_start_with_wait_0_returns_202_with_location_while_running(client, stub):
    arn = execution_arn(name="w")
    stub.add_response("start_execution", {"executionArn": arn, "startDate": STARTED})
    stub.add_response("describe_execution", description(arn, "RUNNING"), {"executionArn": arn})
    response = post_json(client, "/executions?wait=0", {"stateMachine": "orders", "name": "w"})
    assert response.status_code == 202
    assert response.headers["Location"] == "/executions/" + quote(arn, safe="")
    assert response.json_body["status"] == "RUNNING"


def test_describe_with_wait_returns_200_when_already_ended(client, stub):
    arn = execution_arn(name="w")
    stub.add_response("describe_execution", description(arn, "FAILED", {}), {"executionArn": arn})
    response = client.http.get(f"/executions/{quote(arn, safe='')}?wait=3")
    assert response.status_code == 200
    assert response.json_body["status"] == "FAILED"


@pytest.mark.parametrize("wait", ["26", "-1", "soon"])
def test_wait_outside_0_to_25_returns_400(client, stub, wait):
    assert_error(client.http.get(f"/executions/{execution_arn()}?wait={wait}"), 400, "ValidationError")


def test_wait_on_express_execution_returns_400(client, stub):
    assert_error(client.http.get(f"/executions/{execution_arn('quick')}?wait=1"), 400, "StateMachineTypeNotSupported")


# --- task tokens -----------------------------------------------------------------------------


@pytest.fixture
def task_client(make_client):
    """A test client on a stage that opted in to the task-token routes."""
    with make_client(TASK_ROUTES="on") as test_client:
        yield test_client


def test_task_success_sends_the_output(task_client, stub):
    stub.add_response("send_task_success", {}, {"taskToken": "tok", "output": '{"approved":true}'})
    response = post_json(task_client, "/tasks/success", {"taskToken": "tok", "output": {"approved": True}})
    assert response.status_code == 200
    assert response.json_body == {}


def test_task_failure_sends_error_and_cause(task_client, stub):
    stub.add_response("send_task_failure", {}, {"taskToken": "tok", "error": "Rejected", "cause": "no budget"})
    response = post_json(task_client, "/tasks/failure", {"taskToken": "tok", "error": "Rejected", "cause": "no budget"})
    assert response.status_code == 200
    assert response.json_body == {}


def test_task_heartbeat_is_forwarded(task_client, stub):
    stub.add_response("send_task_heartbeat", {}, {"taskToken": "tok"})
    response = post_json(task_client, "/tasks/heartbeat", {"taskToken": "tok"})
    assert response.status_code == 200
    assert response.json_body == {}


@pytest.mark.parametrize(
    "sfn_code, status, code",
    [("TaskDoesNotExist", 404, "TaskNotFound"), ("TaskTimedOut", 410, "TaskTimedOut"),
     ("InvalidToken", 400, "InvalidToken"), ("InvalidOutput", 400, "InvalidOutput")],
)
def test_task_success_maps_step_functions_errors(task_client, stub, sfn_code, status, code):
    stub.add_client_error("send_task_success", sfn_code, "said Step Functions", 400)
    assert_error(post_json(task_client, "/tasks/success", {"taskToken": "tok"}), status, code)


@pytest.mark.parametrize(
    "path, body",
    [("/tasks/success", {}), ("/tasks/success", {"taskToken": "t" * 2049}), ("/tasks/failure", {"taskToken": "t", "error": "e" * 257}),
     ("/tasks/heartbeat", {"taskToken": "t", "output": {}}), ("/tasks/heartbeat", {"taskToken": 5})],
)
def test_task_routes_reject_bad_bodies_without_a_call(task_client, stub, path, body):
    assert_error(post_json(task_client, path, body), 400, "ValidationError")


def test_task_success_output_over_256_kib_returns_413(task_client, stub):
    assert_error(post_json(task_client, "/tasks/success", {"taskToken": "t", "output": "x" * 262_144}), 413, "InputTooLarge")


@pytest.mark.parametrize("path", ["/tasks/success", "/tasks/failure", "/tasks/heartbeat"])
@pytest.mark.parametrize("setting", [{}, {"TASK_ROUTES": "off"}])
def test_task_routes_are_off_unless_the_stage_opts_in(make_client, stub, path, setting):
    with make_client(**setting) as client:
        response = post_json(client, path, {"taskToken": "t"})
    assert_error(response, 404, "TaskRoutesDisabled")
    assert "TASK_ROUTES=on" in response.json_body["Message"]


def test_a_token_answered_twice_says_the_task_is_closed(task_client, stub):
    stub.add_client_error("send_task_success", "TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'", 400)
    response = post_json(task_client, "/tasks/success", {"taskToken": "tok"})
    assert_error(response, 410, "TaskTimedOut")
    assert "already answered" in response.json_body["Message"]


def test_an_unknown_token_says_to_send_it_as_the_workflow_received_it(task_client, stub):
    stub.add_client_error("send_task_heartbeat", "InvalidToken", "Invalid Token: 'Invalid token'", 400)
    response = post_json(task_client, "/tasks/heartbeat", {"taskToken": "tok"})
    assert_error(response, 400, "InvalidToken")
    assert "$$.Task.Token" in response.json_body["Message"]


# --- redrive ---------------------------------------------------------------------------------


def test_redrive_passes_idempotency_key_as_client_token(client, stub):
    arn = execution_arn()
    stub.add_response("redrive_execution", {"redriveDate": STOPPED}, {"executionArn": arn, "clientToken": "retry-1"})
    response = client.http.post(f"/executions/{quote(arn, safe='')}/redrive", headers={"Idempotency-Key": "retry-1"})
    assert response.status_code == 200
    assert response.json_body == {"redriveDate": "2026-11-25T12:00:01+00:00"}


def test_redrive_of_non_redrivable_execution_returns_409(client, stub):
    stub.add_client_error("redrive_execution", "ExecutionNotRedrivable", "succeeded already", 400)
    assert_error(client.http.post(f"/executions/{execution_arn()}/redrive"), 409, "ExecutionNotRedrivable")


def test_redrive_on_engine_without_the_operation_returns_501(client, stub):
    stub.add_client_error("redrive_execution", "UnknownOperationException", "", 400)
    assert_error(client.http.post(f"/executions/{execution_arn()}/redrive"), 501, "NotImplementedByBackend")


def test_redrive_on_engine_answering_http_501_returns_501_not_502(client, stub):
    # LocalStack answers operations it lacks with HTTP 501 and a generic error code.
    stub.add_client_error(
        "redrive_execution", "InternalFailure",
        "API action 'RedriveExecution' for service 'stepfunctions' not yet implemented", 501,
    )
    response = client.http.post(f"/executions/{execution_arn()}/redrive")
    assert_error(response, 501, "NotImplementedByBackend")
    assert "InternalFailure" in response.json_body["Message"]


def test_unknown_error_code_with_http_500_still_returns_502(client, stub):
    stub.add_client_error("redrive_execution", "InternalFailure", "boom", 500)
    assert_error(client.http.post(f"/executions/{execution_arn()}/redrive"), 502, "BackendError")


def test_redrive_with_overlong_idempotency_key_returns_400(client, stub):
    response = client.http.post(f"/executions/{execution_arn()}/redrive", headers={"Idempotency-Key": "k" * 65})
    assert_error(response, 400, "ValidationError")


# --- caller context ----------------------------------------------------------------------------


@pytest.fixture
def caller_client(make_client):
    machines = {**TEST_STATE_MACHINES, "orders": {**TEST_STATE_MACHINES["orders"], "passCallerContext": True}}
    with make_client(state_machines=machines) as client:
        yield client


def test_caller_context_wraps_the_input_when_the_machine_asks_for_it(caller_client, stub):
    captured = {}
    stub.client.meta.events.register("provide-client-params.states.StartExecution", lambda params, **_: captured.update(params))
    stub.add_response("start_execution", {"executionArn": execution_arn(name="c1"), "startDate": STARTED})
    assert post_json(caller_client, "/executions", {"stateMachine": "orders", "name": "c1", "input": {"n": 1}}).status_code == 201
    sent = json.loads(captured["input"])
    assert sent["input"] == {"n": 1}
    assert set(sent["caller"]) == {"userArn", "accountId", "sourceIp", "requestId", "type", "id", "groups", "scopes"}
    assert sent["caller"]["sourceIp"] == "127.0.0.1"


def test_caller_context_retry_with_same_key_returns_the_running_execution(caller_client, stub):
    arn = execution_arn(name="k1")
    stub.add_client_error("start_execution", "ExecutionAlreadyExists", "exists", 400)
    stub.add_response("describe_execution", {**description(arn, "RUNNING"), "input": json.dumps({"input": {"n": 1}, "caller": {"userArn": None}})},
                      {"executionArn": arn})
    response = post_json(caller_client, "/executions", {"stateMachine": "orders", "input": {"n": 1}}, {"Idempotency-Key": "k1"})
    assert response.status_code == 201
    assert response.json_body["executionArn"] == arn


def test_caller_context_retry_with_other_input_returns_409(caller_client, stub):
    arn = execution_arn(name="k1")
    stub.add_client_error("start_execution", "ExecutionAlreadyExists", "exists", 400)
    stub.add_response("describe_execution", {**description(arn, "RUNNING"), "input": json.dumps({"input": {"n": 2}, "caller": {}})})
    response = post_json(caller_client, "/executions", {"stateMachine": "orders", "input": {"n": 1}}, {"Idempotency-Key": "k1"})
    assert_error(response, 409, "ExecutionAlreadyExists")


def test_without_caller_context_the_input_is_sent_unchanged(client, stub):
    stub.add_response("start_execution", {"executionArn": execution_arn(name="p"), "startDate": STARTED},
                      {"stateMachineArn": ORDERS_ARN, "name": "p", "input": '{"n":1}'})
    assert post_json(client, "/executions", {"stateMachine": "orders", "name": "p", "input": {"n": 1}}).status_code == 201


# --- CORS ------------------------------------------------------------------------------------


# Preflights are API Gateway MOCK integrations, checked in the packaged templates (test_package.py).


def test_cors_off_by_default_adds_no_headers(client, stub):
    listed = client.http.get("/state-machines")
    assert listed.status_code == 200
    assert "Access-Control-Allow-Origin" not in listed.headers


def test_cors_on_decorates_success_and_error_responses(make_client, import_app, stub):
    cors_app = import_app(CORS_ALLOW_ORIGIN="https://app.example.com")
    with make_client(application=cors_app) as client:
        ok = client.http.get("/state-machines")
        error = client.http.get("/state-machines/nope")
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert error.status_code == 404 and error.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert error.headers["Access-Control-Expose-Headers"] == "Location,Retry-After"
    assert all(entry.cors.allow_origin == "https://app.example.com"
               for methods in cors_app.routes.values() for entry in methods.values())


def test_cors_origin_with_a_path_is_refused_at_import_with_a_clear_message(import_app):
    with pytest.raises(ValueError, match="CORS_ALLOW_ORIGIN must be"):
        import_app(CORS_ALLOW_ORIGIN="https://app.example.com/path")
