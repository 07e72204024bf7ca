"""The dev issuer's browser sign-in (authorization code + PKCE S256) over real HTTP, and its hostile cases."""
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from local.code_flow import CODE_LIFETIME_SECONDS, INBOX_CLIENT_ID, s256
from local.issuer import DEMO_USERS, DevIssuer

PAGE = "http://127.0.0.1:8000/inbox"


class Clock:
    """A clock the test moves by hand, so code expiry needs no sleeping."""

    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def running_issuer():
    with DevIssuer() as issuer:
        issuer.code_flow.register_client(INBOX_CLIENT_ID, [PAGE])
        yield issuer


@pytest.fixture
def issuer(running_issuer, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(running_issuer.code_flow, "_clock", clock)
    running_issuer.clock = clock
    return running_issuer


def authorize_params(verifier, **changes):
    params = {"response_type": "code", "client_id": INBOX_CLIENT_ID, "redirect_uri": PAGE, "scope": "openid",
              "state": "state-123", "code_challenge": s256(verifier), "code_challenge_method": "S256"}
    params.update(changes)
    return {name: value for name, value in params.items() if value is not None}


def authorize(issuer, params):
    return requests.get(issuer.url + "/authorize", params=params, allow_redirects=False, timeout=5)


def redirect_answer(response):
    """The query the issuer sends the browser back with, after checking where it goes."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PAGE
    return {name: values[0] for name, values in parse_qs(location.query).items()}


def code_for(issuer, user="ada", verifier=None):
    verifier = verifier or secrets.token_urlsafe(48)
    answer = redirect_answer(authorize(issuer, authorize_params(verifier, login_hint=user)))
    assert answer["state"] == "state-123"
    return answer["code"], verifier


def exchange(issuer, code, verifier, origin=None, **changes):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": PAGE, "client_id": INBOX_CLIENT_ID,
            "code_verifier": verifier}
    form.update(changes)
    headers = {"Origin": origin} if origin else {}
    return requests.post(issuer.url + "/token", data={k: v for k, v in form.items() if v is not None},
                         headers=headers, timeout=5)


def test_discovery_names_the_authorization_and_token_endpoints_and_only_s256(issuer):
    response = requests.get(issuer.url + "/.well-known/openid-configuration", timeout=5)
    discovery = response.json()
    assert response.status_code == 200
    assert (discovery["authorization_endpoint"], discovery["token_endpoint"]) == (
        issuer.url + "/authorize", issuer.url + "/token")
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_sign_in_page_has_one_button_per_demo_user_and_posts_the_request_back(issuer):
    verifier = secrets.token_urlsafe(48)
    response = authorize(issuer, authorize_params(verifier))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    for user in DEMO_USERS:
        assert f'name="login" value="{user}">Sign in as {user}</button>' in response.text
    assert f'name="code_challenge" value="{s256(verifier)}"' in response.text
    # Pressing "Sign in as bob" posts the form: the code comes back for bob
    form = {**authorize_params(verifier), "login": "bob"}
    answer = redirect_answer(requests.post(issuer.url + "/authorize", data=form, allow_redirects=False, timeout=5))
    tokens = exchange(issuer, answer["code"], verifier).json()
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"] == "bob"


def test_code_exchanged_with_its_verifier_gives_tokens_the_gateway_accepts(issuer):
    code, verifier = code_for(issuer, "ada")
    response = exchange(issuer, code, verifier, origin="http://127.0.0.1:8000")
    tokens = response.json()
    assert response.status_code == 200
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 3600)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    keys = jwt.PyJWKSet.from_dict(issuer.jwks())
    access = jwt.decode(tokens["access_token"], keys[issuer.kid].key, algorithms=["RS256"], audience=issuer.audience,
                        issuer=issuer.issuer)
    assert (access["sub"], access["groups"]) == ("ada", ["approvers"])
    identity = jwt.decode(tokens["id_token"], keys[issuer.kid].key, algorithms=["RS256"], audience=INBOX_CLIENT_ID)
    assert identity["sub"] == "ada"


def test_wrong_verifier_is_refused_and_spends_the_code(issuer):
    code, verifier = code_for(issuer)
    wrong = exchange(issuer, code, secrets.token_urlsafe(48))
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert "code_verifier" in wrong.json()["error_description"]
    assert "access_token" not in wrong.json()
    # The right verifier afterwards is too late: the failed try used the code up
    late = exchange(issuer, code, verifier)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")


def test_the_challenge_itself_is_not_a_verifier(issuer):
    code, verifier = code_for(issuer)
    response = exchange(issuer, code, s256(verifier))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_a_code_works_once(issuer):
    code, verifier = code_for(issuer)
    assert exchange(issuer, code, verifier).status_code == 200
    again = exchange(issuer, code, verifier)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert "already used" in again.json()["error_description"]


def test_an_expired_code_is_refused(issuer):
    code, verifier = code_for(issuer)
    issuer.clock.now += CODE_LIFETIME_SECONDS + 1
    response = exchange(issuer, code, verifier)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert "expired" in response.json()["error_description"]


def test_a_code_just_inside_its_lifetime_still_works(issuer):
    code, verifier = code_for(issuer)
    issuer.clock.now += CODE_LIFETIME_SECONDS - 1
    assert exchange(issuer, code, verifier).status_code == 200


def test_exchange_with_another_redirect_uri_or_client_is_refused(issuer):
    code, verifier = code_for(issuer)
    response = exchange(issuer, code, verifier, redirect_uri="http://127.0.0.1:9999/inbox")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    code, verifier = code_for(issuer)
    response = exchange(issuer, code, verifier, client_id="another-client")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example.com/inbox",
    "http://127.0.0.1:8000/inbox/../evil",
    "http://127.0.0.1:8000/inbox?next=https://evil.example.com",
    "http://127.0.0.1:8001/inbox",
    "http://127.0.0.1:8000/inbox/",
])
def test_a_foreign_redirect_uri_gets_an_error_page_and_is_never_redirected_to(issuer, redirect_uri):
    params = authorize_params(secrets.token_urlsafe(48), redirect_uri=redirect_uri, login_hint="ada")
    response = authorize(issuer, params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "is not registered" in response.text
    assert "code=" not in response.text


def test_an_unknown_client_gets_an_error_page(issuer):
    response = authorize(issuer, authorize_params(secrets.token_urlsafe(48), client_id="other", login_hint="ada"))
    assert (response.status_code, "Location" in response.headers) == (400, False)
    assert "Unknown client_id" in response.text


@pytest.mark.parametrize("changes, error", [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge": "too-short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
])
def test_requests_without_s256_pkce_get_an_error_and_no_code(issuer, changes, error):
    verifier = secrets.token_urlsafe(48)
    if changes.get("code_challenge_method") == "plain":
        changes["code_challenge"] = verifier
    answer = redirect_answer(authorize(issuer, authorize_params(verifier, login_hint="ada", **changes)))
    assert (answer["error"], answer["state"]) == (error, "state-123")
    assert "code" not in answer


def test_a_parameter_sent_twice_is_refused(issuer):
    query = urlencode(authorize_params(secrets.token_urlsafe(48), login_hint="ada")) + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2F"
    response = requests.get(f"{issuer.url}/authorize?{query}", allow_redirects=False, timeout=5)
    assert (response.status_code, "Location" in response.headers) == (400, False)
    assert "more than once: redirect_uri" in response.text


def test_login_hint_of_someone_not_a_demo_user_is_access_denied(issuer):
    answer = redirect_answer(authorize(issuer, authorize_params(secrets.token_urlsafe(48), login_hint="mallory")))
    assert answer["error"] == "access_denied"
    assert "code" not in answer


def test_token_endpoint_refuses_other_grants_and_non_forms(issuer):
    response = requests.post(issuer.url + "/token", data={"grant_type": "password", "username": "ada"}, timeout=5)
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")
    response = requests.post(issuer.url + "/token", json={"grant_type": "authorization_code"}, timeout=5)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_token_endpoint_gives_cors_only_to_registered_pages(issuer):
    code, verifier = code_for(issuer)
    response = exchange(issuer, code, verifier, origin="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_only_loopback_pages_may_register():
    with DevIssuer() as issuer:
        with pytest.raises(ValueError, match="loopback"):
            issuer.code_flow.register_client("x", ["http://example.com/inbox"])
        with pytest.raises(ValueError, match="loopback"):
            issuer.code_flow.register_client("x", ["https://127.0.0.1/inbox"])


class _App:
    def __init__(self, routes):
        self.routes = routes


def test_make_run_registers_the_inbox_page_under_both_loopback_names(monkeypatch):
    from local.run import _inbox_banner, open_inbox

    monkeypatch.setenv("INBOX_CLIENT_ID", INBOX_CLIENT_ID)
    with DevIssuer() as issuer:
        assert open_inbox(issuer, _App({"/health": {}}), 8123) is None
        assert issuer.code_flow.allowed_origins() == set()
        url = open_inbox(issuer, _App({"/inbox": {}}), 8123)
        assert url == "http://127.0.0.1:8123/inbox"
        assert issuer.code_flow.allowed_origins() == {"http://127.0.0.1:8123", "http://localhost:8123"}
        verifier = secrets.token_urlsafe(48)
        params = authorize_params(verifier, redirect_uri="http://localhost:8123/inbox", login_hint="ada")
        assert authorize(issuer, params).status_code == 303
    banner = _inbox_banner(url)
    assert "Approvals inbox: http://127.0.0.1:8123/inbox" in banner
    assert "http://127.0.0.1:8123/inbox?login_hint=ada" in banner


class _FakeHandler:
    """Just enough of BaseHTTPRequestHandler to call the code flow as if from another machine."""

    def __init__(self, client_address):
        import io

        self.client_address = client_address
        self.headers = {}
        self.sent = {}
        self.wfile = io.BytesIO()

    def send_response(self, status):
        self.status = status

    def send_header(self, name, value):
        self.sent[name] = value

    def end_headers(self):
        pass


def test_login_hint_from_another_machine_shows_the_sign_in_page_instead(issuer):
    query = urlencode(authorize_params(secrets.token_urlsafe(48), login_hint="ada"))
    remote = _FakeHandler(("192.0.2.10", 50000))
    issuer.code_flow.handle_authorize(remote, query)
    assert (remote.status, "Location" in remote.sent) == (200, False)
    assert "Sign in as ada</button>" in remote.wfile.getvalue().decode()
    local = _FakeHandler(("127.0.0.1", 50000))
    issuer.code_flow.handle_authorize(local, query)
    assert (local.status, "code=" in local.sent["Location"]) == (303, True)


@pytest.mark.parametrize("length", ["-1", "abc", str(64 * 1024)])
def test_token_endpoint_refuses_a_bad_or_huge_content_length_without_reading(issuer, length):
    import socket

    with socket.create_connection(("127.0.0.1", urlsplit(issuer.url).port), timeout=5) as connection:
        connection.sendall(f"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                           f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    answer = answer.decode()
    assert answer.startswith("HTTP/1.0 400")
    assert '"error": "invalid_request"' in answer
