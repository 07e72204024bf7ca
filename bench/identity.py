"""Identity costs per request: JWT verification with a warm JWKS (target ≤ 1 ms) and 100 access rules (≤ 50 µs)."""
import json
import statistics
import sys
import time

from chalice.app import AuthRequest

from chalicelib.auth import jwt_auth
from chalicelib.auth.settings import JwtSettings, parse_access_rules
from chalicelib.stepfunctions.settings import parse_state_machines
from local.issuer import DevIssuer

TOKEN_TARGET_MS = 1.0
RULES_TARGET_US = 50.0
ROUNDS = 2000
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/state-machines"


def _per_call(function, rounds: int) -> list:
    """Seconds per call, measured in 20 batches; returns the batch means."""
    batch = max(1, rounds // 20)
    means = []
    for _ in range(20):
        started = time.perf_counter()
        for _ in range(batch):
            function()
        means.append((time.perf_counter() - started) / batch)
    return means


def token_verification() -> float:
    """Median ms to verify one RS256 token and build the authorizer's answer, JWKS already cached."""
    with DevIssuer() as issuer:
        settings = JwtSettings(issuer.issuer, (issuer.audience,), None, ("RS256", "ES256"))
        verifier = jwt_auth.TokenVerifier(settings)
        token = issuer.mint("ada", groups=["approvers"], scopes=["orders/start"], lifetime=3600)
        request = AuthRequest("TOKEN", f"Bearer {token}", METHOD_ARN)
        jwt_auth.get_verifier.cache_clear()
        original = jwt_auth.get_verifier
        jwt_auth.get_verifier = lambda: verifier
        try:
            jwt_auth.authorize(request)  # warms the JWKS cache: one fetch
            means = _per_call(lambda: jwt_auth.authorize(request).to_dict(request), ROUNDS)
        finally:
            jwt_auth.get_verifier = original
        assert verifier.keys.fetches == 1
    return statistics.median(means) * 1000


def rule_evaluation() -> tuple[float, float]:
    """Median µs to decide one request against 100 rules: (worst case: only the last rule matches, a denial)."""
    machines = {f"m{i}": {"arn": f"arn:aws:states:us-east-1:123456789012:stateMachine:m{i}", "type": "STANDARD"} for i in range(20)}
    registry = parse_state_machines(json.dumps(machines))
    rules = [
        {"callers": [f"user-{i}", f"arn:aws:iam::123456789012:role/team-{i}-*"], "groups": [f"group-{i}"],
         "scopes": [f"scope/{i}"], "stateMachines": [f"m{i % 20}", f"m{(i + 7) % 20}"], "operations": ["start", "read"]}
        for i in range(99)
    ] + [{"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]}]
    access = parse_access_rules(json.dumps(rules), registry)
    assert len(access.rules) == 100
    caller = {"type": "jwt", "id": "ada", "groups": ["staff", "approvers"], "scopes": ["openid", "profile"]}
    stranger = {"type": "jwt", "id": "eve", "groups": ["staff"], "scopes": ["openid"]}
    assert access.allows(caller, "stop", "m3") and not access.allows(stranger, "stop", "m3")
    allowed = statistics.median(_per_call(lambda: access.allows(caller, "stop", "m3"), ROUNDS * 5)) * 1e6
    denied = statistics.median(_per_call(lambda: access.allows(stranger, "read", "m3"), ROUNDS * 5)) * 1e6
    return allowed, denied


def main() -> int:
    """Print the two identity numbers against their targets."""
    token_ms = token_verification()
    allowed_us, denied_us = rule_evaluation()
    print(f"JWT verification, warm JWKS (RS256, PyJWT): {token_ms:.3f} ms per request (target ≤ {TOKEN_TARGET_MS:g} ms)")
    print(f"100 access rules: {max(allowed_us, denied_us):.1f} µs per request (target ≤ {RULES_TARGET_US:g} µs)")
    print(f"    allowed by the last rule: {allowed_us:.1f} µs; denied after all 100: {denied_us:.1f} µs")
    return 0 if token_ms <= TOKEN_TARGET_MS and max(allowed_us, denied_us) <= RULES_TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
