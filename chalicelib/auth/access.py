"""Authorization inside the gateway: per-caller access rules and ownerOnly state machines.

The gateway asks here before any Step Functions call. `GuardedGateway` sits in front of
`StepFunctionsGateway`: every public operation checks the caller's rights first, then runs.

Ownership (ownerOnly machines): the gateway prefixes every execution name it starts on such
a machine with the caller's owner tag, 20 hex digits of an HMAC keyed by the stage's secret
over the caller and the rest of the name (chalicelib.ownership). Only the gateway can compute
it, so nobody can create an execution it would attribute to someone else; reading, stopping or
redriving checks the tag, and lists keep the caller's own. See docs/identity.md.

Versions and aliases: an execution belongs to the unqualified state machine, whichever entry
started it. When a stage lists a version or alias of a machine, the entry an execution was
started through (DescribeExecution's stateMachineAliasArn / stateMachineVersionArn) decides
who may touch it; the unqualified entry decides for the others.
"""
from dataclasses import dataclass
from urllib.parse import unquote

from chalicelib.auth import ownership
from chalicelib.errors import (
    AccessDenied,
    BackendTimeout,
    ExecutionNotFound,
    GatewayError,
    InvalidName,
    StateMachineNotFound,
)

OPERATIONS = ("start", "sync", "read", "stop", "redrive", "tasks", "approve")
# Operations on state machines: what makes a machine show up in GET /state-machines.
MACHINE_OPERATIONS = ("start", "sync", "read", "stop", "redrive")
WILDCARD = "*"
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


def _caller_name(caller: dict | None) -> str:
    return f"{caller['type']} caller {caller['id']!r}" if caller and caller.get("id") else "An unauthenticated caller"


# The fields of a start's answer: what a caller without the read right may see of a ?wait=.
_START_FIELDS = ("executionArn", "startDate", "name", "stateMachine")
# ListExecutions' own default page size.
DEFAULT_LIST_LIMIT = 100
# An ownerOnly listing pages internally; it stops while this much of the request's time is left.
LISTING_RESERVE_SECONDS = 4.0


