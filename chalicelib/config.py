"""The stage's configuration, read from the environment once and validated."""
import dataclasses
import functools
import json
import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse, urlsplit

from chalicelib.budget import API_GATEWAY_TIMEOUT_SECONDS
from chalicelib.errors import GatewayError, GatewayMisconfigured
from chalicelib.registry import KMS_KEY_ARN, STATE_MACHINE_ARN, StateMachine, StateMachineRegistry

_STATE_MACHINE_TYPES = ("STANDARD", "EXPRESS")
_STATE_MACHINE_KEYS = {"arn", "type", "passCallerContext", "kmsKeyArn", "ownerOnly"}
_METRICS_NAMESPACE = re.compile(r"^[A-Za-z0-9.\-_/#:]{1,255}$")


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway reads from its stage's environment variables."""

    registry: StateMachineRegistry
    region: str
    endpoint_url: str | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    sync_read_timeout: float
    task_routes: bool
    metrics_namespace: str | None
    access_rules: object = None  # chalicelib.access.AccessRules, or None: every caller may do everything
    webhooks: tuple = ()
    webhooks_allow_local: bool = False
    # The SSM SecureString that keys owner tags, Idempotency-Key names and listing tokens.
    stage_secret_parameter: str | None = None
    stage_secret_kms_key_arn: str | None = None  # only for the IAM policy (tools/policy.py)


def _fail(message: str) -> GatewayMisconfigured:
    return GatewayMisconfigured(f"Invalid gateway configuration: {message}")


def _require_object(where: str, entry: object, allowed, shape: str) -> None:
    """A configuration entry is a JSON object with only the allowed keys."""
    if not isinstance(entry, dict):
        raise _fail(f"{where} must be an object with {shape}.")
    unknown = set(entry) - set(allowed)
    if unknown:
        raise _fail(f"{where} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}.")


def _json_list(key: str, raw: str, items: str) -> list:
    """A setting that holds a JSON list, or a message naming the setting and what it must hold."""
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise _fail(f"{key} is not valid JSON ({err}).") from err
    if not isinstance(entries, list):
        raise _fail(f"{key} must be a JSON list of {items}.")
    return entries


def _parse_state_machine(name: str, entry: object) -> StateMachine:
    _require_object(f'STATE_MACHINES["{name}"]', entry, _STATE_MACHINE_KEYS, '"arn" and "type"')
    arn = entry.get("arn")
    if not isinstance(arn, str) or not STATE_MACHINE_ARN.match(arn):
        raise _fail(
            f'STATE_MACHINES["{name}"].arn must be a state machine ARN like '
            f'"arn:aws:states:us-east-1:123456789012:stateMachine:orders", optionally with a version '
            f'(":3") or an alias (":live"), got {arn!r}.'
        )
    sm_type = entry.get("type", "STANDARD")
    if sm_type not in _STATE_MACHINE_TYPES:
        raise _fail(f'STATE_MACHINES["{name}"].type must be STANDARD or EXPRESS, got {sm_type!r}.')
    pass_caller = entry.get("passCallerContext", False)
    if not isinstance(pass_caller, bool):
        raise _fail(f'STATE_MACHINES["{name}"].passCallerContext must be true or false.')
    kms_key_arn = entry.get("kmsKeyArn")
    if kms_key_arn is not None and not (isinstance(kms_key_arn, str) and KMS_KEY_ARN.match(kms_key_arn)):
        raise _fail(
            f'STATE_MACHINES["{name}"].kmsKeyArn must be a KMS key ARN like '
            f'"arn:aws:kms:us-east-1:123456789012:key/<key id>", got {kms_key_arn!r}.'
        )
    owner_only = entry.get("ownerOnly", False)
    if not isinstance(owner_only, bool):
        raise _fail(f'STATE_MACHINES["{name}"].ownerOnly must be true or false.')
    if owner_only and sm_type == "EXPRESS":
        raise _fail(
            f'STATE_MACHINES["{name}"].ownerOnly applies to STANDARD machines only '
            "(Step Functions keeps no execution records for EXPRESS ones); remove it."
        )
    return StateMachine(
        name=name, arn=arn, type=sm_type, pass_caller_context=pass_caller, kms_key_arn=kms_key_arn,
        owner_only=owner_only,
    )


