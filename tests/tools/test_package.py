"""`chalice package` (SAM and Terraform) for every stage, offline: lint, auth, policy, bundle size."""
import ast
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import time
import tokenize
import zipfile
from pathlib import Path

import chalice.app
import pytest

from app import app
from chalicelib.approvals import triggers as approval_triggers
from chalicelib.webhooks import rule as webhook_rule
from chalicelib.http.cors import cors_config
from tools import package as packaging
from tools import policy

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONFIG = policy.load_config()
STAGES = sorted(CONFIG["stages"])
CORS_STAGES = [stage for stage in STAGES if cors_config(policy.stage_environment(CONFIG, stage))]
FORMATS = ("cloudformation", "terraform")  # "cloudformation" is Chalice's SAM template format
MAX_BUNDLE_BYTES = 100 * 1024
# Routes anyone may call: the health check (CORS preflights are API Gateway MOCKs on CORS stages).
PUBLIC_METHODS = {("/health", "GET")}
# Neither should ever be bundled: boto3 comes with the Lambda runtime, the rest is dev-only.
FORBIDDEN_IN_BUNDLE = ("boto3/", "botocore/", "tools/", "local/", "tests/", "client/", "sfn_gateway_client/")


def _tool(name: str) -> str:
    # Console scripts sit next to the venv's interpreter; `python -m chalice` has no __main__.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed next to {sys.executable} nor on PATH"
    return found


def _offline_environment() -> dict:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return environment


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=_offline_environment(), timeout=120, **kwargs)


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """stage -> {"cloudformation": dir, "terraform": dir}, each packaged once for the whole module."""
    built = {}
    for stage in STAGES:
        built[stage] = {}
        for pkg_format in FORMATS:
            out = tmp_path_factory.mktemp(f"{stage}-{pkg_format}")
            started = time.perf_counter()
            # The same tool `make package` runs: chalice package plus gateway responses and tracing.
            result = packaging.package(stage, pkg_format, out, env=_offline_environment())
            assert result.returncode == 0, f"chalice package {pkg_format} {stage} failed:\n{result.stderr}"
            print(f"chalice package --pkg-format {pkg_format} --stage {stage}: {time.perf_counter() - started:.1f} s")
            built[stage][pkg_format] = out
    return built


def _sam(packages, stage) -> dict:
    return json.loads((packages[stage]["cloudformation"] / "sam.json").read_text())


def _terraform(packages, stage) -> dict:
    return json.loads((packages[stage]["terraform"] / "chalice.tf.json").read_text())


def _sam_swagger(template: dict) -> dict:
    [api] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    return api["Properties"]["DefinitionBody"]


def _terraform_swagger(template: dict) -> dict:
    # Terraform interpolations such as ${aws_lambda_function.api_handler.invoke_arn} sit
    # inside JSON strings, so the body still parses as JSON.
    return json.loads(template["locals"]["chalice_api_swagger"])


def _methods(swagger: dict) -> dict:
    """(path, METHOD) -> the operation's security requirements (None when it has none)."""
    return {
        (path, method.upper()): operation.get("security")
        for path, operations in swagger["paths"].items()
        for method, operation in operations.items()
        if not method.startswith("x-")
    }


def _app_methods() -> set:
    return {(path, method) for path, entries in app.routes.items() for method in entries}