class GuardedGateway:
    """Wraps a StepFunctionsGateway: each operation checks access rules and ownership, then runs."""

    def __init__(self, gateway, registry, rules: AccessRules | None, caller: dict | None, stage_secret=None,
                 remaining=None):
        self._gateway = gateway
        self._registry = registry
        self._rules = rules
        self._caller = caller
        # stage_secret() returns the stage's secret (read on first need: stages without ownerOnly
        # machines or Idempotency-Keys never read it); remaining() the request's seconds left.
        self._stage_secret = stage_secret
        self._remaining = remaining or (lambda: float("inf"))
        # Executions started by this request: a ?wait= on them answers without data for non-readers.
        self._started = {}

    def _allows(self, operation: str, machine) -> bool:
        return self._rules is None or self._rules.allows(self._caller, operation, machine.name if machine else None)

    def _require(self, operation: str, machine=None) -> None:
        if self._allows(operation, machine):
            return
        target = f"on state machine {machine.name!r}" if machine else "on task tokens"
        raise AccessDenied(
            f"{_caller_name(self._caller)} may not {operation} {target}: no rule in ACCESS_RULES allows it."
        )

    def _usable(self, machine) -> bool:
        return any(self._allows(operation, machine) for operation in MACHINE_OPERATIONS)

    def _resolve(self, name_or_arn: str):
        try:
            return self._registry.resolve(name_or_arn)
        except StateMachineNotFound:
            # Name only the machines this caller may use: the full list would map the stage for anyone.
            usable = sorted(machine.name for machine in self._registry if self._usable(machine))
            raise StateMachineNotFound(
                f"State machine {name_or_arn!r} is not exposed by this gateway; known: {usable}."
            ) from None

    def _secret(self) -> bytes:
        return self._stage_secret()

    def _identified(self, machine) -> dict:
        if not self._caller or not self._caller.get("id"):
            raise AccessDenied(f"State machine {machine.name!r} is ownerOnly; the caller has no identity.")
        return self._caller

    # --- executions: which entry decides, and does the caller own it ------------------------------

    def _precheck(self, execution_arn: str, operation: str) -> list:
        """Refuse before any call what no entry of the machine allows, and others' ownerOnly executions."""
        entries = self._registry.entries_for_execution(execution_arn)
        if not any(self._allows(operation, entry) for entry in entries):
            self._require(operation, entries[0])
        if entries[0].owner_only:
            name = execution_arn.rsplit(":", 1)[1]
            if not ownership.is_owned_by(self._secret(), self._identified(entries[0]), name):
                # As if it did not exist: a 403 would confirm that someone else's execution is there.
                raise ExecutionNotFound(f"Execution Does Not Exist: '{execution_arn}'")
        return entries

    @staticmethod
    def _needs_description(entries: list) -> bool:
        return len(entries) > 1 or entries[0].qualifier is not None

    @staticmethod
    def _governing_entry(entries: list, started_through: dict):
        """The entry an execution was started through (alias, else version), else the unqualified one."""
        by_arn = {entry.arn: entry for entry in entries}
        alias, version = started_through.get("stateMachineAliasArn"), started_through.get("stateMachineVersionArn")
        entry = by_arn.get(alias) if alias else by_arn.get(version) if version else None
        return entry or by_arn.get(entries[0].unqualified_arn)

    def _decide(self, execution_arn: str, operation: str, entries: list, described: dict | None = None):
        """The entry that decides for this execution, if it allows the operation; else as if not found."""
        if not self._needs_description(entries):
            self._require(operation, entries[0])
            return entries[0]
        if described is None:
            described = self._gateway.describe_execution(execution_arn)
        entry = self._governing_entry(entries, described)
        if entry is None or not self._allows(operation, entry):
            raise ExecutionNotFound(f"Execution Does Not Exist: '{execution_arn}'")
        return entry

    def _authorize(self, raw_arn: str, operation: str) -> str:
        execution_arn = unquote(raw_arn)
        entries = self._precheck(execution_arn, operation)
        self._decide(execution_arn, operation, entries)
        return execution_arn

    def _act(self, raw_arn: str, operation: str, call) -> dict:
        """Authorize a stop or redrive, then call(execution_arn); non-readers get no status or cause in errors."""
        execution_arn = unquote(raw_arn)
        entries = self._precheck(execution_arn, operation)
        entry = self._decide(execution_arn, operation, entries)
        try:
            return call(execution_arn)
        except GatewayError as err:
            # The entry that decides for this execution must give read, not just any entry of the machine.
            if isinstance(err, ExecutionNotFound) or self._allows("read", entry):
                raise
            # Step Functions' messages may name the execution's status ("is not redrivable: RUNNING").
            raise type(err)(f"{type(err).__doc__.strip()} (details need the read right)") from None

    # --- state machines ----------------------------------------------------------------------------

    def list_state_machines(self) -> dict:
        """The allow-listed state machines this caller may use."""
        listed = self._gateway.list_state_machines()
        if self._rules is None:
            return listed
        usable = {machine.name for machine in self._registry if self._usable(machine)}
        return {"stateMachines": [entry for entry in listed["stateMachines"] if entry["name"] in usable]}

    def describe_state_machine(self, name_or_arn: str) -> dict:
        """DescribeStateMachine, for callers who may read the machine."""
        self._require("read", self._resolve(unquote(name_or_arn)))
        return self._gateway.describe_state_machine(name_or_arn)

    def start_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None,
                        **options) -> dict:
        """StartExecution, for callers who may start the machine; ownerOnly names carry the owner tag."""
        machine = self._resolve(state_machine)
        self._require("start", machine)
        if machine.owner_only:
            limit = MAX_EXECUTION_NAME - ownership.OWNER_TAG_LENGTH
            if len(name) > limit:
                raise InvalidName(
                    f"On ownerOnly state machine {machine.name!r} execution names may have at most "
                    f"{limit} characters (the gateway prefixes the owner tag)."
                )
            name = ownership.owned_name(self._secret(), self._identified(machine), name)
        started = self._gateway.start_execution(machine.name, execution_input, name, caller, **options)
        started["stateMachine"] = machine.name
        self._started[started["executionArn"]] = (machine, started)
        return started

    def start_sync_execution(self, state_machine: str, execution_input, name: str, caller: dict | None = None,
                             **options) -> dict:
        """StartSyncExecution, for callers who may run the machine synchronously."""
        self._require("sync", self._resolve(state_machine))
        return self._gateway.start_sync_execution(state_machine, execution_input, name, caller, **options)

    # --- listing -----------------------------------------------------------------------------------

    def _listed_item_visible(self, machine, entries: list, item: dict) -> bool:
        if machine.owner_only and not ownership.is_owned_by(self._secret(), self._caller, str(item.get("name", ""))):
            return False
        if not self._needs_description(entries):
            return True
        entry = self._governing_entry(entries, item)
        return entry is not None and self._allows("read", entry)

    def list_executions(self, state_machine: str, status=None, limit=None, next_token=None) -> dict:
        """ListExecutions for readers: only executions the caller may read, pages never empty with a nextToken."""
        machine = self._resolve(state_machine)
        self._require("read", machine)
        entries = self._registry.entries_of(machine)
        if not machine.owner_only and not self._needs_description(entries):
            return self._gateway.list_executions(machine.name, status, limit, next_token)
        if machine.owner_only:
            self._identified(machine)
        # Filtered listings page internally until `limit` visible items or the end: an empty page
        # with a nextToken would tell the caller how many executions others have.
        bound = machine.owner_only
        sfn_token = (ownership.listing_sfn_token(self._secret(), self._caller, machine.name, next_token)
                     if bound and next_token else next_token)
        wanted = limit or DEFAULT_LIST_LIMIT
        kept = []
        while True:
            page = self._gateway.list_executions(machine.name, status, wanted - len(kept), sfn_token)
            kept.extend(item for item in page["executions"] if self._listed_item_visible(machine, entries, item))
            sfn_token = page.get("nextToken")
            if not sfn_token or len(kept) >= wanted:
                break
            if self._remaining() < LISTING_RESERVE_SECONDS:
                if kept:
                    break
                raise BackendTimeout("The listing ran out of time before finding any of your executions; retry.")
        if sfn_token and bound:
            sfn_token = ownership.listing_token(self._secret(), self._caller, machine.name, sfn_token)
        return {"executions": kept, "nextToken": sfn_token}

    # --- one execution -----------------------------------------------------------------------------

    def wait_for_execution(self, raw_arn: str, seconds: int, **options) -> tuple[bool, dict]:
        """?wait= polling of an execution the caller may read; a start by a non-reader answers without data."""
        execution_arn = unquote(raw_arn)
        started = self._started.get(execution_arn)
        if started is not None and not self._allows("read", started[0]):
            # Step Functions answers a repeated start (same name and input, still running) with the
            # running execution: it may be someone else's, so a non-reader learns nothing of it.
            return False, {field: started[1][field] for field in _START_FIELDS if field in started[1]}
        self._authorize(execution_arn, "read")
        return self._gateway.wait_for_execution(execution_arn, seconds, **options)

    def describe_execution(self, raw_arn: str) -> dict:
        """DescribeExecution of an execution the caller may read (and owns, on ownerOnly machines)."""
        execution_arn = unquote(raw_arn)
        entries = self._precheck(execution_arn, "read")
        described = self._gateway.describe_execution(execution_arn)
        entry = self._decide(execution_arn, "read", entries, described)
        return {**described, "stateMachine": entry.name}

    def stop_execution(self, raw_arn: str, error: str | None = None, cause: str | None = None) -> dict:
        """StopExecution of an execution the caller may stop (and owns, on ownerOnly machines)."""
        return self._act(raw_arn, "stop", lambda arn: self._gateway.stop_execution(arn, error, cause))

    def get_execution_history(self, raw_arn: str, limit=None, next_token=None, reverse=False) -> dict:
        """GetExecutionHistory of an execution the caller may read (and owns, on ownerOnly machines)."""
        execution_arn = self._authorize(raw_arn, "read")
        return self._gateway.get_execution_history(execution_arn, limit, next_token, reverse)

    def redrive_execution(self, raw_arn: str, client_token: str | None = None) -> dict:
        """RedriveExecution of an execution the caller may redrive (and owns, on ownerOnly machines)."""
        return self._act(raw_arn, "redrive", lambda arn: self._gateway.redrive_execution(arn, client_token))

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


def guard(gateway, config, caller: dict | None = None, stage_secret=None, remaining=None):
    """The gateway behind access checks for this caller when the stage has ACCESS_RULES or ownerOnly machines."""
    if config.access_rules is None and not any(machine.owner_only for machine in config.registry):
        return gateway
    return GuardedGateway(gateway, config.registry, config.access_rules, caller, stage_secret, remaining)
