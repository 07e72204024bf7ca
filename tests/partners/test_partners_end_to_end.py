"""Partners end to end: `python -m local.run` with input schemas, USAGE_PLANS and a longer API_TIMEOUT_SECONDS."""
import collections
import json
import time

import pytest
import requests

from tests.test_end_to_end import Stack, signed


class _LoggedStack(Stack):
    """The end-to-end stack, keeping its recent output (the access log) for the tests to read."""

    def _drain(self):
        self.output = collections.deque(maxlen=200)
        for line in self.process.stdout:
            self.output.append(line)

    def access_lines(self):
        lines = []
        for line in list(getattr(self, "output", [])):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "route" in record:
                lines.append(record)
        return lines


PLANS = [{"name": "acme", "throttle": {"rateLimit": 0.2, "burstLimit": 2}}, {"name": "globex"}]


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("local-state")


@pytest.fixture(scope="module")
def partner_stack(state_dir):
    running = _LoggedStack({"USAGE_PLANS": json.dumps(PLANS), "API_TIMEOUT_SECONDS": "40",
                            "LOCAL_STATE_DIR": str(state_dir)})
    yield running
    running.stop()


def _keys(state_dir) -> dict:
    return json.loads((state_dir / "api-keys.json").read_text())


def test_make_run_creates_a_key_per_plan_and_says_where(partner_stack, state_dir):
    keys = _keys(state_dir)
    assert sorted(keys) == ["acme", "globex"]
    # The line comes after the banner, so the drained output may not have it yet.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "api-keys.json" not in "".join(partner_stack.output):
        time.sleep(0.1)
    assert f"the keys (one per plan, kept across restarts) are in {state_dir / 'api-keys.json'}" in "".join(
        partner_stack.output)


def test_without_a_key_routes_answer_403_forbidden_and_health_needs_none(partner_stack):
    response = signed("GET", f"{partner_stack.url}/state-machines")
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    response = signed("GET", f"{partner_stack.url}/state-machines", headers={"x-api-key": "wrong"})
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    assert requests.get(f"{partner_stack.url}/health", timeout=5).json() == {"status": "ok"}


def test_with_a_plans_key_requests_pass_and_the_access_log_names_the_plan(partner_stack, state_dir):
    response = signed("GET", f"{partner_stack.url}/state-machines", headers={"x-api-key": _keys(state_dir)["globex"]})
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(line.get("usagePlan") == "globex" for line in partner_stack.access_lines()):
            break
        time.sleep(0.1)
    [line] = [line for line in partner_stack.access_lines() if line.get("usagePlan") == "globex"]
    assert (line["route"], line["status"]) == ("/state-machines", 200)


def test_past_its_burst_a_plan_gets_429_too_many_requests(partner_stack, state_dir):
    key = _keys(state_dir)["acme"]
    statuses = [signed("GET", f"{partner_stack.url}/state-machines", headers={"x-api-key": key}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].json() == {"message": "Too Many Requests"}


def test_a_bad_input_is_refused_with_every_violation_before_it_starts(partner_stack, state_dir):
    key = _keys(state_dir)["globex"]
    response = signed("POST", f"{partner_stack.url}/executions?wait=1",
                      {"stateMachine": "slow", "input": {"seconds": "ten"}}, headers={"x-api-key": key})
    assert response.status_code == 400
    assert response.json() == {"Code": "InputSchemaViolation",
                               "Message": "The input does not match the input schema of 'slow' (1 violation).",
                               "Errors": [{"pointer": "/seconds", "message": "must be integer"}]}
    listed = signed("GET", f"{partner_stack.url}/executions?stateMachine=slow", headers={"x-api-key": key}).json()
    assert listed["executions"] == []
    described = signed("GET", f"{partner_stack.url}/state-machines/slow", headers={"x-api-key": key}).json()
    assert described["inputSchema"]["properties"]["seconds"] == {"type": "integer", "minimum": 0, "maximum": 86400}


def test_a_40_s_stage_accepts_waits_up_to_36_s(partner_stack, state_dir):
    key = _keys(state_dir)["globex"]
    refused = signed("POST", f"{partner_stack.url}/executions?wait=37", {"stateMachine": "hello"},
                     headers={"x-api-key": key})
    assert (refused.status_code, refused.json()["Message"]) == (400, "wait must be a whole number from 0 to 36, got '37'.")
    waited = signed("POST", f"{partner_stack.url}/executions?wait=36", {"stateMachine": "hello", "input": {"name": "Ada"}},
                    headers={"x-api-key": key})
    assert (waited.status_code, waited.json()["status"]) == (200, "SUCCEEDED")


def test_keys_stay_the_same_when_the_stack_restarts(partner_stack, state_dir):
    before = _keys(state_dir)
    again = _LoggedStack({"USAGE_PLANS": json.dumps(PLANS), "LOCAL_STATE_DIR": str(state_dir)})
    try:
        response = signed("GET", f"{again.url}/state-machines", headers={"x-api-key": before["globex"]})
        assert response.status_code == 200
    finally:
        again.stop()
    assert _keys(state_dir) == before
