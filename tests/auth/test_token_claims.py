"""Generated claim sets never yield a group or scope that is not literally in the token (issue 17, item 1).

Tokens are signed by the dev issuer and go through the real JWT authorizer (signature, claims,
authorizer context) and the gateway's reading of that context, exactly as on a jwt stage. Cognito
claims go through the form API Gateway passes them in. ACCESS_FUZZ_EXAMPLES scales the runs
(`make fuzz-access`).
"""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.auth import identity, jwt_auth
from chalicelib.auth.jwt_auth import JwtSettings, KeySet, TokenVerifier, Unauthorized
from chalicelib.errors import CallerRefused
from local.issuer import DevIssuer

EXAMPLES = max(200, int(os.environ.get("ACCESS_FUZZ_EXAMPLES", "500")) // 10)
NOW_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# Strings an attacker would try: separators, JSON-looking text, brackets, unicode, huge values.
TRICKY = st.sampled_from([
    "approvers", "Not approvers", "a,b", "a, b", "[a b]", '["orders/start"]', '"approvers"', "profile,orders/start",
    "orders/start", " ", "", "a\tb", "a\nb", "null", "[]", "{}", "ädmins", "管理者", "a;b", "a|b", "*", "a*",
])
TEXT = st.one_of(TRICKY, st.text(max_size=40), st.text(alphabet=" ,[]\"'{}:;|\\\t\nab*", max_size=30),
                 st.just("x" * 5000))
CLAIM_VALUE = st.one_of(TEXT, st.lists(st.one_of(TEXT, st.integers(), st.none(), st.booleans()), max_size=6),
                        st.integers(), st.none(), st.dictionaries(st.text(max_size=5), TEXT, max_size=2))


def literal_groups(claims: dict) -> set:
    """Every group the token names literally: a string claim whole, a list's string items."""
    found = set()
    for key in ("groups", "cognito:groups"):
        value = claims.get(key)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return found


def literal_scopes(claims: dict) -> set:
    """Every scope the token names: the items of the space-separated scope, an scp list's string items."""
    found = set()
    if isinstance(claims.get("scope"), str):
        found.update(claims["scope"].split(" "))
    if isinstance(claims.get("scp"), list):
        found.update(item for item in claims["scp"] if isinstance(item, str))
    return found


def signed(issuer, claims: dict, headers=None) -> str:
    """A token from the dev issuer with exactly these group and scope claims (and the usual others)."""
    import jwt

    payload = {key: value for key, value in issuer.claims("ada").items() if key not in ("groups", "scope")}
    return jwt.encode({**payload, **claims}, issuer.private_key, algorithm="RS256",
                      headers={"kid": issuer.kid, **(headers or {})})


@pytest.fixture(scope="module")
def issuer():
    with DevIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def verifier(issuer):
    settings = JwtSettings(issuer=issuer.issuer, audiences=(issuer.audience,), jwks_url=None, algorithms=("RS256",))
    return TokenVerifier(settings, KeySet(settings))


def test_generated_token_claims_never_yield_a_group_or_scope_the_token_does_not_name(issuer, verifier):
    @NOW_SETTINGS
    @given(extra=st.dictionaries(st.sampled_from(["groups", "cognito:groups", "scope", "scp"]), CLAIM_VALUE, max_size=4))
    def check(extra):
        token = signed(issuer, extra)
        try:
            claims = verifier.claims(token)
        except Unauthorized:
            return  # e.g. a claim PyJWT refuses: refused, never granted
        context = jwt_auth.authorizer_context(claims)
        assert all(isinstance(value, str) for value in context.values())
        caller = identity.caller_record({"authorizer": context})
        assert set(caller["groups"]) <= literal_groups(extra), (extra, caller)
        assert set(caller["scopes"]) <= literal_scopes(extra), (extra, caller)
        assert all(caller["groups"]) and all(caller["scopes"])

    check()


# Cognito group names: letters, marks, symbols, numbers, punctuation (no whitespace); API Gateway joins them with commas.
COGNITO_GROUP = st.text(alphabet=st.characters(categories=["L", "M", "S", "N", "P"], exclude_characters=",[]"),
                        min_size=1, max_size=20)


@NOW_SETTINGS
@given(groups=st.lists(COGNITO_GROUP, max_size=5, unique=True),
       scopes=st.lists(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
                               min_size=1, max_size=20), max_size=4))
def test_cognito_claims_in_api_gateways_form_give_exactly_the_tokens_groups_and_scopes(groups, scopes):
    claims = {"sub": "5f3e-uuid", "token_use": "access"}
    if groups:
        claims["cognito:groups"] = ",".join(groups)
    if scopes:
        claims["scope"] = " ".join(scopes)
    caller = identity.caller_record({"authorizer": {"claims": claims}})
    assert caller["groups"] == groups and caller["scopes"] == scopes


