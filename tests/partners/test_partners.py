"""Partners: USAGE_PLANS and API_TIMEOUT_SECONDS parsed, checked by make policy/package, wired into the templates."""
import json
import shutil
import zipfile
import subprocess
from pathlib import Path

import pytest

from chalicelib.stepfunctions.budget import Budget, max_wait_seconds, start
from chalicelib.config import config_from_environ
from chalicelib.errors import GatewayMisconfigured
from chalicelib.partners import plans
from chalicelib.partners.plans import UsagePlan, parse_usage_plans, plan_of
from tests.conftest import ORDERS_ARN, assert_error, post_json
from tests.tools.test_package import _offline_environment, _tool
from tools import package as packaging
from tools import policy
from tools.partners_wiring import wire_sam, wire_terraform
from tools.stage_checks import stage_problems

PROJECT_DIR = Path(__file__).resolve().parents[2]
PARTNER_STAGES = json.loads((PROJECT_DIR / "docs" / "partner-stages.json").read_text())
STATE_MACHINES = json.dumps({"orders": {"arn": ORDERS_ARN}})
ACME = {"name": "acme", "throttle": {"rateLimit": 10, "burstLimit": 20}, "quota": {"limit": 100000, "period": "MONTH"}}


# --- USAGE_PLANS -----------------------------------------------------------------------------


def test_usage_plans_parse_into_plans_with_throttle_and_quota():
    assert parse_usage_plans(json.dumps([ACME, {"name": "globex"}])) == (
        UsagePlan(name="acme", rate_limit=10, burst_limit=20, quota_limit=100000, quota_period="MONTH"),
        UsagePlan(name="globex"),
    )
    assert parse_usage_plans(None) == () and parse_usage_plans("  ") == ()


@pytest.mark.parametrize("raw, fragment", [
    ("{", "USAGE_PLANS is not valid JSON"),
    ("{}", "must be a non-empty JSON list"),
    ("[]", "must be a non-empty JSON list"),
    ('[{"name": "ac-me"}]', "USAGE_PLANS[0].name must be 1-64 letters and digits"),
    ('[{"name": "acme", "color": "red"}]', "USAGE_PLANS[0] has unknown keys ['color']"),
    ('[{"name": "acme", "throttle": {"rateLimit": 0}}]', '("acme").throttle.rateLimit must be a positive number'),
    ('[{"name": "acme", "throttle": {"burstLimit": 1.5}}]', '("acme").throttle.burstLimit must be a whole number'),
    ('[{"name": "acme", "quota": {"limit": 10}}]', '("acme").quota needs both limit and period'),
    ('[{"name": "acme", "quota": {"limit": 10, "period": "YEAR"}}]', "quota.period must be one of"),
    ('[{"name": "acme"}, {"name": "ACME"}]', "names the plan 'acme' twice"),
])
def test_a_bad_usage_plans_setting_names_the_entry_and_shows_an_example(raw, fragment):
    with pytest.raises(GatewayMisconfigured) as caught:
        parse_usage_plans(raw)
    assert fragment in str(caught.value)
    assert "Example: USAGE_PLANS='[{\"name\": \"acme\"" in str(caught.value)


def test_plan_of_names_the_plan_of_the_requests_key_id(monkeypatch):
    monkeypatch.setenv("API_KEY_PLANS", json.dumps({"k1": "acme"}))
    plans._plans_by_key_id.cache_clear()
    try:
        assert plan_of({"identity": {"apiKeyId": "k1"}}) == "acme"
        assert plan_of({"identity": {"apiKeyId": "other"}}) is None
        assert plan_of({"identity": {}}) is None and plan_of(None) is None
    finally:
        plans._plans_by_key_id.cache_clear()


def test_app_requires_api_keys_on_every_route_but_health_only_with_usage_plans(import_app):
    without = import_app(STATE_MACHINES=STATE_MACHINES)
    assert not any(entry.api_key_required for entries in without.routes.values() for entry in entries.values())
    keyed = import_app(STATE_MACHINES=STATE_MACHINES, USAGE_PLANS=json.dumps([ACME]))
    required = {(path, method): entry.api_key_required for path, entries in keyed.routes.items()
                for method, entry in entries.items()}
    assert not required.pop(("/health", "GET"))
    assert required and all(required.values())


