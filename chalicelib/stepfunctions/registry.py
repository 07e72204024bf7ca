"""The allow-list, and the one owner of Step Functions' ARN formats."""
import re
from dataclasses import dataclass

from chalicelib.errors import InvalidArn, StateMachineNotFound, StateMachineTypeNotSupported
from chalicelib.validation import NAME_PATTERN

_ARN_PREFIX = r"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
# A version number or an alias name qualifies a state machine ARN (blue/green releases).
_QUALIFIER_PATTERN = r"[A-Za-z0-9_.-]{1,80}"
STATE_MACHINE_ARN = re.compile(
    _ARN_PREFIX + r"stateMachine:(?P<name>[^:\s]{1,80})(?::(?P<qualifier>" + _QUALIFIER_PATTERN + "))?$"
)
# Standard: ...:execution:<state machine>:<name>. Express executions started
# asynchronously: ...:express:<state machine>:<name>:<id>.
_EXECUTION_ARN = re.compile(
    _ARN_PREFIX + f"(?P<kind>execution|express):(?P<state_machine>{NAME_PATTERN}):(?P<name>{NAME_PATTERN})"
    f"(?::(?P<express_id>{NAME_PATTERN}))?$"
)
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]{1,128}$")


def unqualified_arn(state_machine_arn: str) -> str:
    """The state machine ARN without its version or alias."""
    match = STATE_MACHINE_ARN.match(state_machine_arn)
    if match is None or not match.group("qualifier"):
        return state_machine_arn
    return state_machine_arn[: -len(match.group("qualifier")) - 1]


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of a STANDARD execution; executions of versions and aliases belong to the state machine."""
    return unqualified_arn(state_machine_arn).replace(":stateMachine:", ":execution:", 1) + ":" + name


@dataclass(frozen=True)
class StateMachine:
    """One allow-listed state machine, version or alias."""

    name: str
    arn: str
    type: str
    pass_caller_context: bool = False
    kms_key_arn: str | None = None
    owner_only: bool = False

    @property
    def is_express(self) -> bool:
        return self.type == "EXPRESS"

    @property
    def unqualified_arn(self) -> str:
        return unqualified_arn(self.arn)

    @property
    def qualifier(self) -> str | None:
        return STATE_MACHINE_ARN.match(self.arn).group("qualifier")

    def summary(self) -> dict:
        """The public description used in listings."""
        return {"name": self.name, "stateMachineArn": self.arn, "type": self.type}


class StateMachineRegistry:
    """Looks up allow-listed state machines; anything else is reported as not found."""

    def __init__(self, machines):
        self._by_name = {machine.name: machine for machine in machines}
        self._by_arn = {machine.arn: machine for machine in machines}
        # Executions name the unqualified state machine even when started through a
        # version or alias; the unqualified entry wins, else the first qualified one.
        self._by_execution_owner = {}
        for machine in sorted(machines, key=lambda m: m.qualifier is not None):
            self._by_execution_owner.setdefault(machine.unqualified_arn, machine)

    def __iter__(self):
        return iter(self._by_name.values())

    def resolve(self, name_or_arn: str | None) -> StateMachine:
        """Find a state machine by short name or by its full ARN."""
        machine = self._by_name.get(name_or_arn) or self._by_arn.get(name_or_arn)
        if machine is None:
            raise StateMachineNotFound(
                f"State machine {name_or_arn!r} is not exposed by this gateway; "
                f"known: {sorted(self._by_name)}."
            )
        return machine

    def for_execution(self, execution_arn: str) -> StateMachine:
        """The allow-listed STANDARD state machine an execution ARN belongs to."""
        match = _EXECUTION_ARN.match(execution_arn)
        is_express = match is not None and match.group("kind") == "express"
        if match is None or is_express != bool(match.group("express_id")):
            raise InvalidArn(
                f"{execution_arn!r} is not an execution ARN; expected "
                "arn:aws:states:<region>:<account>:execution:<stateMachine>:<name>."
            )
        parts = match.groupdict()
        owner = "arn:{partition}:states:{region}:{account}:stateMachine:{state_machine}".format(**parts)
        machine = self._by_execution_owner.get(owner)
        if machine is None:
            raise StateMachineNotFound(
                f"Execution {execution_arn!r} belongs to a state machine this gateway does not expose."
            )
        if is_express or machine.is_express:
            raise StateMachineTypeNotSupported(
                f"{execution_arn!r} is an execution of the EXPRESS state machine {machine.name!r}: Step Functions "
                "keeps no execution records for Express workflows, so it cannot be described, listed, stopped or "
                "read. Run Express workflows with POST /sync-executions, whose answer is the result."
            )
        return machine
