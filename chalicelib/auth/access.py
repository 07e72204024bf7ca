"""Authorization inside the gateway: per-caller access rules and ownerOnly state machines.

The gateway asks here before any Step Functions call. `GuardedGateway` sits in front of
`StepFunctionsGateway`: every public operation checks the caller's rights first, then runs.

Ownership (ownerOnly machines): the gateway prefixes every execution name it starts on such
a machine with the caller's owner tag, `<20 hex digits of SHA-256(type, id)>-`. The tag is
computed by the gateway from the authenticated caller (never taken from the client), so a
client can only ever create executions under its own tag; reading, stopping or redriving
checks the tag in the execution ARN, and lists keep the caller's own. See docs/identity.md.
"""
import hashlib
from dataclasses import dataclass
from urllib.parse import unquote

from chalicelib.errors import AccessDenied, ExecutionNotFound, InvalidName

OPERATIONS = ("start", "sync", "read", "stop", "redrive", "tasks", "approve")
# Operations on state machines: what makes a machine show up in GET /state-machines.
MACHINE_OPERATIONS = ("start", "sync", "read", "stop", "redrive")
WILDCARD = "*"
OWNER_TAG_LENGTH = 20
# Execution names are at most 80 characters (Step Functions), the tag and its dash included.
MAX_EXECUTION_NAME = 80


@dataclass(frozen=True)
class AccessRule:
    """One rule: who (callers, groups, scopes) may do which operations on which state machines."""

    callers: frozenset
    caller_prefixes: tuple
    groups: frozenset
    scopes: frozenset
    state_machines: frozenset
    operations: frozenset

    def matches_caller(self, caller: dict) -> bool:
        """Listed by id (exactly, by a "prefix*" pattern, or "*"), or by one of its groups or scopes."""
        caller_id = caller["id"]
        return (
            caller_id in self.callers
            or WILDCARD in self.callers
            or any(caller_id.startswith(prefix) for prefix in self.caller_prefixes)
            or not self.groups.isdisjoint(caller["groups"])
            or not self.scopes.isdisjoint(caller["scopes"])
        )

    def covers(self, operation: str, machine_name: str | None) -> bool:
        """This rule names the operation and (except for tasks) the state machine."""
        if operation not in self.operations and WILDCARD not in self.operations:
            return False
        # Task tokens are opaque: nothing tells which state machine a token belongs to.
        return operation == "tasks" or WILDCARD in self.state_machines or machine_name in self.state_machines


class AccessRules:
    """The stage's ACCESS_RULES; anything no rule allows is denied."""

    def __init__(self, rules):
        self.rules = tuple(rules)
        # (operation, machine) -> the union of every covering rule's callers, groups and scopes.
        # Rules only ever allow, so one merged rule decides exactly as the list would, in O(1).
        self._merged = {}

    def _merged_rule(self, operation: str, machine_name: str | None) -> AccessRule:
        key = (operation, machine_name)
        merged = self._merged.get(key)
        if merged is None:
            covering = [rule for rule in self.rules if rule.covers(operation, machine_name)]
            merged = AccessRule(
                callers=frozenset().union(*(rule.callers for rule in covering)),
                caller_prefixes=tuple(prefix for rule in covering for prefix in rule.caller_prefixes),
                groups=frozenset().union(*(rule.groups for rule in covering)),
                scopes=frozenset().union(*(rule.scopes for rule in covering)),
                state_machines=frozenset([WILDCARD]),
                operations=frozenset([operation]),
            )
            self._merged[key] = merged
        return merged

    def allows(self, caller: dict | None, operation: str, machine_name: str | None = None) -> bool:
        """May this caller do this operation (on this state machine)?"""
        if not caller or not caller.get("id"):
            return False
        return self._merged_rule(operation, machine_name).matches_caller(caller)


def may_approve(rules: AccessRules | None, caller: dict | None, machine_name: str, candidate_users,
                candidate_groups) -> bool:
    """May this caller answer an approval of this machine: "approve" granted, and a candidate (if any are named)?"""
    if not caller or not caller.get("id"):
        return False
    if rules is not None and not rules.allows(caller, "approve", machine_name):
        return False
    if not candidate_users and not candidate_groups:
        return True
    return caller["id"] in candidate_users or not set(candidate_groups).isdisjoint(caller.get("groups") or ())


def owner_tag(caller: dict) -> str:
    """The gateway-computed prefix that marks executions started by this caller."""
    digest = hashlib.sha256(f"{caller['type']}\x00{caller['id']}".encode()).hexdigest()
    return digest[:OWNER_TAG_LENGTH] + "-"


def _caller_name(caller: dict | None) -> str:
    return f"{caller['type']} caller {caller['id']!r}" if caller and caller.get("id") else "An unauthenticated caller"