def parse_state_machines(raw: str | None) -> StateMachineRegistry:
    """Build the allow-list from the STATE_MACHINES JSON text."""
    if not raw:
        raise _fail("STATE_MACHINES is not set; it must map short names to {\"arn\", \"type\"}.")
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise _fail(f"STATE_MACHINES is not valid JSON ({err}).") from err
    if not isinstance(entries, dict) or not entries:
        raise _fail("STATE_MACHINES must be a non-empty JSON object.")
    machines = [_parse_state_machine(name, entry) for name, entry in entries.items()]
    arns = [machine.arn for machine in machines]
    if len(set(arns)) != len(arns):
        raise _fail("STATE_MACHINES lists the same ARN under two names.")
    return StateMachineRegistry(machines)


def _number(environ, key: str, default: float, cast=float):
    raw = environ.get(key)
    if raw in (None, ""):
        return default
    try:
        value = cast(raw)
    except ValueError as err:
        raise _fail(f"{key} must be a number, got {raw!r}.") from err
    if value <= 0:
        raise _fail(f"{key} must be positive, got {raw!r}.")
    return value


def _switch(environ, key: str, default: str) -> bool:
    raw = (environ.get(key) or default).lower()
    if raw not in ("on", "off"):
        raise _fail(f"{key} must be on or off, got {raw!r}.")
    return raw == "on"


def _metrics_namespace(environ) -> str | None:
    if not _switch(environ, "METRICS", "on"):
        return None
    namespace = environ.get("METRICS_NAMESPACE") or "sfn-gateway"
    if not _METRICS_NAMESPACE.match(namespace):
        raise _fail(f"METRICS_NAMESPACE must be 1-255 of A-Z a-z 0-9 . - _ / # :, got {namespace!r}.")
    return namespace


def config_from_environ(environ) -> GatewayConfig:
    """Build and validate the configuration from an environment mapping."""
    registry = parse_state_machines(environ.get("STATE_MACHINES"))
    _check_owner_only(registry)
    stage_secret_parameter = _stage_secret_parameter(environ, registry)
    config = GatewayConfig(
        registry=registry,
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=environ.get("SFN_ENDPOINT_URL") or None,
        connect_timeout=_number(environ, "SFN_CONNECT_TIMEOUT", 2.0),
        read_timeout=_number(environ, "SFN_READ_TIMEOUT", 6.0),
        max_attempts=_number(environ, "SFN_MAX_ATTEMPTS", 3, cast=int),
        sync_read_timeout=_number(environ, "SFN_SYNC_READ_TIMEOUT", 25.0),
        # Task tokens are bearer capabilities for ANY workflow in the account: opt in.
        task_routes=_switch(environ, "TASK_ROUTES", "off"),
        metrics_namespace=_metrics_namespace(environ),
        access_rules=parse_access_rules(environ.get("ACCESS_RULES"), registry),
        # Only the local stage sets this: http:// and loopback/private receivers (the demo
        # receiver on 127.0.0.1). Every deployed stage keeps the SSRF guard.
        webhooks_allow_local=_switch(environ, "WEBHOOKS_ALLOW_LOCAL", "off"),
        stage_secret_parameter=stage_secret_parameter,
        stage_secret_kms_key_arn=_stage_secret_kms_key_arn(environ, stage_secret_parameter),
    )
    # Subscriptions name state machines, so they are read once the allow-list exists.
    config = dataclasses.replace(
        config, webhooks=parse_webhooks(environ.get("WEBHOOKS"), registry, config.webhooks_allow_local)
    )
    worst_case = (config.connect_timeout + config.read_timeout) * config.max_attempts
    if worst_case >= API_GATEWAY_TIMEOUT_SECONDS:
        raise _fail(
            f"(SFN_CONNECT_TIMEOUT + SFN_READ_TIMEOUT) x SFN_MAX_ATTEMPTS = {worst_case:g} s "
            f"must stay under API Gateway's {API_GATEWAY_TIMEOUT_SECONDS} s limit."
        )
    if config.connect_timeout + config.sync_read_timeout >= API_GATEWAY_TIMEOUT_SECONDS:
        raise _fail(
            f"SFN_CONNECT_TIMEOUT + SFN_SYNC_READ_TIMEOUT must stay under API Gateway's "
            f"{API_GATEWAY_TIMEOUT_SECONDS} s limit."
        )
    return config


