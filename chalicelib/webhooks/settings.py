"""WEBHOOKS: the stage's subscriptions to signed completion webhooks, parsed and checked."""
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.errors import GatewayError
from chalicelib.setting_rules import fail as _fail
from chalicelib.setting_rules import json_list as _json_list
from chalicelib.setting_rules import require_object as _require_object
from chalicelib.stepfunctions.registry import KMS_KEY_ARN, StateMachineRegistry

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
    from chalicelib.webhooks.ssrf import is_ip_literal, is_public_address

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
