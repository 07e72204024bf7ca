"""The Python client (client/src/sfn_gateway_client) against the local stack, in-process."""
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import yaml

import sfn_gateway_client as sgc
from sfn_gateway_client import Gateway, region_from_url
from sfn_gateway_client.errors import ERROR_CLASSES, error_from_response
from sfn_gateway_client.gateway import _retry_after
from tests.client.client_helpers import FaultyProxy, RecordingServer, start_stack_with_task_routes
from tests.test_end_to_end import ACCESS_KEY, REGION, SECRET_KEY

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def signing_env():
    """The stack's credentials in the standard chain's environment variables, as a user sets them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        patch.setenv("AWS_REGION", REGION)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        yield


@pytest.fixture(scope="module")
def stack(signing_env):
    running = start_stack_with_task_routes()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def gateway(stack):
    with Gateway(stack.url) as client:
        yield client


@pytest.fixture
def proxy(stack):
    running = FaultyProxy(stack.url)
    yield running
    running.stop()


@pytest.fixture
def recorder():
    running = RecordingServer({"stateMachines": [], "executionArn": "arn:aws:states:us-east-1:1:execution:x:y"})
    yield running
    running.stop()


def task_token(gateway, arn, timeout=10):
    """The approval task's token, read from the execution's history."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in gateway.history(arn):
            if event["type"] == "TaskScheduled":
                return event["taskScheduledEventDetails"]["parameters"]["MessageBody"]["taskToken"]
        time.sleep(0.1)
    raise AssertionError("no TaskScheduled event")


def executions_named(stack, state_machine, name):
    """Executions with this name in the engine itself, bypassing the gateway."""
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{state_machine}"
    pages = stack.engine_client().get_paginator("list_executions").paginate(stateMachineArn=arn)
    return [execution for page in pages for execution in page["executions"] if execution["name"] == name]


# --- every route --------------------------------------------------------------------------------


def test_health_answers_ok_without_signing(gateway):
    assert gateway.health() == {"status": "ok"}


def test_state_machines_lists_the_stage_allow_list(gateway):
    machines = {machine["name"]: machine["type"] for machine in gateway.state_machines()}
    assert machines == {"hello": "STANDARD", "slow": "STANDARD", "approval": "STANDARD", "deadline": "STANDARD", "echo-express": "EXPRESS"}


def test_describe_state_machine_returns_its_parsed_definition(gateway):
    described = gateway.describe_state_machine("hello")
    assert described["name"] == "hello"
    assert described["definition"]["StartAt"] == "ShouldFail"


def test_start_returns_the_started_execution_and_describe_reads_it_back(gateway):
    started = gateway.start("hello", {"name": "Ada"}, name=f"lib-{uuid.uuid4()}")
    assert started["stateMachine"] == "hello"
    assert started["executionArn"].endswith(":" + started["name"])
    ended = gateway.wait(started["executionArn"], timeout=10)
    assert ended["status"] == "SUCCEEDED"
    assert gateway.describe(started["executionArn"])["output"] == {"greeting": "Hello, Ada!"}


def test_start_with_wait_returns_the_finished_execution_with_its_output(gateway):
    described = gateway.start("hello", {"name": "Lin"}, wait=10)
    assert (described["status"], described["output"]) == ("SUCCEEDED", {"greeting": "Hello, Lin!"})


def test_start_with_a_short_wait_returns_the_execution_still_running(gateway):
    described = gateway.start("slow", {"seconds": 3}, wait=1)
    assert described["status"] == "RUNNING"
    assert gateway.wait(described["executionArn"], timeout=10)["status"] == "SUCCEEDED"


def test_run_returns_the_express_workflows_result(gateway):
    result = gateway.run("echo-express", {"order": 7})
    assert result["status"] == "SUCCEEDED"
    assert result["output"]["echo"]["input"] == {"order": 7}


def test_describe_with_wait_is_held_until_the_execution_ends(gateway):
    started = gateway.start("slow", {"seconds": 1})
    assert gateway.describe(started["executionArn"], wait=10)["status"] == "SUCCEEDED"


def test_wait_reports_progress_and_returns_running_at_its_deadline_then_the_end(gateway):
    started = gateway.start("slow", {"seconds": 3})
    seen = []
    early = gateway.wait(started["executionArn"], timeout=0.5, on_progress=lambda d, elapsed: seen.append(d["status"]))
    assert early["status"] == "RUNNING"
    assert seen == ["RUNNING"]
    ended = gateway.wait(started["executionArn"], on_progress=lambda d, elapsed: seen.append(d["status"]))
    assert ended["status"] == "SUCCEEDED"
    assert seen[-1] == "SUCCEEDED"


