"""The inbox page: served only where people sign in, a shell without data, strict CSP, its files from the gateway."""
import json
import re
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.approvals import page
from tests.conftest import TEST_STATE_MACHINES

ISSUER = "https://login.example.com/realms/ops"
POOL_ARN = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123"
JWT_STAGE = {
    "AUTH_MODE": "jwt", "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": "sfn-gateway", "APPROVALS": "on",
    "APPROVALS_QUEUE": "sfn-gateway-test-approvals", "APPROVALS_TABLE": "approvals-test",
    "STATE_MACHINES": json.dumps(TEST_STATE_MACHINES), "INBOX_CLIENT_ID": "inbox-client",
}
COGNITO_STAGE = {
    **{key: value for key, value in JWT_STAGE.items() if not key.startswith("JWT_")},
    "AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": json.dumps([POOL_ARN]),
    "INBOX_AUTH_ORIGIN": "https://ops.auth.eu-west-1.amazoncognito.com",
}


@pytest.fixture
def stage(import_app, make_client, monkeypatch):
    """A chalice test client of app.py imported under the given stage variables."""
    opened = []

    def build(**environment):
        for key in ("AUTH_MODE", "APPROVALS", "JWT_ISSUER", "COGNITO_USER_POOL_ARNS", "INBOX_CLIENT_ID",
                    "INBOX_AUTH_ORIGIN", "INBOX_SCOPES"):
            monkeypatch.delenv(key, raising=False)
        application = import_app(**environment)
        client = make_client(application=application, **environment)
        client.app = application
        opened.append(client.__enter__())
        return client

    yield build
    for client in opened:
        client.__exit__(None, None, None)


def csp(response) -> dict:
    """The Content-Security-Policy header as directive -> sources."""
    directives = [part.split() for part in response.headers["Content-Security-Policy"].split(";")]
    return {words[0]: words[1:] for words in directives}


