"""chalicelib.auth.identity: the authorizer chosen from AUTH_MODE, and one caller record for every mode."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from chalice import Chalice, CognitoUserPoolAuthorizer, IAMAuthorizer
from chalice.app import ChaliceAuthorizer

from app import app
from chalicelib.auth import identity
from chalicelib.errors import GatewayMisconfigured

PROJECT_DIR = Path(__file__).resolve().parents[2]
POOL_ARN = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"
JWT_ENVIRON = {"AUTH_MODE": "jwt", "JWT_ISSUER": "https://idp.example.com", "JWT_AUDIENCE": "sfn-gateway"}


# --- the authorizer -------------------------------------------------------------------------------


def test_stage_without_auth_mode_uses_iam():
    assert isinstance(identity.route_authorizer(Chalice("t"), {}), IAMAuthorizer)


def test_cognito_mode_uses_the_configured_user_pools():
    authorizer = identity.route_authorizer(Chalice("t"), {"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": json.dumps([POOL_ARN])})
    assert isinstance(authorizer, CognitoUserPoolAuthorizer)
    assert authorizer.to_swagger()["x-amazon-apigateway-authorizer"]["providerARNs"] == [POOL_ARN]


def test_jwt_mode_declares_the_built_in_authorizer_with_the_stages_ttl():
    jwt_app = Chalice("t")
    authorizer = identity.route_authorizer(jwt_app, {**JWT_ENVIRON, "AUTHORIZER_TTL": "60"})
    assert isinstance(authorizer, ChaliceAuthorizer)
    [declared] = jwt_app.builtin_auth_handlers
    assert (declared.name, declared.handler_string, declared.ttl_seconds) == (
        "jwt_authorizer", "chalicelib.auth.identity.jwt_authorizer", 60)


def test_iam_and_cognito_modes_declare_no_authorizer_function():
    for environ in ({}, {"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": json.dumps([POOL_ARN])}):
        other_app = Chalice("t")
        identity.route_authorizer(other_app, environ)
        assert other_app.builtin_auth_handlers == []


@pytest.mark.parametrize("environ, named", [
    ({"AUTH_MODE": "oidc"}, "AUTH_MODE must be one of iam, cognito, jwt"),
    ({"AUTH_MODE": "cognito"}, "COGNITO_USER_POOL_ARNS"),
    ({"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": "[\"not-an-arn\"]"}, "COGNITO_USER_POOL_ARNS"),
    ({"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": "[]"}, "COGNITO_USER_POOL_ARNS"),
    ({"AUTH_MODE": "jwt", "JWT_AUDIENCE": "x"}, "JWT_ISSUER"),
    ({**JWT_ENVIRON, "AUTHORIZER_TTL": "3601"}, "AUTHORIZER_TTL"),
    ({**JWT_ENVIRON, "AUTHORIZER_TTL": "five"}, "AUTHORIZER_TTL"),
    ({**JWT_ENVIRON, "JWT_ALGORITHMS": "HS256"}, "JWT_ALGORITHMS"),
])
def test_bad_auth_settings_are_refused_at_import_naming_the_setting(environ, named):
    with pytest.raises(GatewayMisconfigured, match=named):
        identity.route_authorizer(Chalice("t"), environ)


def test_every_route_but_health_uses_the_one_shared_authorizer():
    import app as app_module

    authorizers = {
        (path, method): entry.authorizer for path, methods in app.routes.items() for method, entry in methods.items()
    }
    public = {key for key, authorizer in authorizers.items() if authorizer is None}
    assert public == {("/health", "GET")}
    assert {id(a) for key, a in authorizers.items() if key not in public} == {id(app_module.authorizer)}


def _import_app_in_a_fresh_process(environ: dict) -> dict:
    code = (
        "import json, sys, app; "
        "print(json.dumps({'authorizer': type(app.authorizer).__name__, "
        "'heavy': sorted(m for m in ('jwt', 'cryptography', 'boto3') if m in sys.modules)}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env={"PATH": "/usr/bin:/bin", **environ},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_api_function_imports_neither_pyjwt_nor_boto3_at_cold_start_in_any_mode():
    for environ, authorizer in [({}, "IAMAuthorizer"), (JWT_ENVIRON, "ChaliceAuthorizer"),
                                ({"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": json.dumps([POOL_ARN])}, "CognitoUserPoolAuthorizer")]:
        assert _import_app_in_a_fresh_process(environ) == {"authorizer": authorizer, "heavy": []}


# --- the caller record ----------------------------------------------------------------------------


def test_iam_user_is_identified_by_its_arn():
    context = {"identity": {"userArn": "arn:aws:iam::123456789012:user/ada", "accountId": "123456789012"}}
    assert identity.caller_record(context) == {"type": "iam", "id": "arn:aws:iam::123456789012:user/ada", "groups": [], "scopes": []}


def test_iam_assumed_role_session_is_identified_by_its_role_arn():
    context = {"identity": {"userArn": "arn:aws:sts::123456789012:assumed-role/approvers/ada-laptop"}}
    assert identity.caller_record(context)["id"] == "arn:aws:iam::123456789012:role/approvers"
    china = {"identity": {"userArn": "arn:aws-cn:sts::123456789012:assumed-role/ops/s"}}
    assert identity.caller_record(china)["id"] == "arn:aws-cn:iam::123456789012:role/ops"


@pytest.mark.parametrize("groups, expected", [
    ("approvers", ["approvers"]),
    ("approvers,admins", ["approvers", "admins"]),
    ("[approvers admins]", ["approvers", "admins"]),
    ('["approvers", "admins"]', ["approvers", "admins"]),
    (["approvers"], ["approvers"]),
    (None, []),
])
def test_cognito_claims_give_sub_groups_and_scopes(groups, expected):
    claims = {"sub": "5f3e-uuid", "cognito:username": "ada", "scope": "orders/start orders/read"}
    if groups is not None:
        claims["cognito:groups"] = groups
    record = identity.caller_record({"authorizer": {"claims": claims}})
    assert record == {"type": "cognito", "id": "5f3e-uuid", "groups": expected, "scopes": ["orders/start", "orders/read"]}


def test_jwt_authorizer_context_gives_the_caller():
    context = {"authorizer": {"callerType": "jwt", "sub": "ada", "groups": '["approvers"]', "scopes": "a b", "principalId": "ada"}}
    assert identity.caller_record(context) == {"type": "jwt", "id": "ada", "groups": ["approvers"], "scopes": ["a", "b"]}


def test_request_without_an_identity_has_no_caller():
    assert identity.caller_record({"identity": {"sourceIp": "127.0.0.1"}}) is None
    assert identity.caller_record(None) is None


def test_access_log_records_the_caller(client, caplog, monkeypatch):
    # Given a request whose context names an assumed-role session
    monkeypatch.setattr(identity, "caller_record", lambda context: {"type": "iam", "id": "arn:aws:iam::123456789012:role/r", "groups": [], "scopes": []})
    with caplog.at_level("INFO", logger="sfn_gateway.access"):
        response = client.http.get("/state-machines")
    # Then the access log line holds the caller record
    assert response.status_code == 200
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sfn_gateway.access"]
    assert line["callerIdentity"] == {"type": "iam", "id": "arn:aws:iam::123456789012:role/r", "groups": [], "scopes": []}


def test_jwt_layer_uses_the_same_pins_as_the_tests():
    from tools.jwt_layer import pinned_requirements

    pins = dict(line.split("==") for line in (PROJECT_DIR / "requirements-dev.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pinned_requirements() == [f"PyJWT=={pins['PyJWT']}", f"cryptography=={pins['cryptography']}"]
    # And nothing of it is a runtime requirement: requirements.txt (packaged into every stage) stays empty
    runtime = [line for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert runtime == []