# Step Functions publishes status-change events for these; RUNNING and PENDING_REDRIVE
# are not "ends" and are not offered.
WEBHOOK_STATUSES = ("ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT")
_WEBHOOK_KEYS = {"id", "url", "stateMachines", "statuses", "secretParameter", "kmsKeyArn"}
_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# SSM parameter names: letters, digits, _.-/ (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html).
_PARAMETER_NAME = re.compile(r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


@dataclass(frozen=True)
class WebhookSubscription:
    """One receiver of signed completion webhooks for some state machines and statuses."""

    id: str
    url: str
    state_machine_arns: tuple
    statuses: tuple
    secret_parameter: str
    kms_key_arn: str | None = None


def _webhook_url(where: str, url: object, allow_local: bool) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    schemes = ("https", "http") if allow_local else ("https",)
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        raise _fail(
            f"{where}.url must be an https:// URL (http:// only with WEBHOOKS_ALLOW_LOCAL=on on the local stage), "
            f"got {url!r}."
        )
    if parts.username or parts.password or parts.fragment:
        raise _fail(f"{where}.url must not carry credentials or a #fragment; sign with secretParameter instead.")
    # Only webhook stages pay for the address checks at cold start.
    from chalicelib.ssrf import is_ip_literal, is_public_address

    if not allow_local and is_ip_literal(parts.hostname) and not is_public_address(parts.hostname):
        raise _fail(f"{where}.url points at a non-public address ({parts.hostname}); webhooks go to public receivers only.")
    return url


def _webhook_machines(where: str, names: object, registry: StateMachineRegistry) -> tuple:
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise _fail(f"{where}.stateMachines must be a non-empty list of names from STATE_MACHINES.")
    arns = []
    for name in names:
        try:
            machine = registry.resolve(name)
        except GatewayError:
            raise _fail(f"{where}.stateMachines names {name!r}, which is not in STATE_MACHINES.") from None
        if machine.is_express:
            raise _fail(f"{where}.stateMachines names {name!r}, an EXPRESS machine: Step Functions publishes "
                        "status-change events for STANDARD workflows only.")
        # Status-change events name the state machine itself, also for runs of a version or alias.
        arns.append(machine.unqualified_arn)
    return tuple(sorted(set(arns)))


def _parse_webhook(index: int, entry: object, registry: StateMachineRegistry, allow_local: bool) -> WebhookSubscription:
    where = f"WEBHOOKS[{index}]"
    _require_object(where, entry, _WEBHOOK_KEYS, "id, url, stateMachines and secretParameter")
    subscription_id = entry.get("id")
    if not isinstance(subscription_id, str) or not _WEBHOOK_ID.match(subscription_id):
        raise _fail(f"{where}.id must be 1-64 letters, digits, _ or -, got {subscription_id!r}.")
    where = f'WEBHOOKS[{index}] ("{subscription_id}")'
    statuses = entry.get("statuses", list(WEBHOOK_STATUSES))
    if (not isinstance(statuses, list) or not statuses or len(set(statuses)) != len(statuses)
            or not set(statuses) <= set(WEBHOOK_STATUSES)):
        raise _fail(f"{where}.statuses must be a non-empty list without repeats of {list(WEBHOOK_STATUSES)}, got {statuses!r}.")
    parameter = entry.get("secretParameter")
    if not isinstance(parameter, str) or len(parameter) > 2048 or not _PARAMETER_NAME.match(parameter):
        raise _fail(f"{where}.secretParameter must be an SSM parameter name such as "
                    f'"/sfn-gateway/prod/webhooks/{subscription_id}", got {parameter!r}.')
    kms_key_arn = entry.get("kmsKeyArn")
    if kms_key_arn is not None and (not isinstance(kms_key_arn, str) or not KMS_KEY_ARN.match(kms_key_arn)):
        raise _fail(f"{where}.kmsKeyArn must be the ARN of the KMS key encrypting the parameter, got {kms_key_arn!r}.")
    return WebhookSubscription(
        id=subscription_id,
        url=_webhook_url(where, entry.get("url"), allow_local),
        state_machine_arns=_webhook_machines(where, entry.get("stateMachines"), registry),
        statuses=tuple(sorted(statuses)),
        secret_parameter=parameter,
        kms_key_arn=kms_key_arn,
    )


def parse_webhooks(raw: str | None, registry: StateMachineRegistry, allow_local: bool = False) -> tuple:
    """The webhook subscriptions from the WEBHOOKS JSON text (none when unset)."""
    if not raw:
        return ()
    entries = _json_list("WEBHOOKS", raw, "subscriptions")
    subscriptions = tuple(_parse_webhook(i, entry, registry, allow_local) for i, entry in enumerate(entries))
    ids = [subscription.id for subscription in subscriptions]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise _fail(f"WEBHOOKS uses the id {repeated[0]!r} twice; ids name subscriptions in logs and must be unique.")
    return subscriptions


@functools.cache
def get_config() -> GatewayConfig:
    """The stage's configuration, read on first use (never at import time)."""
    return config_from_environ(os.environ)


def _check_owner_only(registry: StateMachineRegistry) -> None:
    # Executions of a version or alias belong to the state machine itself: every entry for it
    # must agree, or an execution started through one entry could be read through another.
    owner_only = {}
    for machine in registry:
        if owner_only.setdefault(machine.unqualified_arn, machine.owner_only) != machine.owner_only:
            raise _fail(
                f'STATE_MACHINES entries for {machine.unqualified_arn} (its versions and aliases included) '
                "must all set the same ownerOnly."
            )


def _stage_secret_parameter(environ, registry: StateMachineRegistry) -> str | None:
    parameter = (environ.get("STAGE_SECRET_PARAMETER") or "").strip() or None
    if parameter is not None and (len(parameter) > 2048 or not _PARAMETER_NAME.match(parameter)):
        raise _fail(f"STAGE_SECRET_PARAMETER must be an SSM parameter name such as \"/sfn-gateway/prod/secret\", "
                    f"got {parameter!r}.")
    owner_only = sorted(machine.name for machine in registry if machine.owner_only)
    if owner_only and parameter is None:
        raise _fail(
            f"STATE_MACHINES marks {owner_only} ownerOnly, which needs STAGE_SECRET_PARAMETER: the name of an SSM "
            "SecureString (at least 32 random characters) that keys the owner tags. `make run` creates the local one."
        )
    return parameter


def _stage_secret_kms_key_arn(environ, parameter: str | None) -> str | None:
    key = (environ.get("STAGE_SECRET_KMS_KEY_ARN") or "").strip() or None
    if key is not None and (parameter is None or not KMS_KEY_ARN.match(key)):
        raise _fail("STAGE_SECRET_KMS_KEY_ARN must be the ARN of the KMS key encrypting STAGE_SECRET_PARAMETER "
                    f"(set that too), got {key!r}.")
    return key


_RULE_KEYS = ("callers", "groups", "scopes", "stateMachines", "operations")


def _rule_strings(index: int, rule: dict, key: str) -> list:
    values = rule.get(key, [])
    if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
        raise _fail(f"ACCESS_RULES[{index}].{key} must be a list of non-empty strings, got {values!r}.")
    return values


def _parse_access_rule(index: int, rule: object, registry: StateMachineRegistry):
    from chalicelib.access import OPERATIONS, WILDCARD, AccessRule

    _require_object(f"ACCESS_RULES[{index}]", rule, _RULE_KEYS, f"keys {list(_RULE_KEYS)}")
    callers, groups, scopes = (_rule_strings(index, rule, key) for key in ("callers", "groups", "scopes"))
    if not (callers or groups or scopes):
        raise _fail(f"ACCESS_RULES[{index}] matches nobody: give at least one of callers, groups or scopes.")
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


def parse_access_rules(raw: str | None, registry: StateMachineRegistry):
    """Build the stage's access rules from the ACCESS_RULES JSON text (None when unset)."""
    if raw is None or not raw.strip():
        return None
    from chalicelib.access import AccessRules

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


def _is_loopback(host: str | None) -> bool:
    # Only JWT stages get here; the API function's cold start does not import ipaddress.
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def check_key_url(key: str, url: str) -> str:
    """The URL, if keys may be fetched from it: https, or http on a loopback host only."""
    # Keys fetched over plain HTTP could be swapped on the way; only a local dev issuer may use it.
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return url
    if parsed.scheme == "http" and _is_loopback(parsed.hostname):
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
    from chalicelib.identity import accept_id_tokens

    return JwtSettings(issuer=issuer, audiences=audiences, jwks_url=jwks_url, algorithms=algorithms,
                       accept_id_tokens=accept_id_tokens(environ))
