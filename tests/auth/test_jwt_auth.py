"""The JWT authorizer in process: settings, hostile tokens, JWKS caching and rotation, 1,500 malformed tokens."""
import json
import logging
import time

import jwt
import pytest
from chalice.app import AuthRequest

from chalicelib.auth import identity, jwt_auth
from chalicelib.auth.jwt_auth import JwtSettings, KeySet, TokenVerifier, Unauthorized, authorize, jwt_settings_from_environ
from chalicelib.errors import GatewayMisconfigured
from local.issuer import DevIssuer
from tests.auth.jwt_support import hostile_tokens, malformed_tokens

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/state-machines"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def issuer():
    with DevIssuer() as running:
        yield running


def settings_for(dev_issuer, **changes) -> JwtSettings:
    values = {"issuer": dev_issuer.issuer, "audiences": (dev_issuer.audience,), "jwks_url": None, "algorithms": ("RS256", "ES256")}
    values.update(changes)
    return JwtSettings(**values)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def verifier(issuer, clock):
    settings = settings_for(issuer)
    return TokenVerifier(settings, KeySet(settings, clock=clock))


@pytest.fixture
def jwt_stage(issuer, monkeypatch):
    """The authorizer's settings come from the environment, as on a jwt stage."""
    monkeypatch.setenv("JWT_ISSUER", issuer.issuer)
    monkeypatch.setenv("JWT_AUDIENCE", issuer.audience)
    jwt_auth.get_verifier.cache_clear()
    yield issuer
    jwt_auth.get_verifier.cache_clear()


# --- settings -----------------------------------------------------------------------------------


def test_settings_default_to_rs256_and_es256_and_discovery():
    settings = jwt_settings_from_environ({"JWT_ISSUER": "https://idp.example.com/", "JWT_AUDIENCE": "api, other"})
    assert settings == JwtSettings("https://idp.example.com/", ("api", "other"), None, ("RS256", "ES256"))


@pytest.mark.parametrize("algorithms", ["none", "HS256", "RS256,HS512", "RS256,none", " , "])
def test_settings_refuse_none_and_symmetric_algorithms(algorithms):
    environ = {"JWT_ISSUER": "https://idp.example.com", "JWT_AUDIENCE": "api", "JWT_ALGORITHMS": algorithms}
    with pytest.raises(GatewayMisconfigured, match="JWT_ALGORITHMS"):
        jwt_settings_from_environ(environ)


@pytest.mark.parametrize("environ, named", [
    ({"JWT_AUDIENCE": "api"}, "JWT_ISSUER"),
    ({"JWT_ISSUER": "https://idp.example.com"}, "JWT_AUDIENCE"),
    ({"JWT_ISSUER": "http://idp.example.com", "JWT_AUDIENCE": "api"}, "JWT_ISSUER must be an https"),
    ({"JWT_ISSUER": "https://idp.example.com", "JWT_AUDIENCE": "api", "JWT_JWKS_URL": "file:///etc/passwd"}, "JWT_JWKS_URL"),
])
def test_settings_name_the_missing_or_unsafe_setting(environ, named):
    with pytest.raises(GatewayMisconfigured, match=named):
        jwt_settings_from_environ(environ)


def test_plain_http_is_accepted_only_for_a_loopback_issuer():
    settings = jwt_settings_from_environ({"JWT_ISSUER": "http://127.0.0.1:9000", "JWT_AUDIENCE": "api"})
    assert settings.issuer == "http://127.0.0.1:9000"


# --- good tokens ----------------------------------------------------------------------------------


def test_valid_token_gives_its_verified_claims(issuer, verifier):
    claims = verifier.claims(issuer.mint("ada", groups=["approvers"], scopes=["workflows/start"]))
    assert (claims["sub"], claims["groups"], claims["scope"]) == ("ada", ["approvers"], "workflows/start")


def test_clock_skew_of_up_to_60_seconds_is_tolerated(issuer, verifier):
    now = int(time.time())
    assert verifier.claims(issuer.mint("ada", exp=now - 50, iat=now - 600, nbf=now - 600))["sub"] == "ada"
    assert verifier.claims(issuer.mint("ada", nbf=now + 50, iat=now + 50))["sub"] == "ada"