@NOW_SETTINGS
@given(groups=CLAIM_VALUE, scope=CLAIM_VALUE)
def test_cognito_claims_in_any_other_form_are_refused_or_give_only_comma_separated_names(groups, scope):
    claims = {"sub": "5f3e-uuid", "token_use": "access", "cognito:groups": groups, "scope": scope}
    try:
        caller = identity.caller_record({"authorizer": {"claims": claims}})
    except CallerRefused:
        return
    assert set(caller["groups"]) <= (set(groups.split(",")) if isinstance(groups, str) else set())
    assert set(caller["scopes"]) <= (set(scope.split(" ")) if isinstance(scope, str) else set())
    assert not any(c.isspace() or c in "[]" for group in caller["groups"] for c in group)


@pytest.mark.parametrize("claims, groups, scopes", [
    # The review's reproductions (issue 17, item 1): each used to grant more than the token says
    ({"groups": "Not approvers"}, ["Not approvers"], []),
    ({"groups": "approvers,admins"}, ["approvers,admins"], []),
    ({"scope": "profile,orders/start"}, [], ["profile,orders/start"]),
    ({"scope": '["orders/start"]'}, [], ['["orders/start"]']),
    ({"scp": ["orders/read", 7]}, [], ["orders/read"]),
    ({"groups": ["a b", "c"], "scope": "x  y"}, ["a b", "c"], ["x", "y"]),
])
def test_claims_split_into_extra_grants_no_more(issuer, verifier, claims, groups, scopes):
    token = signed(issuer, claims)
    context = jwt_auth.authorizer_context(verifier.claims(token))
    caller = identity.caller_record({"authorizer": context})
    assert (caller["groups"], caller["scopes"]) == (groups, scopes)
    assert json.loads(context["groups"]) == groups and json.loads(context["scopes"]) == scopes


@pytest.mark.parametrize("claims, headers", [
    ({"token_use": "id"}, None),
    ({"nonce": "n-0S6_WzA2Mj"}, None),
    ({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}, None),
])
def test_id_tokens_are_refused_unless_the_stage_accepts_them(issuer, claims, headers):
    # Item 9: an ID token is for the client app; the API takes access tokens only
    settings = JwtSettings(issuer=issuer.issuer, audiences=(issuer.audience,), jwks_url=None, algorithms=("RS256",))
    token = signed(issuer, claims, headers)
    with pytest.raises(Unauthorized) as refused:
        TokenVerifier(settings, KeySet(settings)).claims(token)
    assert "ID token" in refused.value.reason
    accepting = JwtSettings(**{**settings.__dict__, "accept_id_tokens": True})
    assert TokenVerifier(accepting, KeySet(accepting)).claims(token)["sub"] == "ada"


def test_access_tokens_marked_at_jwt_or_by_cognito_are_accepted(issuer, verifier):
    assert verifier.claims(signed(issuer, {"nonce": "x"}, {"typ": "at+jwt"}))["sub"] == "ada"
    assert verifier.claims(signed(issuer, {"token_use": "access"}))["sub"] == "ada"


def test_accept_id_tokens_is_a_stage_setting_named_in_its_mistake():
    from chalicelib.auth.settings import jwt_settings_from_environ
    from chalicelib.errors import GatewayMisconfigured

    environ = {"JWT_ISSUER": "https://idp.example.com", "JWT_AUDIENCE": "sfn-gateway"}
    assert jwt_settings_from_environ(environ).accept_id_tokens is False
    assert jwt_settings_from_environ({**environ, "ACCEPT_ID_TOKENS": "on"}).accept_id_tokens is True
    with pytest.raises(GatewayMisconfigured, match="ACCEPT_ID_TOKENS must be on or off"):
        jwt_settings_from_environ({**environ, "ACCEPT_ID_TOKENS": "yes"})


def test_the_authorizer_context_carries_the_tokens_exp_and_the_gateway_refuses_it_after_expiry(issuer, verifier):
    # Item 8: API Gateway may replay a cached Allow after the token expired
    token = issuer.mint("ada", lifetime=30)
    context = jwt_auth.authorizer_context(verifier.claims(token))
    exp = int(context["exp"])
    assert identity.caller_record({"authorizer": context}, now=exp + 60)["id"] == "ada"
    with pytest.raises(CallerRefused, match="expired"):
        identity.caller_record({"authorizer": context}, now=exp + 61)