class GuardedGateway:
    """Wraps a StepFunctionsGateway: each operation checks access rules and ownership, then runs."""

    def __init__(self, gateway, registry, rules: AccessRules | None, caller: dict | None):
        self._gateway = gateway
        self._registry = registry
        self._rules = rules
        self._caller = caller
        # Executions started by this request: ?wait= on a start needs no separate read right.
        self._started = set()

    def _require(self, operation: str, machine=None) -> None:
        if self._rules is None or self._rules.allows(self._caller, operation, machine.name if machine else None):
            return
        target = f"on state machine {machine.name!r}" if machine else "on task tokens"
        raise AccessDenied(
            f"{_caller_name(self._caller)} may not {operation} {target}: no rule in ACCESS_RULES allows it."
        )

    def _owner_tag(self, machine) -> str:
        if not self._caller or not self._caller.get("id"):
            raise AccessDenied(f"State machine {machine.name!r} is ownerOnly; the caller has no identity.")
        return owner_tag(self._caller)

    def _owned_execution(self, raw_arn: str, operation: str) -> None:
        execution_arn = unquote(raw_arn)
        machine = self._registry.for_execution(execution_arn)
        if execution_arn in self._started:
            return
        self._require(operation, machine)
        if machine.owner_only:
            name = execution_arn.rsplit(":", 1)[1]
            if not name.startswith(self._owner_tag(machine)):
                # As if it did not exist: a 403 would confirm that someone else's execution is there.
                raise ExecutionNotFound(f"Execution Does Not Exist: '{execution_arn}'")

    def list_state_machines(self) -> dict:
        """The allow-listed state machines this caller may use."""
        listed = self._gateway.list_state_machines()
        if self._rules is None:
            return listed
        usable = {
            machine.name for machine in self._registry
            if any(self._rules.allows(self._caller, operation, machine.name) for operation in MACHINE_OPERATIONS)
        }
        return {"stateMachines": [entry for entry in listed["stateMachines"] if entry["name"] in usable]}

    def describe_state_machine(self, name_or_arn: str) -> dict:
        """DescribeStateMachine, for callers who may read the machine."""
        self._require("read", self._registry.resolve(unquote(name_or_arn)))
        return self._gateway.describe_state_machine(name_or_arn)

    def start_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None,
                        **options) -> dict:
        """StartExecution, for callers who may start the machine; ownerOnly names carry the owner tag."""
        machine = self._registry.resolve(state_machine)
        self._require("start", machine)
        if machine.owner_only:
            tag = self._owner_tag(machine)
            if len(tag) + len(name) > MAX_EXECUTION_NAME:
                raise InvalidName(
                    f"On ownerOnly state machine {machine.name!r} execution names may have at most "
                    f"{MAX_EXECUTION_NAME - len(tag)} characters (the gateway prefixes the owner tag)."
                )
            name = tag + name
        started = self._gateway.start_execution(state_machine, execution_input, name, caller, **options)
        self._started.add(started["executionArn"])
        return started

    def start_sync_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None,
                             **options) -> dict:
        """StartSyncExecution, for callers who may run the machine synchronously."""
        self._require("sync", self._registry.resolve(state_machine))
        return self._gateway.start_sync_execution(state_machine, execution_input, name, caller, **options)

    def list_executions(self, state_machine: str, status=None, limit=None, next_token=None) -> dict:
        """ListExecutions for readers; on ownerOnly machines only the caller's own executions."""
        machine = self._registry.resolve(state_machine)
        self._require("read", machine)
        page = self._gateway.list_executions(state_machine, status, limit, next_token)
        if machine.owner_only:
            # A page may come back shorter than limit (even empty) with a nextToken: keep paging.
            tag = self._owner_tag(machine)
            page["executions"] = [e for e in page["executions"] if str(e.get("name", "")).startswith(tag)]
        return page

    def wait_for_execution(self, raw_arn: str, seconds: int, **options) -> tuple[bool, dict]:
        """?wait= polling of an execution the caller may read (or has just started)."""
        self._owned_execution(raw_arn, "read")
        return self._gateway.wait_for_execution(raw_arn, seconds, **options)

    def describe_execution(self, raw_arn: str) -> dict:
        """DescribeExecution of an execution the caller may read (and owns, on ownerOnly machines)."""
        self._owned_execution(raw_arn, "read")
        return self._gateway.describe_execution(raw_arn)

    def stop_execution(self, raw_arn: str, error: str | None = None, cause: str | None = None) -> dict:
        """StopExecution of an execution the caller may stop (and owns, on ownerOnly machines)."""
        self._owned_execution(raw_arn, "stop")
        return self._gateway.stop_execution(raw_arn, error, cause)

    def get_execution_history(self, raw_arn: str, limit=None, next_token=None, reverse=False) -> dict:
        """GetExecutionHistory of an execution the caller may read (and owns, on ownerOnly machines)."""
        self._owned_execution(raw_arn, "read")
        return self._gateway.get_execution_history(raw_arn, limit, next_token, reverse)

    def redrive_execution(self, raw_arn: str, client_token: str | None = None) -> dict:
        """RedriveExecution of an execution the caller may redrive (and owns, on ownerOnly machines)."""
        self._owned_execution(raw_arn, "redrive")
        return self._gateway.redrive_execution(raw_arn, client_token)

    def send_task_success(self, task_token: str, output) -> dict:
        """SendTaskSuccess, for callers allowed to answer tasks."""
        self._require("tasks")
        return self._gateway.send_task_success(task_token, output)

    def send_task_failure(self, task_token: str, error: str | None = None, cause: str | None = None) -> dict:
        """SendTaskFailure, for callers allowed to answer tasks."""
        self._require("tasks")
        return self._gateway.send_task_failure(task_token, error, cause)

    def send_task_heartbeat(self, task_token: str) -> dict:
        """SendTaskHeartbeat, for callers allowed to answer tasks."""
        self._require("tasks")
        return self._gateway.send_task_heartbeat(task_token)


def guard(gateway, config, caller: dict | None = None):
    """The gateway behind access checks for this caller when the stage has ACCESS_RULES or ownerOnly machines."""
    if config.access_rules is None and not any(machine.owner_only for machine in config.registry):
        return gateway
    return GuardedGateway(gateway, config.registry, config.access_rules, caller)