def test_authorizer_allows_every_route_of_the_api_with_string_context(jwt_stage):
    token = jwt_stage.mint("ada", groups=["approvers", "night shift"], scopes=["a/b", "c"])
    answer = identity.jwt_authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}, None)
    # API Gateway caches this per token for all routes: it must cover the whole API, every method
    assert answer["policyDocument"]["Statement"] == [{
        "Action": "execute-api:Invoke", "Effect": "Allow",
        "Resource": ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/*/*"],
    }]
    assert answer["principalId"] == "ada"
    assert answer["context"] == {"callerType": "jwt", "sub": "ada", "groups": '["approvers", "night shift"]', "scopes": "a/b c"}
    assert all(isinstance(value, str) for value in answer["context"].values())
    # And the gateway reads the same caller back from the request context
    assert identity.caller_record({"authorizer": {**answer["context"], "principalId": "ada"}}) == {
        "type": "jwt", "id": "ada", "groups": ["approvers", "night shift"], "scopes": ["a/b", "c"]}


@pytest.mark.parametrize("header", ["bearer {}", "Bearer  {} "])
def test_bearer_scheme_is_case_insensitive(jwt_stage, header):
    token = jwt_stage.mint("ada")
    assert authorize(AuthRequest("TOKEN", header.format(token), METHOD_ARN)).principal_id == "ada"


@pytest.mark.parametrize("header", ["", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "AWS4-HMAC-SHA256 Credential=x"])
def test_authorization_header_without_a_bearer_token_is_refused(jwt_stage, header):
    with pytest.raises(Unauthorized) as refused:
        authorize(AuthRequest("TOKEN", header, METHOD_ARN))
    assert str(refused.value) == "Unauthorized"


# --- hostile tokens -------------------------------------------------------------------------------


def test_every_hostile_token_is_refused_with_unauthorized(jwt_stage):
    # Given tokens that each break one rule (alg none, HS256 keyed with the public key, expired, ...)
    hostile = hostile_tokens(jwt_stage)
    assert len(hostile) >= 15
    # When the authorizer sees each of them, Then each is refused with API Gateway's 401 message
    for name, token in hostile.items():
        with pytest.raises(Unauthorized) as refused:
            identity.jwt_authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}, None)
        assert str(refused.value) == "Unauthorized", name
    # While a good token from the same issuer still passes
    assert authorize(AuthRequest("TOKEN", f"Bearer {jwt_stage.mint('ada')}", METHOD_ARN)).principal_id == "ada"


def test_pyjwt_itself_would_accept_the_hs256_forgery_if_algorithms_came_from_the_token(issuer):
    # Why the algorithm list comes from configuration only: the forged token is a valid HS256
    # token for anyone who uses the public key as an HMAC secret.
    from tests.auth.jwt_support import hs256_with_public_key

    forged = hs256_with_public_key(issuer, issuer.claims("mallory"))
    assert jwt.get_unverified_header(forged)["alg"] == "HS256"
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(forged, key="unused", algorithms=["RS256", "ES256"], audience=issuer.audience)


def test_generated_malformed_tokens_are_all_refused_and_none_crashes(jwt_stage):
    # Given 1,500 seeded malformed tokens (mutations of a valid one, wrong headers, junk)
    tokens = malformed_tokens(jwt_stage, 1500)
    outcomes = {"refused": 0}
    # When each goes through the authorizer exactly as API Gateway would call it
    for token in tokens:
        try:
            identity.jwt_authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}, None)
        except Unauthorized:
            outcomes["refused"] += 1
    # Then none was allowed, and nothing but Unauthorized (API Gateway's 401) came out
    assert outcomes == {"refused": 1500}


# --- JWKS: caching, rotation, outages -------------------------------------------------------------


def test_jwks_is_fetched_once_and_then_served_from_the_cache(issuer, verifier):
    for _ in range(20):
        verifier.claims(issuer.mint("ada"))
    assert (verifier.keys.fetches, issuer.jwks_requests) == (1, 1)


def test_a_flood_of_unknown_kids_refreshes_the_jwks_at_most_once_a_minute(issuer, verifier, clock):
    verifier.claims(issuer.mint("ada"))
    for kid in range(200):
        with pytest.raises(Unauthorized):
            verifier.claims(issuer.mint("ada", headers={"kid": f"random-{kid}"}))
        clock.now += 0.5  # 100 s in all
    assert verifier.keys.fetches == 2  # the first fetch, then one refresh after 60 s
    assert issuer.jwks_requests == 2


def test_rotation_to_a_new_kid_is_accepted_after_the_refresh_interval(issuer, verifier, clock):
    verifier.claims(issuer.mint("ada"))
    issuer.rotate(keep_old=False)
    rotated = issuer.mint("ada")
    clock.now += 10
    with pytest.raises(Unauthorized):  # inside the minute: no refresh yet
        verifier.claims(rotated)
    clock.now += 60
    assert verifier.claims(rotated)["sub"] == "ada"
    assert verifier.keys.fetches == 2


def test_rotation_is_picked_up_at_once_by_a_container_that_has_not_fetched_yet(issuer, verifier):
    issuer.rotate(keep_old=True)
    assert verifier.claims(issuer.mint("ada"))["sub"] == "ada"


def test_jwks_down_refuses_the_request_and_logs_an_error(jwt_stage, caplog):
    jwt_stage.available = False
    with caplog.at_level(logging.ERROR, logger="sfn_gateway.auth"), pytest.raises(Unauthorized):
        authorize(AuthRequest("TOKEN", f"Bearer {jwt_stage.mint('ada')}", METHOD_ARN))
    assert any("JWKS unavailable" in record.getMessage() and record.levelno == logging.ERROR for record in caplog.records)


def test_jwks_down_after_a_successful_fetch_keeps_known_keys_working(issuer, verifier, clock, caplog):
    verifier.claims(issuer.mint("ada"))
    issuer.available = False
    clock.now += 120
    with caplog.at_level(logging.ERROR, logger="sfn_gateway.auth"), pytest.raises(Unauthorized):
        verifier.claims(issuer.mint("ada", headers={"kid": "rotated-but-unreachable"}))
    assert verifier.claims(issuer.mint("bob"))["sub"] == "bob"
    assert any("JWKS refresh failed" in record.getMessage() for record in caplog.records)


def test_after_a_failed_first_fetch_the_idp_is_not_hammered(issuer, verifier, clock):
    issuer.available = False
    for _ in range(50):
        with pytest.raises(Unauthorized):
            verifier.claims(issuer.mint("ada"))
    assert issuer.jwks_requests == 1
    issuer.available = True
    clock.now += 6
    assert verifier.claims(issuer.mint("ada"))["sub"] == "ada"


def test_discovery_naming_another_issuer_is_refused(issuer, clock):
    settings = settings_for(issuer, issuer=issuer.issuer + "/")  # not the document's issuer
    verifier = TokenVerifier(settings, KeySet(settings, clock=clock))
    with pytest.raises(Unauthorized):
        verifier.claims(issuer.mint("ada", iss=settings.issuer))
    assert issuer.jwks_requests == 0


def test_explicit_jwks_url_skips_discovery(issuer, clock):
    calls = []

    def fetch(url):
        calls.append(url)
        return jwt_auth.fetch_json(url)

    settings = settings_for(issuer, jwks_url=issuer.url + "/jwks.json")
    verifier = TokenVerifier(settings, KeySet(settings, fetch=fetch, clock=clock))
    assert verifier.claims(issuer.mint("ada"))["sub"] == "ada"
    assert calls == [issuer.url + "/jwks.json"]


def test_keys_for_algorithms_outside_the_allowed_list_are_not_used(issuer, clock):
    settings = settings_for(issuer, algorithms=("ES256",))
    verifier = TokenVerifier(settings, KeySet(settings, clock=clock))
    with pytest.raises(Unauthorized):
        verifier.claims(issuer.mint("ada"))


def test_jwks_documents_that_are_not_key_sets_make_the_issuer_unavailable(issuer, clock):
    settings = settings_for(issuer, jwks_url="http://127.0.0.1:1/jwks.json")
    for document in ({"keys": []}, {"keys": "x"}, {"nothing": 1}):
        verifier = TokenVerifier(settings, KeySet(settings, fetch=lambda url, d=document: d, clock=clock))
        with pytest.raises(Unauthorized):
            verifier.claims(issuer.mint("ada"))


def test_fetch_json_reports_unreachable_and_non_object_answers():
    with pytest.raises(jwt_auth.JwksUnavailable):
        jwt_auth.fetch_json("http://127.0.0.1:1/jwks.json")
    with DevIssuer() as other:
        assert json.loads(json.dumps(jwt_auth.fetch_json(other.url + "/jwks.json")))["keys"][0]["kid"] == other.kid
        with pytest.raises(jwt_auth.JwksUnavailable):
            jwt_auth.fetch_json(other.url + "/missing")


def test_a_key_the_issuer_withdrew_stops_being_trusted_within_the_hour(issuer, verifier, clock):
    old_token = issuer.mint("ada")
    verifier.claims(old_token)
    issuer.rotate(keep_old=False)
    clock.now += 1800
    assert verifier.claims(old_token)["sub"] == "ada"  # cached keys are trusted between refreshes
    clock.now += 1801
    with pytest.raises(Unauthorized):
        verifier.claims(old_token)
    assert verifier.claims(issuer.mint("ada"))["sub"] == "ada"
    assert verifier.keys.fetches == 2


def test_the_deployed_handler_string_works_alone_without_app_py_or_boto3(issuer):
    # Given what Lambda does with the authorizer function's handler string, in a fresh process
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import importlib, json, sys; "
        "module, name = 'chalicelib.auth.identity.jwt_authorizer'.rsplit('.', 1); "
        "handler = getattr(importlib.import_module(module), name); "
        "event = {'type': 'TOKEN', 'authorizationToken': sys.argv[1], 'methodArn': sys.argv[2]}; "
        "answer = handler(event, None); "
        "print(json.dumps({'principal': answer['principalId'], "
        "'loaded': sorted(m for m in ('app', 'boto3', 'chalicelib.stepfunctions.service') if m in sys.modules)}))"
    )
    env = {"PATH": "/usr/bin:/bin", "JWT_ISSUER": issuer.issuer, "JWT_AUDIENCE": issuer.audience}
    done = subprocess.run([sys.executable, "-c", code, f"Bearer {issuer.mint('ada')}", METHOD_ARN],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60)
    # Then it verifies the token and allows, having loaded neither the API nor the AWS SDK
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"principal": "ada", "loaded": []}
    # And a bad token fails the invocation with exactly "Unauthorized" (API Gateway's 401)
    refused = subprocess.run([sys.executable, "-c", code, "Bearer nope", METHOD_ARN],
                             cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == "chalicelib.auth.jwt_auth.Unauthorized: Unauthorized"