def test_jwt_stage_serves_the_shell_without_a_token(stage):
    client = stage(**JWT_STAGE)
    response = client.http.get("/inbox")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    text = response.body.decode()
    assert f'data-issuer="{ISSUER}"' in text
    assert 'data-client-id="inbox-client"' in text
    assert 'data-token="access_token"' in text
    assert 'data-scopes="openid"' in text
    assert '<script src="inbox/app.js" defer></script>' in text
    assert '<link rel="stylesheet" href="inbox/app.css">' in text
    assert (response.headers["Cache-Control"], response.headers["Referrer-Policy"]) == ("no-store", "no-referrer")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_page_policy_allows_only_the_gateway_and_the_issuer(stage):
    response = stage(**JWT_STAGE).http.get("/inbox")
    policy = csp(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "https://login.example.com"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["require-trusted-types-for"] == ["'script'"]
    assert not any("unsafe" in source for sources in policy.values() for source in sources)


def test_shell_has_no_inline_script_style_or_handler_and_no_other_host(stage):
    text = stage(**JWT_STAGE).http.get("/inbox").body.decode()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", text, re.S)
    assert scripts == [""]
    assert "<style" not in text
    assert not re.search(r"\sstyle=", text)
    assert not re.search(r"\son[a-z]+=", text)
    # The only absolute URL is the issuer, as a setting the script reads.
    assert re.findall(r"https?://[^\"'\s<>]+", text) == [ISSUER]


def test_shell_names_the_status_region_and_the_sign_in_button(stage):
    text = stage(**JWT_STAGE).http.get("/inbox").body.decode()
    assert '<div id="status" role="status" aria-live="polite"></div>' in text
    assert '<button type="button" id="sign-in">Sign in</button>' in text
    assert '<html lang="en">' in text


@pytest.mark.parametrize("name, content_type, marker", [
    ("app.js", "text/javascript; charset=utf-8", "code_challenge_method"),
    ("app.css", "text/css; charset=utf-8", ":focus-visible"),
])
def test_the_page_files_come_from_the_gateway(stage, name, content_type, marker):
    response = stage(**JWT_STAGE).http.get(f"/inbox/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert marker in response.body.decode()


@pytest.mark.parametrize("name", ["inbox.html", "page.py", "..%2Fpage.py", "app.js.map", "APP.JS"])
def test_any_other_file_name_is_404(stage, name):
    response = stage(**JWT_STAGE).http.get(f"/inbox/{name}")
    assert response.status_code == 404
    body = json.loads(response.body)
    assert body["Code"] == "NotFoundError"
    assert "app.js, app.css" in body["Message"]


def test_script_writes_text_only_and_asks_for_s256():
    script = (Path(page.STATIC_DIR) / "inbox.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script
    assert 'code_challenge_method: "S256"' in script
    assert "history.replaceState" in script
    assert "localStorage" not in script


def test_page_files_stay_small():
    sizes = {path.name: path.stat().st_size for path in Path(page.STATIC_DIR).iterdir()}
    assert set(sizes) == {"inbox.html", "inbox.js", "inbox.css"}
    assert sum(sizes.values()) < 24 * 1024, sizes


def test_cognito_stage_signs_in_with_the_pools_issuer_and_sends_id_tokens(stage):
    response = stage(**COGNITO_STAGE).http.get("/inbox")
    text = response.body.decode()
    assert response.status_code == 200
    assert 'data-issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"' in text
    assert 'data-token="id_token"' in text
    assert csp(response)["connect-src"] == [
        "'self'", "https://cognito-idp.eu-west-1.amazonaws.com", "https://ops.auth.eu-west-1.amazoncognito.com"]


def test_cognito_stage_without_the_token_endpoints_origin_names_the_setting(stage):
    environment = {key: value for key, value in COGNITO_STAGE.items() if key != "INBOX_AUTH_ORIGIN"}
    response = stage(**environment).http.get("/inbox")
    assert response.status_code == 500
    body = json.loads(response.body)
    assert body["Code"] == "GatewayMisconfigured"
    assert "INBOX_AUTH_ORIGIN" in body["Message"]


@pytest.mark.parametrize("changes, named", [
    ({"INBOX_CLIENT_ID": ""}, "INBOX_CLIENT_ID"),
    ({"INBOX_CLIENT_ID": 'x" onload="alert(1)'}, "INBOX_CLIENT_ID"),
    ({"INBOX_AUTH_ORIGIN": "https://auth.example.com/oauth2"}, "INBOX_AUTH_ORIGIN"),
    ({"INBOX_AUTH_ORIGIN": "http://auth.example.com"}, "INBOX_AUTH_ORIGIN"),
    ({"INBOX_SCOPES": 'openid "><script>'}, "INBOX_SCOPES"),
])
def test_page_setting_mistakes_are_named_at_first_use(stage, changes, named):
    response = stage(**{**JWT_STAGE, **changes}).http.get("/inbox")
    assert response.status_code == 500
    body = json.loads(response.body)
    assert (body["Code"], named in body["Message"]) == ("GatewayMisconfigured", True)


def test_scopes_for_an_idp_that_needs_them_reach_the_page(stage):
    text = stage(**{**JWT_STAGE, "INBOX_SCOPES": "openid  api://sfn-gateway/approve"}).http.get("/inbox").body.decode()
    assert 'data-scopes="openid api://sfn-gateway/approve"' in text


def test_an_extra_token_origin_joins_connect_src(stage):
    response = stage(**{**JWT_STAGE, "INBOX_AUTH_ORIGIN": "https://tokens.example.com"}).http.get("/inbox")
    assert csp(response)["connect-src"] == ["'self'", "https://login.example.com", "https://tokens.example.com"]


@pytest.mark.parametrize("environment", [
    {key: value for key, value in JWT_STAGE.items() if not key.startswith(("AUTH_MODE", "JWT_"))},
    {**JWT_STAGE, "APPROVALS": "off"},
])
def test_iam_stages_and_stages_without_approvals_have_no_inbox_route(stage, environment):
    client = stage(**environment)
    assert "/inbox" not in client.app.routes
    assert "/inbox/{file_name}" not in client.app.routes


@pytest.mark.parametrize("environment", [JWT_STAGE, COGNITO_STAGE])
def test_the_page_and_its_files_are_the_only_public_routes_besides_health(stage, environment):
    application = stage(**environment).app
    public = {(path, method) for path, methods in application.routes.items() for method, entry in methods.items()
              if entry.authorizer is None}
    assert public == {("/health", "GET"), ("/inbox", "GET"), ("/inbox/{file_name}", "GET")}
