"""STATE_MACHINES (the stage's allow-list, with input schemas) and API_TIMEOUT_SECONDS: parsed and checked here."""
import json

from chalicelib.setting_rules import fail as _fail
from chalicelib.setting_rules import require_object as _require_object
from chalicelib.stepfunctions.budget import API_GATEWAY_TIMEOUT_SECONDS, MAX_API_TIMEOUT_SECONDS
from chalicelib.stepfunctions.registry import KMS_KEY_ARN, STATE_MACHINE_ARN, StateMachine, StateMachineRegistry

_STATE_MACHINE_TYPES = ("STANDARD", "EXPRESS")
_STATE_MACHINE_KEYS = {"arn", "type", "passCallerContext", "kmsKeyArn", "ownerOnly", "inputSchema"}


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
        owner_only=owner_only, input_schema=_input_schema(name, entry),
    )


def _input_schema(name: str, entry: dict):
    if "inputSchema" not in entry:
        return None
    # Only stages with input schemas import (and pay for) the validator.
    from chalicelib.stepfunctions.input_schemas import InputSchema, InvalidInputSchema

    try:
        return InputSchema(entry["inputSchema"])
    except InvalidInputSchema as err:
        reason = " ".join(str(err).split())
        raise _fail(f'STATE_MACHINES["{name}"].inputSchema {reason}.') from None


def api_timeout_seconds(environ) -> int:
    """API_TIMEOUT_SECONDS: whole seconds from 1 to 300 (default 29)."""
    raw = environ.get("API_TIMEOUT_SECONDS")
    if raw in (None, ""):
        return API_GATEWAY_TIMEOUT_SECONDS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_API_TIMEOUT_SECONDS:
        raise _fail(f"API_TIMEOUT_SECONDS must be a whole number of seconds from 1 to {MAX_API_TIMEOUT_SECONDS} "
                    f"(API Gateway's integration timeout; above {API_GATEWAY_TIMEOUT_SECONDS} needs a Regional API "
                    f"and a quota increase), got {raw!r}.")
    return int(raw)


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
