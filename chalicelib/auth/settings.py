"""The settings of auth: ACCESS_RULES (on first use) and the JWT authorizer's issuer, audience and keys."""
from dataclasses import dataclass
from urllib.parse import urlparse

from chalicelib.setting_rules import fail as _fail
from chalicelib.setting_rules import is_loopback_host
from chalicelib.setting_rules import json_list as _json_list
from chalicelib.setting_rules import require_object as _require_object

_RULE_KEYS = ("callers", "groups", "scopes", "stateMachines", "operations")


def _rule_strings(index: int, rule: dict, key: str) -> list:
    values = rule.get(key, [])
    if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
        raise _fail(f"ACCESS_RULES[{index}].{key} must be a list of non-empty strings, got {values!r}.")
    return values


def _parse_access_rule(index: int, rule: object, registry):
    from chalicelib.auth.access import OPERATIONS, WILDCARD, AccessRule

    _require_object(f"ACCESS_RULES[{index}]", rule, _RULE_KEYS, f"keys {list(_RULE_KEYS)}")
    callers, groups, scopes = (_rule_strings(index, rule, key) for key in ("callers", "groups", "scopes"))
    if not (callers or groups or scopes):
        raise _fail(f"ACCESS_RULES[{index}] matches nobody: give at least one of callers, groups or scopes.")
    federated = [c for c in callers if c.endswith(WILDCARD) and c != WILDCARD and ":federated-user/" in c]
    if federated:
        # Whoever calls GetFederationToken picks the name: a prefix would let them pick their way in.
        raise _fail(f"ACCESS_RULES[{index}].callers matches federated users by a prefix ({federated}); name each "
                    "federated user by its full ARN, arn:aws:sts::<account>:federated-user/<name>.")
    operations = _rule_strings(index, rule, "operations")
    bad_operations = sorted(set(operations) - set(OPERATIONS) - {WILDCARD})
    if not operations or bad_operations:
        raise _fail(
            f"ACCESS_RULES[{index}].operations has unknown operations {bad_operations or operations!r}; "
            f"use {list(OPERATIONS)} or \"*\"."
        )
    machines = _rule_strings(index, rule, "stateMachines")
    known = {machine.name for machine in registry}
    bad_machines = sorted(set(machines) - known - {WILDCARD})
    if bad_machines:
        raise _fail(
            f"ACCESS_RULES[{index}].stateMachines names {bad_machines}, not in STATE_MACHINES "
            f"(known: {sorted(known)}); use short names or \"*\"."
        )
    if not machines and set(operations) != {"tasks"}:
        raise _fail(f"ACCESS_RULES[{index}] needs stateMachines (short names or \"*\") for {operations}.")
    return AccessRule(
        callers=frozenset(c for c in callers if not (c.endswith(WILDCARD) and c != WILDCARD)),
        caller_prefixes=tuple(c[:-1] for c in callers if c.endswith(WILDCARD) and c != WILDCARD),
        groups=frozenset(groups),
        scopes=frozenset(scopes),
        state_machines=frozenset(machines),
        operations=frozenset(operations),
    )


def parse_access_rules(raw: str | None, registry):
    """Build the stage's access rules from the ACCESS_RULES JSON text (None when unset)."""
    if raw is None or not raw.strip():
        return None
    from chalicelib.auth.access import AccessRules

    rules = _json_list("ACCESS_RULES", raw, "rules")
    return AccessRules(_parse_access_rule(index, rule, registry) for index, rule in enumerate(rules))


# --- the JWT authorizer's settings (jwt stages; read by the authorizer function on first use) ---

# Asymmetric algorithms only: with HS* the "key" would be the IdP's public key, which anyone
# can read (the classic algorithm-confusion forgery); "none" carries no signature at all.
SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DEFAULT_ALGORITHMS = ("RS256", "ES256")


@dataclass(frozen=True)
class JwtSettings:
    """What the JWT authorizer trusts: one issuer, its audience(s), its keys and algorithms."""

    issuer: str
    audiences: tuple
    jwks_url: str | None
    algorithms: tuple
    accept_id_tokens: bool = False


def check_key_url(key: str, url: str) -> str:
    """The URL, if keys may be fetched from it: https, or http on a loopback host only."""
    # Keys fetched over plain HTTP could be swapped on the way; only a local dev issuer may use it.
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return url
    if parsed.scheme == "http" and is_loopback_host(parsed.hostname):
        return url
    raise _fail(f"{key} must be an https:// URL (http:// only on 127.0.0.1 / localhost), got {url!r}.")


def jwt_settings_from_environ(environ) -> JwtSettings:
    """Build and validate the JWT authorizer's settings from an environment mapping."""
    issuer = (environ.get("JWT_ISSUER") or "").strip()
    if not issuer:
        raise _fail("AUTH_MODE=jwt needs JWT_ISSUER, the token issuer URL (the tokens' iss claim).")
    check_key_url("JWT_ISSUER", issuer)
    audiences = tuple(a.strip() for a in (environ.get("JWT_AUDIENCE") or "").split(",") if a.strip())
    if not audiences:
        raise _fail("AUTH_MODE=jwt needs JWT_AUDIENCE, the audience (aud claim) tokens must be issued for.")
    jwks_url = (environ.get("JWT_JWKS_URL") or "").strip() or None
    if jwks_url:
        check_key_url("JWT_JWKS_URL", jwks_url)
    raw_algorithms = environ.get("JWT_ALGORITHMS") or ",".join(DEFAULT_ALGORITHMS)
    algorithms = tuple(a.strip() for a in raw_algorithms.split(",") if a.strip())
    refused = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
    if refused or not algorithms:
        raise _fail(
            f"JWT_ALGORITHMS may only name asymmetric algorithms ({', '.join(SUPPORTED_ALGORITHMS)}); "
            f"refused: {refused or raw_algorithms!r}. 'none' and HS* are never accepted."
        )
    return JwtSettings(issuer=issuer, audiences=audiences, jwks_url=jwks_url, algorithms=algorithms,
                       accept_id_tokens=accept_id_tokens(environ))


def accept_id_tokens(environ) -> bool:
    """ACCEPT_ID_TOKENS (on/off, default off): whether ID tokens may call the API, for issuers that issue nothing else."""
    raw = (environ.get("ACCEPT_ID_TOKENS") or "off").strip().lower()
    if raw not in ("on", "off"):
        raise _fail(f"ACCEPT_ID_TOKENS must be on or off, got {environ.get('ACCEPT_ID_TOKENS')!r}.")
    return raw == "on"
