"""The stage's configuration, read from the environment once and validated."""
import functools
import json
import os
import re
from dataclasses import dataclass

from chalicelib.budget import API_GATEWAY_TIMEOUT_SECONDS
from chalicelib.errors import GatewayMisconfigured
from chalicelib.registry import KMS_KEY_ARN, STATE_MACHINE_ARN, StateMachine, StateMachineRegistry

_STATE_MACHINE_TYPES = ("STANDARD", "EXPRESS")
_STATE_MACHINE_KEYS = {"arn", "type", "passCallerContext", "kmsKeyArn"}
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


def _fail(message: str) -> GatewayMisconfigured:
    return GatewayMisconfigured(f"Invalid gateway configuration: {message}")


def _parse_state_machine(name: str, entry: object) -> StateMachine:
    if not isinstance(entry, dict):
        raise _fail(f'STATE_MACHINES["{name}"] must be an object with "arn" and "type".')
    unknown = set(entry) - _STATE_MACHINE_KEYS
    if unknown:
        raise _fail(f'STATE_MACHINES["{name}"] has unknown keys {sorted(unknown)}.')
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
    return StateMachine(
        name=name, arn=arn, type=sm_type, pass_caller_context=pass_caller, kms_key_arn=kms_key_arn
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
    config = GatewayConfig(
        registry=parse_state_machines(environ.get("STATE_MACHINES")),
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=environ.get("SFN_ENDPOINT_URL") or None,
        connect_timeout=_number(environ, "SFN_CONNECT_TIMEOUT", 2.0),
        read_timeout=_number(environ, "SFN_READ_TIMEOUT", 6.0),
        max_attempts=_number(environ, "SFN_MAX_ATTEMPTS", 3, cast=int),
        sync_read_timeout=_number(environ, "SFN_SYNC_READ_TIMEOUT", 25.0),
        # Task tokens are bearer capabilities for ANY workflow in the account: opt in.
        task_routes=_switch(environ, "TASK_ROUTES", "off"),
        metrics_namespace=_metrics_namespace(environ),
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


@functools.cache
def get_config() -> GatewayConfig:
    """The stage's configuration, read on first use (never at import time)."""
    return config_from_environ(os.environ)
