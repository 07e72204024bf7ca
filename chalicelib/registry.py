"""The allow-list: which state machines this stage exposes, by short name and ARN."""
import re
from dataclasses import dataclass

from chalicelib.errors import InvalidArn, StateMachineNotFound
from chalicelib.validation import NAME_PATTERN

# arn:<partition>:states:<region>:<account>:execution:<state machine>:<execution name>
_EXECUTION_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    f"execution:(?P<state_machine>{NAME_PATTERN}):(?P<name>{NAME_PATTERN})$"
)


@dataclass(frozen=True)
class StateMachine:
    """One allow-listed state machine."""

    name: str
    arn: str
    type: str
    pass_caller_context: bool = False
    owner_only: bool = False

    @property
    def is_express(self) -> bool:
        return self.type == "EXPRESS"

    def summary(self) -> dict:
        """The public description used in listings."""
        return {"name": self.name, "stateMachineArn": self.arn, "type": self.type}


class StateMachineRegistry:
    """Looks up allow-listed state machines; anything else is reported as not found."""

    def __init__(self, machines):
        self._by_name = {machine.name: machine for machine in machines}
        self._by_arn = {machine.arn: machine for machine in machines}

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
        """The allow-listed state machine an execution ARN belongs to."""
        match = _EXECUTION_ARN.match(execution_arn)
        if match is None:
            raise InvalidArn(
                f"{execution_arn!r} is not an execution ARN; expected "
                "arn:aws:states:<region>:<account>:execution:<stateMachine>:<name>."
            )
        parts = match.groupdict()
        arn = "arn:{partition}:states:{region}:{account}:stateMachine:{state_machine}".format(**parts)
        if arn not in self._by_arn:
            raise StateMachineNotFound(
                f"Execution {execution_arn!r} belongs to a state machine this gateway does not expose."
            )
        return self._by_arn[arn]
