"""The stage's configuration, read from the environment once; each concern parses and checks its own part."""
import dataclasses
import functools
import os
import re
from dataclasses import dataclass

from chalicelib.setting_rules import SSM_PARAMETER_MAX_LENGTH, SSM_PARAMETER_NAME
from chalicelib.setting_rules import fail as _fail
from chalicelib.setting_rules import number as _number
from chalicelib.setting_rules import switch as _switch
from chalicelib.stepfunctions.budget import API_GATEWAY_TIMEOUT_SECONDS, max_wait_seconds
from chalicelib.stepfunctions.registry import KMS_KEY_ARN, StateMachineRegistry
from chalicelib.stepfunctions.settings import _check_owner_only, api_timeout_seconds, parse_state_machines

_METRICS_NAMESPACE = re.compile(r"^[A-Za-z0-9.\-_/#:]{1,255}\Z")


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
    # API Gateway's integration timeout for the stage (`make package` sets it on every method).
    api_timeout_seconds: int = API_GATEWAY_TIMEOUT_SECONDS
    # The SSM SecureString that keys owner tags, Idempotency-Key names and listing tokens
    # (chalicelib.auth.ownership), read once per container by chalicelib.factory.get_stage_secret.
    stage_secret_parameter: str | None = None
    stage_secret_kms_key_arn: str | None = None  # only for the IAM policy (tools/policy.py)

    @property
    def max_wait_seconds(self) -> int:
        return max_wait_seconds(self.api_timeout_seconds)


def _metrics_namespace(environ) -> str | None:
    if not _switch(environ, "METRICS", "on"):
        return None
    namespace = environ.get("METRICS_NAMESPACE") or "sfn-gateway"
    if not _METRICS_NAMESPACE.match(namespace):
        raise _fail(f"METRICS_NAMESPACE must be 1-255 of A-Z a-z 0-9 . - _ / # :, got {namespace!r}.")
    return namespace


# Most stages set neither ACCESS_RULES, WEBHOOKS nor APPROVALS: their cold start then neither loads nor
# compiles those parsers (Lambda compiles every module it imports, its code directory being
# read-only). Each parser still treats an unset value the same way itself.
def _access_rules(raw: str | None, registry: StateMachineRegistry):
    if raw is None or not raw.strip():
        return None
    from chalicelib.auth.settings import parse_access_rules

    return parse_access_rules(raw, registry)


def _approvals(environ):
    if not (environ.get("APPROVALS") or "").strip():
        return None
    from chalicelib.approvals.settings import parse_approvals

    return parse_approvals(environ)


def _webhooks(raw: str | None, registry: StateMachineRegistry, allow_local: bool) -> tuple:
    if not raw:
        return ()
    from chalicelib.webhooks.settings import parse_webhooks

    return parse_webhooks(raw, registry, allow_local)


def _stage_secret_parameter(environ, registry: StateMachineRegistry) -> str | None:
    # The secret serves two concerns (auth's owner tags, http's Idempotency-Key names): read here, once.
    parameter = (environ.get("STAGE_SECRET_PARAMETER") or "").strip() or None
    if parameter is not None and (len(parameter) > SSM_PARAMETER_MAX_LENGTH or not SSM_PARAMETER_NAME.match(parameter)):
        raise _fail(f"STAGE_SECRET_PARAMETER must be an SSM parameter name such as \"/sfn-gateway/prod/stage-secret\", "
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
        access_rules=_access_rules(environ.get("ACCESS_RULES"), registry),
        # Only the local stage sets this: http:// and loopback/private receivers (the demo
        # receiver on 127.0.0.1). Every deployed stage keeps the SSRF guard.
        webhooks_allow_local=_switch(environ, "WEBHOOKS_ALLOW_LOCAL", "off"),
        approvals=_approvals(environ),
        api_timeout_seconds=api_timeout_seconds(environ),
        stage_secret_parameter=stage_secret_parameter,
        stage_secret_kms_key_arn=_stage_secret_kms_key_arn(environ, stage_secret_parameter),
    )
    # Subscriptions name state machines, so they are read once the allow-list exists.
    config = dataclasses.replace(
        config, webhooks=_webhooks(environ.get("WEBHOOKS"), registry, config.webhooks_allow_local)
    )
    limit = config.api_timeout_seconds
    worst_case = (config.connect_timeout + config.read_timeout) * config.max_attempts
    if worst_case >= limit:
        raise _fail(
            f"(SFN_CONNECT_TIMEOUT + SFN_READ_TIMEOUT) x SFN_MAX_ATTEMPTS = {worst_case:g} s "
            f"must stay under API Gateway's {limit} s limit (API_TIMEOUT_SECONDS)."
        )
    if config.connect_timeout + config.sync_read_timeout >= limit:
        raise _fail(
            f"SFN_CONNECT_TIMEOUT + SFN_SYNC_READ_TIMEOUT must stay under API Gateway's "
            f"{limit} s limit (API_TIMEOUT_SECONDS)."
        )
    return config


@functools.cache
def get_config() -> GatewayConfig:
    """The stage's configuration, read on first use (never at import time)."""
    return config_from_environ(os.environ)
