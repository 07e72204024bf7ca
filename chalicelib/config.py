"""The stage's configuration, read from the environment once; each concern parses and checks its own part."""
import dataclasses
import functools
import os
import re
from dataclasses import dataclass

from chalicelib.approvals.settings import parse_approvals
from chalicelib.auth.settings import parse_access_rules
from chalicelib.setting_rules import fail as _fail
from chalicelib.setting_rules import number as _number
from chalicelib.setting_rules import switch as _switch
from chalicelib.stepfunctions.budget import API_GATEWAY_TIMEOUT_SECONDS
from chalicelib.stepfunctions.registry import StateMachineRegistry
from chalicelib.stepfunctions.settings import _check_owner_only, parse_state_machines
from chalicelib.webhooks.settings import parse_webhooks

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
    access_rules: object = None  # chalicelib.auth.access.AccessRules, or None: every caller may do everything
    webhooks: tuple = ()
    webhooks_allow_local: bool = False
    approvals: object = None  # chalicelib.approvals.settings.ApprovalsSettings, or None: APPROVALS is off


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
        approvals=parse_approvals(environ),
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


@functools.cache
def get_config() -> GatewayConfig:
    """The stage's configuration, read on first use (never at import time)."""
    return config_from_environ(os.environ)