def test_the_access_log_line_names_the_plan_and_never_the_key(monkeypatch):
    from types import SimpleNamespace

    from chalice import Response

    from chalicelib.http import middleware

    monkeypatch.setenv("API_KEY_PLANS", json.dumps({"key-id-1": "acme"}))
    monkeypatch.setenv("STATE_MACHINES", STATE_MACHINES)
    plans._plans_by_key_id.cache_clear()
    request = SimpleNamespace(method="GET", uri_params=None, query_params=None, context={
        "requestId": "r1", "resourcePath": "/state-machines",
        "identity": {"sourceIp": "10.0.0.1", "apiKey": "secret-key-value", "apiKeyId": "key-id-1"}})
    try:
        record = middleware._access_record(request, Response({"stateMachines": []}), 0.001)
    finally:
        plans._plans_by_key_id.cache_clear()
    assert record["usagePlan"] == "acme"
    assert "secret-key-value" not in json.dumps(record, default=str)


# --- API_TIMEOUT_SECONDS ---------------------------------------------------------------------


@pytest.mark.parametrize("raw, seconds, wait", [(None, 29, 25), ("29", 29, 25), ("1", 1, 0), ("120", 120, 116),
                                                ("300", 300, 296)])
def test_api_timeout_seconds_sets_the_limit_and_the_longest_wait(raw, seconds, wait):
    environ = {"STATE_MACHINES": STATE_MACHINES, **({"API_TIMEOUT_SECONDS": raw} if raw else {})}
    if raw == "1":
        environ.update(SFN_CONNECT_TIMEOUT="0.1", SFN_READ_TIMEOUT="0.2", SFN_MAX_ATTEMPTS="1", SFN_SYNC_READ_TIMEOUT="0.5")
    config = config_from_environ(environ)
    assert (config.api_timeout_seconds, config.max_wait_seconds) == (seconds, wait)
    assert max_wait_seconds(seconds) == wait


@pytest.mark.parametrize("raw", ["0", "301", "29.5", "-1", "ten"])
def test_api_timeout_seconds_out_of_range_is_a_configuration_error(raw):
    with pytest.raises(GatewayMisconfigured, match="API_TIMEOUT_SECONDS must be a whole number of seconds from 1 to 300"):
        config_from_environ({"STATE_MACHINES": STATE_MACHINES, "API_TIMEOUT_SECONDS": raw})


def test_step_functions_timeouts_must_fit_the_stages_limit_not_29_s():
    environ = {"STATE_MACHINES": STATE_MACHINES, "SFN_READ_TIMEOUT": "20"}
    with pytest.raises(GatewayMisconfigured, match="under API Gateway's 29 s limit"):
        config_from_environ(environ)
    assert config_from_environ({**environ, "API_TIMEOUT_SECONDS": "90"}).read_timeout == 20


def test_the_time_budget_follows_the_stages_timeout():
    class Context:
        def get_remaining_time_in_millis(self):
            return 121_000

    clock = iter([0.0, 0.0]).__next__
    assert start(Context(), clock=clock, api_timeout_seconds=120).remaining() == pytest.approx(118.5)
    assert isinstance(start(None, api_timeout_seconds=120), Budget)


def test_wait_above_the_stages_maximum_is_refused_before_any_call(make_client, stub):
    with make_client() as client:
        response = post_json(client, "/executions?wait=26", {"stateMachine": "orders"})
    assert_error(response, 400, "ValidationError")
    assert response.json_body["Message"] == "wait must be a whole number from 0 to 25, got '26'."


