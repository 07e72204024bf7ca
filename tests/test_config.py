"""Configuration: parsing, validation with clear messages, and the client factory built from it."""
import json

import pytest

from chalicelib import factory
from chalicelib.config import config_from_environ, get_config
from chalicelib.errors import GatewayMisconfigured
from tests.conftest import ORDERS_ARN, TEST_STATE_MACHINES


def environ(**overrides):
    base = {"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES)}
    base.update(overrides)
    return base


def test_valid_configuration_builds_the_registry_with_defaults():
    config = config_from_environ(environ())
    assert [machine.name for machine in config.registry] == ["orders", "quick"]
    assert config.registry.resolve("orders").arn == ORDERS_ARN
    assert config.registry.resolve(ORDERS_ARN).name == "orders"
    assert config.endpoint_url is None
    assert (config.connect_timeout, config.read_timeout, config.max_attempts) == (2.0, 6.0, 3)
    assert config.region == "us-east-1"


def test_type_defaults_to_standard_and_caller_context_to_off():
    config = config_from_environ(environ(STATE_MACHINES=json.dumps({"a": {"arn": ORDERS_ARN}})))
    machine = config.registry.resolve("a")
    assert (machine.type, machine.pass_caller_context) == ("STANDARD", False)


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (None, "STATE_MACHINES is not set"),
        ("{not json", "not valid JSON"),
        ("[]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        (json.dumps({"a": "arn"}), 'must be an object'),
        (json.dumps({"a": {"arn": "arn:aws:states:us-east-1:1:stateMachine:x"}}), "must be a state machine ARN"),
        (json.dumps({"a": {"arn": ORDERS_ARN, "type": "FAST"}}), "STANDARD or EXPRESS"),
        (json.dumps({"a": {"arn": ORDERS_ARN, "colour": "red"}}), "unknown keys"),
        (json.dumps({"a": {"arn": ORDERS_ARN, "passCallerContext": "yes"}}), "true or false"),
        (json.dumps({"a": {"arn": ORDERS_ARN}, "b": {"arn": ORDERS_ARN}}), "same ARN"),
    ],
)
def test_bad_state_machines_fail_fast_with_a_clear_message(raw, fragment):
    env = environ()
    env.pop("STATE_MACHINES")
    if raw is not None:
        env["STATE_MACHINES"] = raw
    with pytest.raises(GatewayMisconfigured) as raised:
        config_from_environ(env)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"SFN_READ_TIMEOUT": "soon"}, "must be a number"),
        ({"SFN_CONNECT_TIMEOUT": "-1"}, "must be positive"),
        ({"SFN_READ_TIMEOUT": "10", "SFN_MAX_ATTEMPTS": "3"}, "under API Gateway's 29 s"),
    ],
)
def test_timeouts_are_validated_against_api_gateway_limit(overrides, fragment):
    with pytest.raises(GatewayMisconfigured) as raised:
        config_from_environ(environ(**overrides))
    assert fragment in str(raised.value)


def test_misconfigured_stage_answers_500_with_a_clear_code(make_client):
    with make_client(state_machines={"a": {"arn": "nope"}}) as client:
        response = client.http.get("/state-machines")
    assert response.status_code == 500
    assert response.json_body["Code"] == "GatewayMisconfigured"
    assert "must be a state machine ARN" in response.json_body["Message"]


def test_config_is_read_once_and_cached(monkeypatch):
    monkeypatch.setenv("STATE_MACHINES", json.dumps(TEST_STATE_MACHINES))
    first = get_config()
    monkeypatch.setenv("STATE_MACHINES", "{broken")
    assert get_config() is first


def test_client_factory_applies_timeouts_retries_and_custom_endpoint(monkeypatch, aws_credentials):
    monkeypatch.setenv("STATE_MACHINES", json.dumps(TEST_STATE_MACHINES))
    monkeypatch.setenv("SFN_ENDPOINT_URL", "http://127.0.0.1:8083")
    client = factory.get_sfn_client()
    assert client is factory.get_sfn_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:8083"
    assert client.meta.config.connect_timeout == 2.0
    assert client.meta.config.read_timeout == 6.0
    # The gateway retries itself, inside the request's time budget (chalicelib/stepfunctions/retry.py).
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert client.meta.config.inject_host_prefix is False


def test_client_factory_keeps_host_prefix_for_aws_endpoints(monkeypatch, aws_credentials):
    monkeypatch.setenv("STATE_MACHINES", json.dumps(TEST_STATE_MACHINES))
    monkeypatch.delenv("SFN_ENDPOINT_URL", raising=False)
    client = factory.get_sfn_client()
    assert client.meta.endpoint_url == "https://states.us-east-1.amazonaws.com"
    assert client.meta.config.inject_host_prefix is True


def test_task_routes_metrics_and_sync_timeout_have_safe_defaults():
    config = config_from_environ(environ())
    assert (config.task_routes, config.metrics_namespace, config.sync_read_timeout) == (False, "sfn-gateway", 25.0)


def test_task_routes_on_and_metrics_settings_are_read():
    config = config_from_environ(environ(TASK_ROUTES="ON", METRICS_NAMESPACE="team/sfn"))
    assert (config.task_routes, config.metrics_namespace) == (True, "team/sfn")
    assert config_from_environ(environ(METRICS="off")).metrics_namespace is None


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"arn": "arn:aws:states:us-east-1:123456789012:stateMachine:orders:live:extra"}, "optionally with a version"),
        ({"arn": "arn:aws:states:us-east-1:123456789012:stateMachine:orders", "kmsKeyArn": "alias/mine"},
         "kmsKeyArn must be a KMS key ARN"),
    ],
)
def test_bad_qualified_arns_and_kms_keys_name_the_fix(entry, fragment):
    with pytest.raises(GatewayMisconfigured) as raised:
        config_from_environ(environ(STATE_MACHINES=json.dumps({"orders": entry})))
    assert fragment in str(raised.value)


def test_versions_aliases_and_kms_keys_are_accepted():
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    machines = {"orders": {"arn": arn}, "orders-live": {"arn": arn + ":live", "kmsKeyArn": key},
                "orders-v3": {"arn": arn + ":3"}}
    registry = config_from_environ(environ(STATE_MACHINES=json.dumps(machines))).registry
    assert registry.resolve("orders-live").qualifier == "live"
    assert registry.resolve("orders-live").kms_key_arn == key
    assert registry.resolve("orders-v3").unqualified_arn == arn


@pytest.mark.parametrize(
    "overrides, fragment",
    [({"TASK_ROUTES": "maybe"}, "on or off"), ({"SFN_SYNC_READ_TIMEOUT": "28"}, "SFN_SYNC_READ_TIMEOUT must stay under"),
     ({"METRICS_NAMESPACE": "no spaces allowed"}, "METRICS_NAMESPACE must be")],
)
def test_bad_switches_and_sync_timeout_fail_fast(overrides, fragment):
    with pytest.raises(GatewayMisconfigured) as raised:
        config_from_environ(environ(**overrides))
    assert fragment in str(raised.value)


def test_clients_are_cached_per_read_timeout(monkeypatch, aws_credentials):
    monkeypatch.setenv("STATE_MACHINES", json.dumps(TEST_STATE_MACHINES))
    long_reads = factory.get_sfn_client(25.0)
    assert long_reads is factory.get_sfn_client(25.0) is not factory.get_sfn_client()
    assert long_reads.meta.config.read_timeout == 25.0
    assert long_reads.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
