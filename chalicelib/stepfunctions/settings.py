"""STATE_MACHINES, the stage's allow-list: parsed and checked here, next to the registry it builds."""
import json

from chalicelib.setting_rules import fail as _fail
from chalicelib.setting_rules import require_object as _require_object
from chalicelib.stepfunctions.registry import KMS_KEY_ARN, STATE_MACHINE_ARN, StateMachine, StateMachineRegistry

_STATE_MACHINE_TYPES = ("STANDARD", "EXPRESS")
_STATE_MACHINE_KEYS = {"arn", "type", "passCallerContext", "kmsKeyArn", "ownerOnly"}


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