def test_a_stage_with_a_longer_timeout_accepts_longer_waits(make_client, stub):
    with make_client(API_TIMEOUT_SECONDS="60") as client:
        response = post_json(client, "/executions?wait=57", {"stateMachine": "orders"})
        assert response.json_body["Message"] == "wait must be a whole number from 0 to 56, got '57'."
        stub.add_response("describe_execution", {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:orders:r", "stateMachineArn": ORDERS_ARN,
            "status": "SUCCEEDED", "startDate": "2026-11-25T12:00:00Z"},
            {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:orders:r"})
        described = client.http.get("/executions/arn:aws:states:us-east-1:123456789012:execution:orders:r?wait=56")
    assert described.status_code == 200, described.json_body


# --- make policy / make package checks ---------------------------------------------------------


def _config(**stage_settings) -> dict:
    stage = {"environment_variables": {"STATE_MACHINES": STATE_MACHINES}}
    for key, value in stage_settings.items():
        if key.isupper():
            stage["environment_variables"][key] = value
        else:
            stage[key] = value
    return {"app_name": "sfn-gateway", "stages": {"partners": stage}}


def _problems(config: dict, stage: str) -> list:
    return stage_problems(config, stage, policy.stage_environment(config, stage))


def test_a_timeout_above_29_s_without_a_regional_api_is_refused_in_one_line():
    assert _problems(_config(API_TIMEOUT_SECONDS="120"), "partners") == [
        'partners: API_TIMEOUT_SECONDS=120 needs "api_gateway_endpoint_type": "REGIONAL" in the stage '
        "(edge-optimized APIs end every integration at 29 s); see docs/deploy.md."]
    assert _problems(_config(API_TIMEOUT_SECONDS="120", api_gateway_endpoint_type="REGIONAL"), "partners") == []
    assert _problems(_config(API_TIMEOUT_SECONDS="29"), "partners") == []


def test_an_invalid_input_schema_is_refused_in_one_line_naming_stage_and_machine():
    bad_compile = json.dumps({"orders": {"arn": ORDERS_ARN, "inputSchema": {"type": "nope"}}})
    [line] = _problems(_config(STATE_MACHINES=bad_compile), "partners")
    assert line.startswith('partners: Invalid gateway configuration: STATE_MACHINES["orders"].inputSchema is not a valid')
    # The meta-schema also catches what compiles but is wrong (a negative maxLength).
    bad_meta = json.dumps({"orders": {"arn": ORDERS_ARN, "inputSchema": {"properties": {"a": {"maxLength": -1}}}}})
    assert _problems(_config(STATE_MACHINES=bad_meta), "partners") == [
        'partners: STATE_MACHINES["orders"].inputSchema is not a valid draft-07 schema at properties/a/maxLength: '
        "-1 is less than the minimum of 0"]


def test_bad_usage_plans_are_refused_in_one_line():
    [line] = _problems(_config(USAGE_PLANS='[{"name": "a b"}]'), "partners")
    assert line.startswith("partners: Invalid gateway configuration: USAGE_PLANS[0].name") and "\n" not in line


def test_make_policy_and_make_package_refuse_the_stage_with_exit_2(tmp_path, capsys, monkeypatch):
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    (chalice_dir / "config.json").write_text(json.dumps(_config(API_TIMEOUT_SECONDS="120")))
    assert policy.main(["--stage", "partners"], chalice_dir=chalice_dir) == 2
    assert "partners: API_TIMEOUT_SECONDS=120 needs" in capsys.readouterr().err
    assert not (chalice_dir / "policy-partners.json").exists()
    monkeypatch.setattr(packaging, "load_config", lambda: _config(API_TIMEOUT_SECONDS="120"))
    monkeypatch.setattr(packaging, "package", lambda *args, **kwargs: pytest.fail("packaged a refused stage"))
    assert packaging.main(["--stage", "partners", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --- the templates --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def partner_packages(tmp_path_factory):
    """{"cloudformation": dir, "terraform": dir} of the docs' example partner stage, packaged from a project copy."""
    project = tmp_path_factory.mktemp("partners-project")
    for name in ("app.py", "requirements.txt"):
        shutil.copy(PROJECT_DIR / name, project / name)
    shutil.copytree(PROJECT_DIR / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_DIR / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments", "deployed"))
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"].update(PARTNER_STAGES)
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    environment = policy.stage_environment(config, "orders-partners")
    built = {}
    for pkg_format, template, wire in (("cloudformation", "sam.json", wire_sam), ("terraform", "chalice.tf.json", wire_terraform)):
        out = tmp_path_factory.mktemp(f"partners-{pkg_format}")
        env = {**_offline_environment(), "PYTHONDONTWRITEBYTECODE": "1"}
        packaging.offline_wheels(env)
        done = subprocess.run([_tool("chalice"), "package", "--pkg-format", pkg_format, "--stage", "orders-partners",
                               str(out)], cwd=project, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        # What tools.package does after chalice package.
        path = out / template
        path.write_text(json.dumps(wire(json.loads(path.read_text()), environment, "sfn-gateway-orders-partners")))
        built[pkg_format] = path
    return built


def _integrations(swagger: dict) -> list:
    return [operation["x-amazon-apigateway-integration"] for path in swagger["paths"].values()
            for method, operation in path.items() if "x-amazon-apigateway-integration" in operation
            and operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"]


def test_sam_sets_every_integration_timeout_and_the_function_timeout_above_it(partner_packages):
    template = json.loads(partner_packages["cloudformation"].read_text())
    integrations = _integrations(template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"])
    assert integrations and {i["timeoutInMillis"] for i in integrations} == {120_000}
    assert template["Resources"]["APIHandler"]["Properties"]["Timeout"] == 121
    assert template["Resources"]["RestAPI"]["Properties"]["EndpointConfiguration"] == "REGIONAL"


def test_sam_has_a_usage_plan_a_generated_key_and_their_link_per_plan(partner_packages):
    resources = json.loads(partner_packages["cloudformation"].read_text())["Resources"]
    assert resources["UsagePlanAcme"] == {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {
        "UsagePlanName": "sfn-gateway-orders-partners-acme", "Description": "Usage plan of acme",
        "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}],
        "Throttle": {"RateLimit": 10, "BurstLimit": 20}, "Quota": {"Limit": 100000, "Period": "MONTH", "Offset": 0}}}
    keys = {name: r for name, r in resources.items() if r["Type"] == "AWS::ApiGateway::ApiKey"}
    assert sorted(keys) == ["ApiKeyAcme", "ApiKeyGlobex"]
    assert all("Value" not in key["Properties"] and key["Properties"]["Enabled"] for key in keys.values())
    assert resources["UsagePlanKeyGlobex"]["Properties"] == {
        "KeyId": {"Ref": "ApiKeyGlobex"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "UsagePlanGlobex"}}
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["API_KEY_PLANS"] == {"Fn::Sub": '{"${ApiKeyAcme}": "acme", "${ApiKeyGlobex}": "globex"}'}


def test_sam_methods_require_sigv4_and_an_api_key_but_health(partner_packages):
    swagger = json.loads(partner_packages["cloudformation"].read_text())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    security = {(path, method): operation.get("security") for path, operations in swagger["paths"].items()
                for method, operation in operations.items()}
    assert security.pop(("/health", "get")) is None
    assert security and all(value == [{"api_key": []}, {"sigv4": []}] for value in security.values())
    assert swagger["securityDefinitions"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}


def test_partner_sam_template_passes_cfn_lint(partner_packages):
    done = subprocess.run([_tool("cfn-lint"), "--format", "parseable", str(partner_packages["cloudformation"])],
                          capture_output=True, text=True, timeout=300, env=_offline_environment())
    assert done.returncode == 0, done.stdout + done.stderr


def test_terraform_gets_the_timeouts_plans_keys_and_key_plan_map(partner_packages):
    template = json.loads(partner_packages["terraform"].read_text())
    swagger = json.loads(template["locals"]["chalice_api_swagger"])
    assert {i["timeoutInMillis"] for i in _integrations(swagger)} == {120_000}
    resources = template["resource"]
    assert resources["aws_lambda_function"]["api_handler"]["timeout"] == 121
    assert resources["aws_api_gateway_usage_plan"]["acme"]["throttle_settings"] == {"rate_limit": 10, "burst_limit": 20}
    assert resources["aws_api_gateway_usage_plan"]["acme"]["quota_settings"] == {"limit": 100000, "period": "MONTH", "offset": 0}
    assert resources["aws_api_gateway_api_key"]["globex"] == {"name": "sfn-gateway-orders-partners-globex", "enabled": True}
    assert resources["aws_api_gateway_usage_plan_key"]["globex"]["key_id"] == "${aws_api_gateway_api_key.globex.id}"
    assert resources["aws_lambda_function"]["api_handler"]["environment"]["variables"]["API_KEY_PLANS"] == (
        '${jsonencode({(aws_api_gateway_api_key.acme.id) = "acme", (aws_api_gateway_api_key.globex.id) = "globex"})}')


def test_the_runtime_requirements_ride_in_chalices_managed_layer_not_in_the_function_zip(partner_packages):
    out = partner_packages["cloudformation"].parent
    layer = zipfile.ZipFile(out / "layer-deployment.zip").namelist()
    function = zipfile.ZipFile(out / "deployment.zip").namelist()
    assert "python/lib/python3.11/site-packages/fastjsonschema/__init__.py" in layer
    assert {name.split("/")[4] for name in layer if name.count("/") > 4} <= {
        "fastjsonschema", "fastjsonschema-2.22.3.dist-info"}
    assert not any(name.startswith("fastjsonschema") for name in function)
    sizes = {name: (out / name).stat().st_size for name in ("deployment.zip", "layer-deployment.zip")}
    print(f"deployment.zip {sizes['deployment.zip']} bytes, layer-deployment.zip {sizes['layer-deployment.zip']} bytes")
    assert sizes["layer-deployment.zip"] <= 40 * 1024