def test_executions_follows_next_token_over_several_pages(gateway, stack, proxy):
    arns = {gateway.start("hello", {"name": f"page-{n}"})["executionArn"] for n in range(3)}
    one_page = [execution["executionArn"] for execution in gateway.executions("hello", page_size=1000)]
    paged = [execution["executionArn"] for execution in Gateway(proxy.url).executions("hello", page_size=1)]
    assert arns <= set(paged)
    assert sorted(paged) == sorted(one_page)
    assert proxy.forwarded("GET", "/executions?") == len(paged)


def test_executions_filters_by_status(gateway):
    failed = gateway.start("hello", {"name": "F", "fail": True}, wait=10)
    listed = list(gateway.executions("hello", status="FAILED"))
    assert failed["executionArn"] in [execution["executionArn"] for execution in listed]
    assert {execution["status"] for execution in listed} == {"FAILED"}


def test_history_follows_next_token_and_reverse_gives_newest_first(gateway, proxy):
    arn = gateway.start("hello", {"name": "Hist"}, wait=10)["executionArn"]
    events = list(gateway.history(arn))
    paged = list(Gateway(proxy.url).history(arn, page_size=2))
    assert paged == events
    assert proxy.forwarded("GET", "/executions/") == (len(events) + 1) // 2
    assert [event["id"] for event in gateway.history(arn, reverse=True)] == [e["id"] for e in reversed(events)]
    assert events[-1]["type"] == "ExecutionSucceeded"


def test_follow_yields_events_as_they_happen_until_the_execution_ends(gateway):
    arn = gateway.start("slow", {"seconds": 3})["executionArn"]
    arrivals = [(event, time.time()) for event in gateway.follow(arn, interval=0.2)]
    events = [event for event, _ in arrivals]
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionSucceeded"
    # The Wait state's entry was yielded before the Wait state ended: live, not all at the end.
    entered = next(arrived for event, arrived in arrivals if event["type"] == "WaitStateEntered")
    exited = next(event for event in events if event["type"] == "WaitStateExited")
    assert entered < datetime.fromisoformat(exited["timestamp"]).timestamp()


def test_stop_aborts_the_execution_with_its_error_and_cause(gateway):
    arn = gateway.start("slow", {"seconds": 30})["executionArn"]
    assert "stopDate" in gateway.stop(arn, error="Cancelled", cause="by the test")
    described = gateway.describe(arn)
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Cancelled", "by the test")


def test_redrive_on_the_local_engine_raises_not_implemented_by_backend(gateway):
    arn = gateway.start("hello", {"fail": True, "name": "R"}, wait=10)["executionArn"]
    with pytest.raises(sgc.NotImplementedByBackend) as raised:
        gateway.redrive(arn)
    assert (raised.value.status, raised.value.code) == (501, "NotImplementedByBackend")


def test_approval_flow_heartbeat_then_success_ends_with_the_answer_as_output(gateway):
    arn = gateway.start("approval", {"order": 1})["executionArn"]
    token = task_token(gateway, arn)
    assert gateway.send_task_heartbeat(token) == {}
    assert gateway.send_task_success(token, {"approved": True}) == {}
    ended = gateway.wait(arn, timeout=10)
    assert (ended["status"], ended["output"]) == ("SUCCEEDED", {"approved": True})


def test_approval_flow_failure_ends_the_execution_failed_with_error_and_cause(gateway):
    arn = gateway.start("approval", {"order": 2})["executionArn"]
    assert gateway.send_task_failure(task_token(gateway, arn), error="Rejected", cause="too expensive") == {}
    ended = gateway.wait(arn, timeout=10)
    assert (ended["status"], ended["error"], ended["cause"]) == ("FAILED", "Rejected", "too expensive")


# --- errors ------------------------------------------------------------------------------------


def test_unknown_state_machine_raises_state_machine_not_found_with_status_code_and_message(gateway):
    with pytest.raises(sgc.StateMachineNotFound) as raised:
        gateway.start("payroll", {})
    assert (raised.value.status, raised.value.code) == (404, "StateMachineNotFound")
    assert "payroll" in raised.value.message


def test_missing_execution_raises_execution_not_found(gateway):
    with pytest.raises(sgc.ExecutionNotFound) as raised:
        gateway.describe("arn:aws:states:us-east-1:123456789012:execution:hello:never-started")
    assert raised.value.status == 404


