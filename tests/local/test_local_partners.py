"""The local server answers like API Gateway: API keys and usage-plan throttles, the integration timeout."""
import json
import stat
import threading
import time

import pytest
import requests
from chalice import Chalice
from chalice.config import Config

from chalicelib.partners.plans import parse_usage_plans
from local import partners
from local.server import make_server

PLANS = parse_usage_plans(json.dumps([
    {"name": "acme", "throttle": {"rateLimit": 0.5, "burstLimit": 2}},
    {"name": "globex", "quota": {"limit": 1, "period": "DAY"}},
    {"name": "initech"},
]))


def _app() -> Chalice:
    app = Chalice(app_name="partners-test")

    @app.route("/health")
    def health():
        return {"status": "ok"}

    @app.route("/work", api_key_required=True)
    def work():
        return {"identity": app.current_request.context["identity"]}

    @app.route("/sleep/{seconds}", api_key_required=False)
    def sleep(seconds):
        time.sleep(float(seconds))
        return {"slept": seconds}

    return app


@pytest.fixture
def serve(monkeypatch):
    """Start a local server for a tiny app with the given gate and API_TIMEOUT_SECONDS; yields its URL."""
    servers = []

    def start(gate=None, api_timeout="29"):
        monkeypatch.setenv("API_TIMEOUT_SECONDS", api_timeout)
        app = _app()
        config = Config(chalice_stage="dev", user_provided_params={"chalice_app": app, "app_name": "partners-test"},
                        config_from_disk={"version": "2.0", "app_name": "partners-test", "stages": {"dev": {}}})
        server = make_server(app, config, partner_gate=gate)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def keys(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / ".local"))
    return partners.ensure_api_keys(PLANS)


def test_keys_are_created_once_per_plan_privately_and_kept_across_restarts(keys, tmp_path):
    path = tmp_path / ".local" / "api-keys.json"
    assert json.loads(path.read_text()) == keys
    assert set(keys) == {"acme", "globex", "initech"}
    assert all(len(key) == 40 and key.isalnum() for key in keys.values())
    assert len(set(keys.values())) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # When the stack starts again, with one plan fewer and one more
    again = partners.ensure_api_keys(parse_usage_plans('[{"name": "acme"}, {"name": "umbrella"}]'))
    assert again["acme"] == keys["acme"]
    assert again["umbrella"] not in keys.values()
    # Then a plan put back gets its old key
    assert partners.ensure_api_keys(PLANS)["globex"] == keys["globex"]


def test_a_key_route_without_a_key_or_with_an_unknown_one_is_403_forbidden(serve, keys):
    url = serve(partners.PartnerGate(PLANS, keys))
    for headers in ({}, {"x-api-key": "not-a-key"}, {"x-api-key": ""}):
        response = requests.get(f"{url}/work", headers=headers, timeout=5)
        assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
        assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"


def test_a_known_key_passes_and_the_function_sees_its_key_id(serve, keys):
    url = serve(partners.PartnerGate(PLANS, keys))
    response = requests.get(f"{url}/work", headers={"X-Api-Key": keys["initech"]}, timeout=5)
    assert response.status_code == 200
    identity = response.json()["identity"]
    assert (identity["apiKey"], identity["apiKeyId"]) == (keys["initech"], "local-initech")


def test_routes_without_a_key_requirement_need_none(serve, keys):
    url = serve(partners.PartnerGate(PLANS, keys))
    assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok"}


def test_past_the_burst_a_plan_gets_429_too_many_requests_other_plans_do_not(serve, keys):
    url = serve(partners.PartnerGate(PLANS, keys))
    answers = [requests.get(f"{url}/work", headers={"x-api-key": keys["acme"]}, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == {"message": "Too Many Requests"}
    assert requests.get(f"{url}/work", headers={"x-api-key": keys["initech"]}, timeout=5).status_code == 200


def test_past_the_quota_a_plan_gets_429_limit_exceeded(serve, keys):
    url = serve(partners.PartnerGate(PLANS, keys))
    answers = [requests.get(f"{url}/work", headers={"x-api-key": keys["globex"]}, timeout=5) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[1].json() == {"message": "Limit Exceeded"}


def test_the_bucket_refills_at_the_plans_rate():
    now = [0.0]
    gate = partners.PartnerGate(PLANS[:1], {"acme": "k"}, clock=lambda: now[0])
    gate.admit({"x-api-key": "k"}, "r")
    gate.admit({"x-api-key": "k"}, "r")
    with pytest.raises(partners.TooManyRequests):
        gate.admit({"x-api-key": "k"}, "r")
    now[0] = 2.0  # 0.5 requests per second: one more after 2 s
    assert gate.admit({"x-api-key": "k"}, "r") == ("k", "acme")


def test_a_handler_running_past_api_timeout_seconds_is_answered_504(serve):
    url = serve(api_timeout="1")
    began = time.monotonic()
    response = requests.get(f"{url}/sleep/3", timeout=10)
    assert (response.status_code, response.json()) == (504, {"message": "Endpoint request timed out"})
    assert time.monotonic() - began < 2.5
    assert requests.get(f"{url}/sleep/0.1", timeout=5).json() == {"slept": "0.1"}