def _assert_sigv4_on_every_private_method(swagger: dict) -> None:
    scheme = swagger["securityDefinitions"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    methods = _methods(swagger)
    unsigned = sorted(
        key for key, security in methods.items() if security != [{"sigv4": []}]
        and key not in PUBLIC_METHODS and key[1] != "OPTIONS"
    )
    assert unsigned == []
    assert methods[("/health", "GET")] is None
    assert all(security is None for (_, method), security in methods.items() if method == "OPTIONS")


def test_sigv4_check_rejects_an_unsigned_method():
    # Given an API definition where one private route lost its authorizer
    swagger = {
        "securityDefinitions": {
            "sigv4": {"type": "apiKey", "in": "header", "name": "Authorization", "x-amazon-apigateway-authtype": "awsSigv4"}
        },
        "paths": {
            "/health": {"get": {}},
            "/executions": {"get": {"security": [{"sigv4": []}]}, "post": {}, "options": {}},
        },
    }
    # Then the check names it
    with pytest.raises(AssertionError, match="/executions', 'POST'"):
        _assert_sigv4_on_every_private_method(swagger)


@pytest.mark.parametrize("stage", STAGES)
def test_sam_template_passes_cfn_lint(packages, stage):
    # Given the SAM template of the stage
    template = packages[stage]["cloudformation"] / "sam.json"
    # When cfn-lint (which expands the Serverless transform offline) checks it
    started = time.perf_counter()
    result = _run([_tool("cfn-lint"), "--format", "parseable", str(template)])
    print(f"cfn-lint {stage}: {time.perf_counter() - started:.1f} s")
    # Then it reports nothing, not even warnings
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("stage", STAGES)
def test_sam_api_requires_sigv4_on_every_method_but_health_and_preflights(packages, stage):
    _assert_sigv4_on_every_private_method(_sam_swagger(_sam(packages, stage)))


@pytest.mark.parametrize("stage", STAGES)
def test_terraform_api_requires_sigv4_on_every_method_but_health_and_preflights(packages, stage):
    _assert_sigv4_on_every_private_method(_terraform_swagger(_terraform(packages, stage)))


@pytest.mark.parametrize("pkg_format", FORMATS)
def test_packaged_api_has_exactly_the_apps_routes_and_no_preflights_without_cors(packages, pkg_format):
    template = _sam(packages, "prod") if pkg_format == "cloudformation" else _terraform(packages, "prod")
    swagger = _sam_swagger(template) if pkg_format == "cloudformation" else _terraform_swagger(template)
    assert set(_methods(swagger)) == _app_methods()
    assert not [key for key in _methods(swagger) if key[1] == "OPTIONS"]


def _swagger(packages, stage, pkg_format) -> dict:
    if pkg_format == "cloudformation":
        return _sam_swagger(_sam(packages, stage))
    return _terraform_swagger(_terraform(packages, stage))


@pytest.mark.parametrize("pkg_format", FORMATS)
@pytest.mark.parametrize("stage", CORS_STAGES)
def test_cors_stage_answers_preflights_in_api_gateway_without_invoking_the_function(packages, stage, pkg_format):
    swagger = _swagger(packages, stage, pkg_format)
    origin = policy.stage_environment(CONFIG, stage)["CORS_ALLOW_ORIGIN"]
    preflights = {path: operations["options"] for path, operations in swagger["paths"].items()}
    assert set(preflights) == {path for path in app.routes}
    for path, operation in preflights.items():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "mock", path
        assert "security" not in operation, path
        headers = integration["responses"]["default"]["responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{origin}'"
        assert "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]


def test_at_least_one_stage_exercises_cors():
    # Otherwise the CORS packaging tests above would be collected for no stage at all.
    assert CORS_STAGES


@pytest.mark.parametrize("stage", CORS_STAGES)
def test_cors_stage_gives_api_gateways_own_errors_cors_headers(packages, stage):
    origin = f"'{policy.stage_environment(CONFIG, stage)['CORS_ALLOW_ORIGIN']}'"
    sam_responses = _sam(packages, stage)["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert set(sam_responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    assert all(r["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == origin for r in sam_responses.values())
    extra = json.loads((packages[stage]["terraform"] / packaging.TERRAFORM_EXTRA_FILE).read_text())
    tf_responses = extra["resource"]["aws_api_gateway_gateway_response"].values()
    assert {r["response_type"] for r in tf_responses} == {"DEFAULT_4XX", "DEFAULT_5XX"}
    assert all(r["rest_api_id"] == "${aws_api_gateway_rest_api.rest_api.id}" for r in tf_responses)
    assert all(r["response_parameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == origin
               for r in tf_responses)


def test_stage_without_cors_gets_no_gateway_responses(packages):
    assert "GatewayResponses" not in _sam(packages, "prod")["Resources"]["RestAPI"]["Properties"]
    assert not (packages["prod"]["terraform"] / packaging.TERRAFORM_EXTRA_FILE).exists()


@pytest.mark.parametrize("stage", STAGES)
def test_xray_stages_trace_api_gateway_and_the_function(packages, stage):
    traced = packaging.xray_enabled(CONFIG, stage)
    resources = _sam(packages, stage)["Resources"]
    assert resources["APIHandler"]["Properties"]["Tracing"] == ("Active" if traced else "PassThrough")
    assert resources["RestAPI"]["Properties"].get("TracingEnabled", False) is traced
    function = _terraform(packages, stage)["resource"]["aws_lambda_function"]["api_handler"]
    assert function.get("tracing_config") == ({"mode": "Active"} if traced else None)


@pytest.mark.parametrize("stage", STAGES)
def test_sam_lambda_role_policy_is_the_stages_generated_policy(packages, stage):
    # Given the role the API handler runs as
    resources = _sam(packages, stage)["Resources"]
    function = resources["APIHandler"]  # stages with WEBHOOKS have a second function, with its own role
    role_name = function["Properties"]["Role"]["Fn::GetAtt"][0]
    # Then its only inline policy is exactly the least-privilege policy of the stage
    [inline] = resources[role_name]["Properties"]["Policies"]
    assert inline["PolicyDocument"] == policy.policy_for_stage(policy.load_config(), stage)
    assert "ManagedPolicyArns" not in resources[role_name]["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_terraform_lambda_role_policy_is_the_stages_generated_policy(packages, stage):
    resources = _terraform(packages, stage)["resource"]
    function = resources["aws_lambda_function"]["api_handler"]
    role_name = function["role"].removeprefix("${aws_iam_role.").removesuffix(".arn}")
    attached = [p for p in resources["aws_iam_role_policy"].values() if p["role"] == f"${{aws_iam_role.{role_name}.id}}"]
    assert [json.loads(p["policy"]) for p in attached] == [policy.policy_for_stage(policy.load_config(), stage)]
    assert "aws_iam_role_policy_attachment" not in resources


@pytest.mark.parametrize("stage", STAGES)
def test_deployment_zip_is_small_and_bundles_no_sdk_or_dev_code(packages, stage):
    bundle = packages[stage]["cloudformation"] / "deployment.zip"
    size = bundle.stat().st_size
    print(f"deployment.zip ({stage}): {size} bytes ({size / 1024:.1f} KiB)")
    names = zipfile.ZipFile(bundle).namelist()
    assert [name for name in names if name.startswith(FORBIDDEN_IN_BUNDLE)] == []
    assert {"app.py", "chalicelib/__init__.py"} <= set(names)
    assert size <= MAX_BUNDLE_BYTES


def test_without_comments_removes_comments_and_the_module_docstring_and_keeps_every_line_and_all_code():
    source = (
        '"""Docstring # not a comment."""\n'
        "# a whole-line comment\n"
        "x = '#not' + \"# nor this\"  # trailing comment\n"
        "y = f\"{x}#{x!r}\"\t# tab before\n"
        "    \n"
        "z = (1,  # inside brackets\n"
        "     2)\r\n"
        "s = '''\n# inside a string\n'''\n"
    )
    assert packaging.without_comments(source) == (
        '""\n'
        "\n"
        "x = '#not' + \"# nor this\"\n"
        "y = f\"{x}#{x!r}\"\n"
        "    \n"
        "z = (1,\n"
        "     2)\r\n"
        "s = '''\n# inside a string\n'''\n"
    )


def test_bundled_modules_are_the_sources_less_their_comments(packages):
    # The Lambda runs what is in the zip: the same code, line for line, as the repository's files.
    with zipfile.ZipFile(packages["prod"]["cloudformation"] / "deployment.zip") as bundle:
        ours = [name for name in bundle.namelist() if name == "app.py" or name.startswith("chalicelib/")]
        # prod serves no inbox page: its files stay out of the bundle, every module goes in.
        assert sorted(ours) == sorted(str(path.relative_to(PROJECT_DIR)) for path in
                                      [PROJECT_DIR / "app.py", *(PROJECT_DIR / "chalicelib").rglob("*.py")])
        for name in ours:
            shipped, source = bundle.read(name).decode(), (PROJECT_DIR / name).read_text()
            shipped_tree, source_tree = ast.parse(shipped), ast.parse(source)
            # The module docstring is emptied (nothing reads a module's __doc__); the rest is the same code.
            if ast.get_docstring(source_tree, clean=False) is not None:
                assert ast.get_docstring(shipped_tree, clean=False) == "", name
                shipped_tree.body, source_tree.body = shipped_tree.body[1:], source_tree.body[1:]
            assert ast.dump(shipped_tree) == ast.dump(source_tree), name
            assert shipped.count("\n") == source.count("\n"), name
            assert not [token for token in tokenize.generate_tokens(io.StringIO(shipped).readline)
                        if token.type == tokenize.COMMENT], name
        # Chalice's own runtime is shipped as Chalice wrote it.
        assert bundle.read("chalice/app.py") == Path(inspect.getfile(chalice.app)).read_bytes()


def _bundle_of(tmp_path, files: dict) -> Path:
    bundle = tmp_path / "deployment.zip"
    with zipfile.ZipFile(bundle, "w") as written:
        for name, text in files.items():
            written.writestr(name, text)
    return bundle


@pytest.mark.parametrize("environment, page_files_kept", [
    ({"APPROVALS": "on", "APPROVALS_QUEUE": "q", "AUTH_MODE": "jwt"}, True),
    ({"APPROVALS": "on", "APPROVALS_QUEUE": "q", "AUTH_MODE": "iam"}, False),
    ({}, False),
])
def test_the_inbox_page_files_ship_only_to_stages_that_serve_the_page(tmp_path, environment, page_files_kept):
    page = {f"{packaging.INBOX_STATIC_PREFIX}inbox.js": "document.title = 'Inbox';  // the page\n"}
    bundle = _bundle_of(tmp_path, {"app.py": "x = 1  # one\n", **page, "chalice/app.py": "y = 2  # kept\n"})

    packaging.slim_bundle(bundle, environment)

    with zipfile.ZipFile(bundle) as slimmed:
        shipped = {info.filename: slimmed.read(info).decode() for info in slimmed.infolist()}
        assert {info.compress_type for info in slimmed.infolist()} == {zipfile.ZIP_DEFLATED}
    expected = {"app.py": "x = 1\n", "chalice/app.py": "y = 2  # kept\n", **(page if page_files_kept else {})}
    assert shipped == expected


# --- identity modes (issue 10): one example stage per AUTH_MODE, packaged from a copy of the project ---

IDENTITY_STAGES = json.loads((PROJECT_DIR / "docs" / "identity-stages.json").read_text())
MODE_STAGES = {"iam": "prod", "cognito": "orders-cognito", "jwt": "orders-jwt"}
JWT_LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:sfn-gateway-jwt:1"


@pytest.fixture(scope="module")
def mode_packages(tmp_path_factory):
    """mode -> {"cloudformation": dir, "terraform": dir}, packaged from a project copy holding the example stages."""
    project = tmp_path_factory.mktemp("identity-project")
    for name in ("app.py", "requirements.txt"):
        shutil.copy(PROJECT_DIR / name, project / name)
    shutil.copytree(PROJECT_DIR / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_DIR / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments", "deployed"))
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"].update(IDENTITY_STAGES)
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    # As a user does after copying a stage: `make policy` writes the file each stage names.
    assert policy.main(["--all"], chalice_dir=project / ".chalice") == 0
    built = {}
    for mode, stage in MODE_STAGES.items():
        built[mode] = {}
        for pkg_format in FORMATS:
            out = tmp_path_factory.mktemp(f"{mode}-{pkg_format}")
            env = {**_offline_environment(), "PYTHONDONTWRITEBYTECODE": "1"}
            # requirements.txt's wheels from build/wheels, as `make package` installs them: no index.
            packaging.offline_wheels(env)
            result = subprocess.run([_tool("chalice"), "package", "--pkg-format", pkg_format, "--stage", stage, str(out)],
                                    cwd=project, capture_output=True, text=True, timeout=120, env=env)
            assert result.returncode == 0, f"chalice package {pkg_format} {stage} failed:\n{result.stderr}"
            # As `make package` ships it (tools/package.py): the gateway's modules without their comments.
            packaging.slim_bundle(out / "deployment.zip", packaging.stage_environment(
                json.loads((project / ".chalice" / "config.json").read_text()), stage))
            built[mode][pkg_format] = out
    return built


def _functions(template: dict) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def _swaggers(mode_packages, mode):
    return [_sam_swagger(_sam(mode_packages, mode)), _terraform_swagger(_terraform(mode_packages, mode))]


def _assert_every_private_method_uses(swagger: dict, scheme: str) -> None:
    methods = _methods(swagger)
    assert sorted(k for k, security in methods.items() if security != [{scheme: []}] and k not in PUBLIC_METHODS and k[1] != "OPTIONS") == []
    assert methods[("/health", "GET")] is None


@pytest.mark.parametrize("mode", sorted(MODE_STAGES))
def test_each_example_stages_api_role_grants_its_own_machines_and_log_group(mode_packages, mode):
    # Given the role each example stage's API handler runs as
    resources = _sam(mode_packages, mode)["Resources"]
    role_name = resources["APIHandler"]["Properties"]["Role"]["Fn::GetAtt"][0]
    [inline] = resources[role_name]["Properties"]["Policies"]
    # Then it is that stage's own generated policy (not one copied from another stage)
    stage = MODE_STAGES[mode]
    config = {**CONFIG, "stages": {**CONFIG["stages"], **IDENTITY_STAGES}}
    assert inline["PolicyDocument"] == policy.policy_for_stage(config, stage)
    logs = next(s for s in inline["PolicyDocument"]["Statement"] if s["Sid"] == "Logs")
    assert f"arn:aws:logs:*:*:log-group:/aws/lambda/sfn-gateway-{stage}" in logs["Resource"]


@pytest.mark.parametrize("mode", sorted(MODE_STAGES))
def test_each_modes_sam_template_passes_cfn_lint(mode_packages, mode):
    result = _run([_tool("cfn-lint"), "--format", "parseable", str(mode_packages[mode]["cloudformation"] / "sam.json")])
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("mode", sorted(MODE_STAGES))
def test_each_modes_deployment_zip_stays_small_without_pyjwt(mode_packages, mode):
    bundle = mode_packages[mode]["cloudformation"] / "deployment.zip"
    names = zipfile.ZipFile(bundle).namelist()
    print(f"deployment.zip (AUTH_MODE={mode}): {bundle.stat().st_size} bytes ({bundle.stat().st_size / 1024:.1f} KiB)")
    assert [n for n in names if n.startswith(("jwt/", "cryptography/", "cffi/") + FORBIDDEN_IN_BUNDLE)] == []
    assert bundle.stat().st_size <= MAX_BUNDLE_BYTES


def test_iam_mode_has_sigv4_on_every_method_but_health_and_no_authorizer_function(mode_packages):
    for swagger in _swaggers(mode_packages, "iam"):
        _assert_sigv4_on_every_private_method(swagger)
    assert list(_functions(_sam(mode_packages, "iam"))) == ["APIHandler"]
    assert list(_terraform(mode_packages, "iam")["resource"]["aws_lambda_function"]) == ["api_handler"]


def test_cognito_mode_has_a_cognito_authorizer_on_every_private_method(mode_packages):
    for swagger in _swaggers(mode_packages, "cognito"):
        scheme = swagger["securityDefinitions"]["cognito"]
        assert scheme["x-amazon-apigateway-authtype"] == "cognito_user_pools"
        assert scheme["x-amazon-apigateway-authorizer"]["providerARNs"] == [
            "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"]
        _assert_every_private_method_uses(swagger, "cognito")
        assert "sigv4" not in swagger["securityDefinitions"]
    assert list(_functions(_sam(mode_packages, "cognito"))) == ["APIHandler"]


def test_jwt_mode_has_the_authorizer_function_its_invoke_permission_and_the_ttl(mode_packages):
    template = _sam(mode_packages, "jwt")
    for swagger in _swaggers(mode_packages, "jwt"):
        scheme = swagger["securityDefinitions"]["jwt_authorizer"]
        assert (scheme["x-amazon-apigateway-authtype"], scheme["name"]) == ("custom", "Authorization")
        assert scheme["x-amazon-apigateway-authorizer"]["type"] == "token"
        assert scheme["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == 300
        _assert_every_private_method_uses(swagger, "jwt_authorizer")
    functions = _functions(template)
    assert sorted(functions) == ["APIHandler", "JwtAuthorizer"]
    authorizer = functions["JwtAuthorizer"]["Properties"]
    # The layer (PyJWT + cryptography) goes to the authorizer only; the API function stays lean. Every function
    # also gets Chalice's managed layer of requirements.txt (fastjsonschema, issue 21: "automatic_layer").
    assert (authorizer["Handler"], authorizer["Layers"]) == (
        "chalicelib.auth.identity.jwt_authorizer", [{"Ref": "ManagedLayer"}, JWT_LAYER_ARN])
    assert functions["APIHandler"]["Properties"]["Layers"] == [{"Ref": "ManagedLayer"}]
    [permission] = [r["Properties"] for r in template["Resources"].values()
                    if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == {"Fn::GetAtt": ["JwtAuthorizer", "Arn"]}]
    assert (permission["Principal"], permission["Action"]) == ("apigateway.amazonaws.com", "lambda:InvokeFunction")
    # Its role may write logs and nothing else: it never calls Step Functions.
    role = template["Resources"][authorizer["Role"]["Fn::GetAtt"][0]]["Properties"]
    [policy_doc] = role["Policies"]
    assert {a for s in policy_doc["PolicyDocument"]["Statement"] for a in s["Action"]} == {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    terraform = _terraform(mode_packages, "jwt")["resource"]
    managed = "${aws_lambda_layer_version.managed-layer.arn}"
    assert terraform["aws_lambda_function"]["jwt_authorizer"]["layers"] == [managed, JWT_LAYER_ARN]
    assert terraform["aws_lambda_function"]["api_handler"]["layers"] == [managed]
    assert any(p["function_name"] == "${aws_lambda_function.jwt_authorizer.arn}" for p in terraform["aws_lambda_permission"].values())


def _stage_environment(stage: str) -> dict:
    return policy.stage_environment(policy.load_config(), stage)


WEBHOOK_STAGES = [stage for stage in STAGES if webhook_rule.event_pattern(_stage_environment(stage))]


def test_some_stages_subscribe_webhooks_and_prod_does_not():
    assert "dev" in WEBHOOK_STAGES and "local" in WEBHOOK_STAGES and "prod" not in WEBHOOK_STAGES


@pytest.mark.parametrize("stage", WEBHOOK_STAGES)
def test_sam_webhooks_rule_has_the_stages_pattern_and_its_own_least_privilege_role(packages, stage):
    # Given the stage's SAM template
    resources = _sam(packages, stage)["Resources"]
    function = resources["Webhooks"]["Properties"]
    # Then the webhooks function is triggered by exactly the stage's status-change pattern
    [trigger] = function["Events"].values()
    assert trigger["Type"] == "CloudWatchEvent"
    assert trigger["Properties"]["Pattern"] == webhook_rule.event_pattern(_stage_environment(stage))
    assert function["Handler"] == "app.deliver_webhooks"
    # And it runs as its own role with the generated webhooks policy only
    role = resources[function["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert [p["PolicyDocument"] for p in role["Policies"]] == [policy.webhook_policy_for_stage(policy.load_config(), stage)]


@pytest.mark.parametrize("stage", WEBHOOK_STAGES)
def test_terraform_webhooks_rule_has_the_stages_pattern(packages, stage):
    resources = _terraform(packages, stage)["resource"]
    # The webhooks function's own rule (an APPROVALS=on stage has the approvals closer's too).
    rule = resources["aws_cloudwatch_event_rule"]["webhooks-event"]
    assert json.loads(rule["event_pattern"]) == webhook_rule.event_pattern(_stage_environment(stage))
    target = resources["aws_cloudwatch_event_target"]["webhooks-event"]
    assert target["arn"] == "${aws_lambda_function.webhooks.arn}"
    role = resources["aws_lambda_function"]["webhooks"]["role"].removeprefix("${aws_iam_role.").removesuffix(".arn}")
    attached = [p for p in resources["aws_iam_role_policy"].values() if p["role"] == f"${{aws_iam_role.{role}.id}}"]
    assert [json.loads(p["policy"]) for p in attached] == [policy.webhook_policy_for_stage(policy.load_config(), stage)]


def test_a_stage_without_webhooks_packages_no_rule(packages):
    sam = _sam(packages, "prod")["Resources"]
    assert [name for name, r in sam.items() if r["Type"] == "AWS::Serverless::Function"] == ["APIHandler"]
    assert "aws_cloudwatch_event_rule" not in _terraform(packages, "prod")["resource"]


@pytest.mark.parametrize("stage", WEBHOOK_STAGES)
def test_sam_sends_failed_webhook_invocations_to_an_sqs_queue_the_role_may_write(packages, stage):
    # Given the SAM template `make package` writes (cfn-lint-clean, see above)
    resources = _sam(packages, stage)["Resources"]
    # Then the webhooks function's failed async invocations go to an SQS queue
    invoke = resources["Webhooks"]["Properties"]["EventInvokeConfig"]
    assert invoke["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["WebhookFailures", "Arn"]}}
    assert resources["WebhookFailures"]["Type"] == "AWS::SQS::Queue"
    # And only the webhooks role may send to it
    send = resources["WebhookFailuresSendPolicy"]["Properties"]
    assert send["Roles"] == [{"Ref": resources["Webhooks"]["Properties"]["Role"]["Fn::GetAtt"][0]}]
    assert send["PolicyDocument"]["Statement"][0]["Action"] == "sqs:SendMessage"
    assert send["PolicyDocument"]["Statement"][0]["Resource"] == {"Fn::GetAtt": ["WebhookFailures", "Arn"]}


@pytest.mark.parametrize("stage", WEBHOOK_STAGES)
def test_terraform_gets_the_webhook_failure_destination_beside_chalices_file(packages, stage):
    chalice_tf = _terraform(packages, stage)["resource"]
    extra = json.loads((packages[stage]["terraform"] / packaging.WEBHOOK_FAILURES_TERRAFORM_FILE).read_text())["resource"]
    invoke = extra["aws_lambda_function_event_invoke_config"]["webhooks"]
    assert invoke["destination_config"]["on_failure"]["destination"] == "${aws_sqs_queue.webhook_failures.arn}"
    # every resource the extra file refers to exists in chalice's file, and no name collides
    assert invoke["function_name"] == "${aws_lambda_function.webhooks.function_name}" and "webhooks" in chalice_tf["aws_lambda_function"]
    assert extra["aws_iam_role_policy"]["webhook_failures"]["role"] == "${aws_iam_role.webhooks_role.id}"
    assert "webhooks_role" in chalice_tf["aws_iam_role"]
    assert not set(extra["aws_iam_role_policy"]) & set(chalice_tf["aws_iam_role_policy"])


def test_a_stage_without_webhooks_has_no_failure_destination(packages):
    assert "WebhookFailures" not in _sam(packages, "prod")["Resources"]
    assert not (packages["prod"]["terraform"] / packaging.WEBHOOK_FAILURES_TERRAFORM_FILE).exists()


# --- approvals inbox (issue 20): APPROVALS=on stages get the queue, the table and the grants ---

APPROVALS_STAGES = [stage for stage in STAGES if approval_triggers.enabled(policy.stage_environment(CONFIG, stage))]


def _policy_actions(resources: dict, name: str) -> dict:
    return {s["Sid"]: (sorted(s["Action"]), s["Resource"])
            for s in resources[name]["Properties"]["PolicyDocument"]["Statement"]}


def test_some_stages_turn_approvals_on_and_prod_does_not():
    assert APPROVALS_STAGES and "prod" not in APPROVALS_STAGES


@pytest.mark.parametrize("stage", APPROVALS_STAGES)
def test_sam_approvals_queue_table_functions_and_least_privilege_grants(packages, stage):
    environment = policy.stage_environment(CONFIG, stage)
    template = _sam(packages, stage)
    resources = template["Resources"]
    queue = environment["APPROVALS_QUEUE"]
    # The queue the consumer's trigger names, with its dead-letter queue; both encrypted
    assert resources["ApprovalsQueue"]["Properties"]["QueueName"] == queue
    assert resources["ApprovalsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["ApprovalsDeadLetterQueue", "Arn"]}
    assert all(resources[q]["Properties"]["SqsManagedSseEnabled"] for q in ("ApprovalsQueue", "ApprovalsDeadLetterQueue"))
    [trigger] = resources["ApprovalsConsumer"]["Properties"]["Events"].values()
    assert trigger["Properties"]["Queue"]["Fn::Sub"].endswith(f":{queue}")
    assert "ApprovalsConsumerPolicy" in resources["ApprovalsConsumer"]["DependsOn"]
    # The table: on demand, encrypted, TTL, never in the template by name
    table = resources["ApprovalsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST" and table["SSESpecification"] == {"SSEEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    for function in ("APIHandler", "ApprovalsConsumer", "ApprovalsCloser"):
        assert resources[function]["Properties"]["Environment"]["Variables"]["APPROVALS_TABLE"] == {"Ref": "ApprovalsTable"}
    # The closer's rule: the stage's machines ending
    [rule] = resources["ApprovalsCloser"]["Properties"]["Events"].values()
    assert rule["Properties"]["Pattern"] == approval_triggers.closer_pattern(environment)
    # Grants: each function exactly what it calls, on these resources only
    table_arn = {"Fn::GetAtt": ["ApprovalsTable", "Arn"]}
    assert _policy_actions(resources, "ApprovalsApiPolicy") == {
        "ApprovalsTable": (["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                           [table_arn, {"Fn::Sub": "${ApprovalsTable.Arn}/index/*"}]),
        policy.TASK_TOKEN_SID: (["states:SendTaskSuccess"], "*"),
    }
    assert _policy_actions(resources, "ApprovalsConsumerPolicy") == {
        "ApprovalsTable": (["dynamodb:PutItem", "dynamodb:UpdateItem"], table_arn),
        "ApprovalsQueue": (["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                            "sqs:ReceiveMessage"], {"Fn::GetAtt": ["ApprovalsQueue", "Arn"]}),
        "ApprovalsDeadLetterQueue": (["sqs:SendMessage"], {"Fn::GetAtt": ["ApprovalsDeadLetterQueue", "Arn"]}),
    }
    assert _policy_actions(resources, "ApprovalsCloserPolicy") == {
        "ApprovalsTable": (["dynamodb:UpdateItem"], table_arn),
    }
    assert resources["ApprovalsApiPolicy"]["Properties"]["Roles"] == [{"Ref": "ApiHandlerRole"}]
    # The consumer and closer roles hold only their logs besides these grants
    for role in ("ApprovalsConsumerRole", "ApprovalsCloserRole"):
        [inline] = resources[role]["Properties"]["Policies"]
        assert [s["Sid"] for s in inline["PolicyDocument"]["Statement"]] == ["Logs"]
    assert template["Outputs"]["ApprovalsQueueUrl"]["Value"] == {"Ref": "ApprovalsQueue"}


@pytest.mark.parametrize("stage", APPROVALS_STAGES)
def test_terraform_gets_the_approvals_resources_beside_chalices_file_and_wired_into_it(packages, stage):
    environment = policy.stage_environment(CONFIG, stage)
    extra = json.loads((packages[stage]["terraform"] / packaging.APPROVALS_TERRAFORM_FILE).read_text())
    resources = extra["resource"]
    assert resources["aws_sqs_queue"]["approvals"]["name"] == environment["APPROVALS_QUEUE"]
    table = resources["aws_dynamodb_table"]["approvals"]
    assert (table["billing_mode"], table["server_side_encryption"], table["ttl"]) == (
        "PAY_PER_REQUEST", {"enabled": True}, {"attribute_name": "ttl", "enabled": True})
    assert "approvals_queue_url" in extra["output"]
    chalice = _terraform(packages, stage)["resource"]
    for function in ("api_handler", "approvals_consumer", "approvals_closer"):
        variables = chalice["aws_lambda_function"][function]["environment"]["variables"]
        assert variables["APPROVALS_TABLE"] == "${aws_dynamodb_table.approvals.name}"
    [mapping] = chalice["aws_lambda_event_source_mapping"].values()
    assert mapping["event_source_arn"].endswith(f":{environment['APPROVALS_QUEUE']}")
    assert "aws_iam_role_policy.approvals_consumer" in mapping["depends_on"]


def test_a_stage_without_approvals_packages_none_of_it(packages):
    resources = _sam(packages, "prod")["Resources"]
    assert not [name for name in resources if name.startswith("Approvals")]
    assert not (packages["prod"]["terraform"] / packaging.APPROVALS_TERRAFORM_FILE).exists()


def test_without_comments_keeps_a_string_that_is_not_the_module_docstring_and_class_docstrings():
    # Exceptions' docstrings are read at run time (chalicelib/auth/access.py): only the module's goes.
    source = 'x = 1\n"""not a docstring"""\nclass E(Exception):\n    """Kept."""\n'
    assert packaging.without_comments(source) == source