def test_listing_an_express_machine_raises_state_machine_type_not_supported(gateway):
    with pytest.raises(sgc.StateMachineTypeNotSupported) as raised:
        list(gateway.executions("echo-express"))
    assert raised.value.status == 400


def test_a_wrong_secret_raises_access_denied_from_the_signature_check(stack, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(sgc.AccessDenied) as raised:
        Gateway(stack.url).state_machines()
    assert (raised.value.status, raised.value.code) == (403, None)
    assert "signature" in raised.value.message.lower()


def test_an_unknown_error_code_keeps_its_code_in_a_generic_api_error():
    error = error_from_response(409, {"Code": "ExecutionQuotaExhausted", "Message": "later"}, 3.0)
    assert isinstance(error, sgc.UnknownApiError) and isinstance(error, sgc.ApiError)
    assert (error.status, error.code, error.message, error.retry_after) == (409, "ExecutionQuotaExhausted", "later", 3.0)


def _openapi_error_codes():
    """Every `Code` enum in openapi.yaml: the error responses list their codes that way."""
    codes = set()

    def walk(node):
        if isinstance(node, dict):
            code = node.get("properties", {}).get("Code") if isinstance(node.get("properties"), dict) else None
            if isinstance(code, dict) and "enum" in code:
                codes.update(code["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((PROJECT_DIR / "openapi.yaml").read_text()))
    return codes


def test_error_classes_are_exactly_the_codes_openapi_yaml_lists():
    codes = _openapi_error_codes()
    assert len(codes) > 15, "openapi.yaml no longer lists error codes as `Code: {enum: [...]}`"
    assert set(ERROR_CLASSES) == codes
    assert all(cls.__name__ == code and issubclass(cls, sgc.ApiError) for code, cls in ERROR_CLASSES.items())


# --- retries and idempotency --------------------------------------------------------------------


def test_start_retries_429_and_503_honouring_retry_after_and_starts_once(stack, proxy):
    proxy.faults["POST"] += [(429, "1"), (503, "0")]
    began = time.monotonic()
    started = Gateway(proxy.url).start("hello", {"name": "Retry"}, wait=10)
    assert time.monotonic() - began >= 1.0
    assert started["status"] == "SUCCEEDED"
    assert [status for method, _, status, _ in proxy.log if method == "POST"] == [429, 503, 200]
    assert len(executions_named(stack, "hello", started["name"])) == 1


def test_a_start_whose_answer_was_lost_is_retried_and_returns_the_same_running_execution(stack, proxy):
    proxy.faults["POST"].append(("lose_answer",))
    started = Gateway(proxy.url).start("slow", {"seconds": 2})
    assert [status for method, _, status, _ in proxy.log if method == "POST"] == [503, 201]
    assert [execution["executionArn"] for execution in executions_named(stack, "slow", started["name"])] == [
        started["executionArn"]]


def test_a_lost_start_of_an_execution_that_already_ended_returns_that_execution_not_a_409(stack, proxy):
    proxy.faults["POST"].append(("lose_answer",))
    gateway = Gateway(proxy.url)
    # hello ends within milliseconds, so the retry meets an ended execution (409 on the gateway).
    started = gateway.start("hello", {"name": "Lost"}, wait=10)
    assert [status for method, _, status, _ in proxy.log if method == "POST"] == [503, 409]
    assert (started["status"], started["output"]) == ("SUCCEEDED", {"greeting": "Hello, Lost!"})
    assert len(executions_named(stack, "hello", started["name"])) == 1


def test_a_reused_key_with_other_input_still_raises_execution_already_exists(gateway):
    key = f"reused-{uuid.uuid4()}"
    gateway.start("hello", {"name": "One"}, idempotency_key=key, wait=10)
    with pytest.raises(sgc.ExecutionAlreadyExists):
        gateway.start("hello", {"name": "Two"}, idempotency_key=key)


def test_reads_retry_503_and_give_up_with_throttled_after_max_attempts(proxy):
    proxy.faults["GET"] += [(503, "0")]
    assert len(Gateway(proxy.url).state_machines()) == 5
    proxy.faults["GET"] += [(429, "0"), (429, "0")]
    with pytest.raises(sgc.Throttled) as raised:
        Gateway(proxy.url, max_attempts=2).state_machines()
    assert (raised.value.status, raised.value.retry_after) == (429, 0.0)


def test_a_gateway_error_without_retry_after_is_not_retried_but_api_gateways_own_429_is(proxy):
    proxy.faults["GET"] += [(429, None, "ExecutionLimitExceeded")]
    with pytest.raises(sgc.ExecutionLimitExceeded) as raised:
        Gateway(proxy.url).state_machines()
    assert (raised.value.status, raised.value.retry_after) == (429, None)
    proxy.faults["GET"] += [(503, None, "KmsKeyUnavailable")]
    with pytest.raises(sgc.KmsKeyUnavailable):
        Gateway(proxy.url).state_machines()
    proxy.faults["GET"] += [(429, None, None)]
    assert len(Gateway(proxy.url).state_machines()) == 5
    assert [status for _, _, status, _ in proxy.log] == [429, 503, 429, 200]


def test_retry_after_accepts_seconds_and_http_dates():
    assert _retry_after("7") == 7.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after("soon") is None


# --- Location, stage prefix, authentication ---------------------------------------------------------


def test_waiting_follows_location_under_a_stage_prefix_until_the_end(stack):
    staged = FaultyProxy(stack.url, stage="/api", max_wait=1)
    try:
        described = Gateway(staged.url + "/api").start("slow", {"seconds": 2}, wait=10)
    finally:
        staged.stop()
    assert described["status"] == "SUCCEEDED"
    polls = [path for method, path, status, _ in staged.log if method == "GET"]
    assert [status for method, _, status, _ in staged.log if method == "POST"] == [202]
    assert polls and all(path.startswith("/api/executions/arn:aws:states:") for path in polls)
    assert [status for method, _, status, _ in staged.log][-1] == 200


def test_a_token_is_sent_as_a_bearer_authorization_instead_of_sigv4(recorder):
    Gateway(recorder.url, token="eyJ.test.token").state_machines()
    headers = recorder.requests[-1]["headers"]
    assert headers["Authorization"] == "Bearer eyJ.test.token"
    assert "X-Amz-Date" not in headers


def test_sigv4_signs_for_execute_api_in_the_region_with_the_chains_key(recorder):
    Gateway(recorder.url).state_machines()
    authorization = recorder.requests[-1]["headers"]["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert f"/{REGION}/execute-api/aws4_request" in authorization


def test_every_start_sends_a_fresh_idempotency_key_unless_one_is_given(recorder):
    gateway = Gateway(recorder.url, token="t")
    gateway.start("hello")
    gateway.start("hello")
    gateway.start("hello", idempotency_key="order-42")
    keys = [request["headers"]["Idempotency-Key"] for request in recorder.requests]
    assert len({str(uuid.UUID(key)) for key in keys[:2]}) == 2
    assert keys[2] == "order-42"


def test_region_comes_from_an_execute_api_url():
    assert region_from_url("https://abc123.execute-api.eu-west-1.amazonaws.com/api") == "eu-west-1"
    assert region_from_url("https://abc123.execute-api.cn-north-1.amazonaws.com.cn/api") == "cn-north-1"
    assert region_from_url("https://api.example.com/api") is None


def test_missing_region_or_credentials_raise_configuration_errors_naming_the_fix(recorder, monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(sgc.ConfigurationError, match="--region"):
        Gateway(recorder.url).state_machines()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(sgc.ConfigurationError, match="No AWS credentials"):
        Gateway(recorder.url, region="us-east-1").state_machines()
    assert recorder.requests == []


def test_a_url_that_is_not_the_gateway_raises_an_api_error_saying_so():
    page = RecordingServer("<html>a web page</html>")
    try:
        with pytest.raises(sgc.ApiError, match="not the gateway's JSON; check the URL"):
            Gateway(page.url, token="t").state_machines()
    finally:
        page.stop()


def test_an_unreachable_gateway_raises_gateway_unreachable(recorder):
    url = recorder.url
    recorder.stop()
    with pytest.raises(sgc.GatewayUnreachable):
        Gateway(url, token="t", max_attempts=1).state_machines()


def test_the_gateways_access_denied_and_api_gateways_refusal_raise_the_same_class():
    from sfn_gateway_client.errors import error_from_response

    ruled = error_from_response(403, {"Code": "AccessDenied", "Message": "jwt caller 'bob' may not start ..."})
    refused = error_from_response(401, {"message": "Unauthorized"})
    assert type(ruled) is type(refused) is sgc.AccessDenied
    assert (ruled.status, ruled.code, refused.code) == (403, "AccessDenied", None)
