"""A reference model of who may do what, written apart from chalicelib (it imports none of it).

It says, for a stage's configuration, a caller and a request, which status the gateway must
answer and which executions the caller may see. tests/auth/test_access_fuzz.py checks the app
against it. Kept small on purpose: each rule here is one sentence of docs/identity.md.
"""
from dataclasses import dataclass, field

OPERATIONS = ("start", "sync", "read", "stop", "redrive", "tasks", "approve")
MACHINE_OPERATIONS = ("start", "sync", "read", "stop", "redrive")


@dataclass(frozen=True)
class Entry:
    """One STATE_MACHINES entry: a machine, one of its versions (":1") or one of its aliases (":live")."""

    name: str
    arn: str
    base: str  # the unqualified state machine ARN
    express: bool = False
    owner_only: bool = False

    @property
    def qualified(self) -> bool:
        return self.arn != self.base


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its type and id, and the groups and scopes its token carries."""

    type: str
    id: str
    groups: tuple = ()
    scopes: tuple = ()

    @property
    def key(self) -> tuple:
        return (self.type, self.id)


@dataclass
class Execution:
    """An execution as the model knows it: which entry started it, for whom, with which input."""

    arn: str
    base: str
    through: str  # the ARN it was started with: the machine, a version or an alias
    version: str | None  # the version it ran (a start through an alias runs the alias's version)
    owner: tuple | None  # (type, id) of the caller who started it through the gateway; None otherwise
    marker: str  # a string only its input contains


def machine_of(execution_arn: str) -> str:
    """arn:...:execution:<machine>:<name> belongs to arn:...:stateMachine:<machine>."""
    parts = execution_arn.split(":")
    return ":".join(parts[:5] + ["stateMachine", parts[6]])


@dataclass
class Approval:
    """A pending (or answered, or closed) approval as the model knows it (docs/approvals.md)."""

    id: str
    token: str
    execution_arn: str
    title: str
    details: dict
    candidate_users: tuple
    candidate_groups: tuple
    status: str = "PENDING"  # PENDING, APPROVED, REJECTED or CLOSED
    answered_by: str | None = None
    comment: str | None = None



@dataclass
class Stage:
    """A stage's configuration: entries, ACCESS_RULES (None: no rules) and TASK_ROUTES."""

    entries: dict
    rules: list | None
    task_routes: bool
    executions: dict = field(default_factory=dict)  # arn -> Execution
    approvals: dict = field(default_factory=dict)  # id -> Approval, oldest first
    tokens: set = field(default_factory=set)  # task tokens of recorded approvals
    ended: dict = field(default_factory=dict)  # execution arn -> when it ended (ms), until a later message reopens it

    # --- rules ---------------------------------------------------------------------------------

    @staticmethod
    def _matches(rule: dict, caller: Caller) -> bool:
        for pattern in rule.get("callers", []):
            if pattern == "*" or pattern == caller.id:
                return True
            if pattern.endswith("*") and caller.id.startswith(pattern[:-1]):
                return True
        return bool(set(rule.get("groups", [])) & set(caller.groups)) or bool(set(rule.get("scopes", [])) & set(caller.scopes))

    def allows(self, caller: Caller, operation: str, entry_name: str | None = None) -> bool:
        """Does some rule give this caller this operation (on this entry)? Without rules: yes."""
        if self.rules is None:
            return True
        for rule in self.rules:
            if operation not in rule["operations"] and "*" not in rule["operations"]:
                continue
            machines = rule.get("stateMachines", [])
            if operation != "tasks" and "*" not in machines and entry_name not in machines:
                continue
            if self._matches(rule, caller):
                return True
        return False

    def usable(self, caller: Caller) -> list:
        """The entry names GET /state-machines lists, and a 404 may name, for this caller."""
        return [name for name in self.entries if any(self.allows(caller, op, name) for op in MACHINE_OPERATIONS)]

    # --- executions ------------------------------------------------------------------------------

    def entries_of(self, base: str) -> list:
        return [entry for entry in self.entries.values() if entry.base == base]

    def governing(self, execution: Execution) -> Entry | None:
        """The entry that decides: the alias or version it was started through if listed, else the machine's own."""
        by_arn = {entry.arn: entry for entry in self.entries_of(execution.base)}
        return by_arn.get(execution.through) or by_arn.get(execution.base)

    def readable(self, caller: Caller, execution: Execution) -> bool:
        """May this caller see this execution's input, output, status, error or cause?"""
        entry = self.governing(execution)
        if entry is None or not self.allows(caller, "read", entry.name):
            return False
        return not entry.owner_only or execution.owner == caller.key

    def listed_by(self, entry: Entry) -> list:
        """The executions ListExecutions returns for this entry's ARN (AWS: an alias or version lists its own)."""
        if not entry.qualified:
            return [e for e in self.executions.values() if e.base == entry.base]
        return [e for e in self.executions.values() if e.through == entry.arn or e.version == entry.arn]

    def execution_answer(self, caller: Caller, operation: str, arn: str, base: str) -> int | None:
        """The status the gateway must give, or None when the operation is allowed (the backend then answers)."""
        entries = self.entries_of(base)
        if not entries:
            return 404
        if entries[0].express:
            return 400
        if not any(self.allows(caller, operation, entry.name) for entry in entries):
            return 403
        execution = self.executions.get(arn)
        if entries[0].owner_only and (execution is None or execution.owner != caller.key):
            return 404
        if execution is None:
            return 404
        entry = self.governing(execution)
        if entry is None or not self.allows(caller, operation, entry.name):
            return 404
        return None

    # --- approvals (docs/approvals.md) ------------------------------------------------------------

    def approval_entry(self, execution_arn: str) -> Entry | None:
        """The entry an approval's execution belongs to: the machine's own entry if listed, else its first
        listed alias or version; None when the machine is not listed or is EXPRESS (no task tokens)."""
        entries = self.entries_of(machine_of(execution_arn))
        entry = next((e for e in entries if not e.qualified), entries[0] if entries else None)
        return None if entry is None or entry.express else entry

    def may_answer(self, caller: Caller, approval: Approval) -> bool:
        """`approve` on its machine, and a candidate (by id or group) when it names any."""
        entry = self.approval_entry(approval.execution_arn)
        if entry is None or not self.allows(caller, "approve", entry.name):
            return False
        if not approval.candidate_users and not approval.candidate_groups:
            return True
        return caller.id in approval.candidate_users or bool(set(approval.candidate_groups) & set(caller.groups))

    def receive(self, approval: Approval, sent_ms: int) -> str:
        """A well-formed queue message: "added", "duplicate" (its token is recorded) or "ended" (sent before its run ended)."""
        if approval.token in self.tokens:
            return "duplicate"
        if self.ended.get(approval.execution_arn, -1) >= sent_ms:
            return "ended"
        self.ended.pop(approval.execution_arn, None)  # a redriven run asks again
        self.tokens.add(approval.token)
        self.approvals[approval.id] = approval
        return "added"

    def end(self, execution_arn: str, stop_ms: int) -> int:
        """The execution ended: its pending approvals close (answered ones keep their answer); how many closed."""
        self.ended[execution_arn] = stop_ms
        closing = [a for a in self.approvals.values() if a.execution_arn == execution_arn and a.status == "PENDING"]
        for approval in closing:
            approval.status = "CLOSED"
        return len(closing)

    def pending_for(self, caller: Caller) -> list:
        """GET /approvals: the pending approvals this caller may answer, newest first."""
        return [a for a in reversed(self.approvals.values()) if a.status == "PENDING" and self.may_answer(caller, a)]

    def approval_answer(self, caller: Caller, approval_id: str, decision: str | None) -> int:
        """The status of GET /approvals/{id} (decision None) or of approving/rejecting it; the model changes on 200."""
        approval = self.approvals.get(approval_id)
        if approval is None or not self.may_answer(caller, approval):
            return 404  # the same for an unknown id and for one the caller may not answer
        if decision is None:
            return 200
        if approval.status == "CLOSED":
            return 410
        if approval.status != "PENDING":
            return 409  # the first answer wins; nothing changes
        approval.status = {"approved": "APPROVED", "rejected": "REJECTED"}[decision]
        approval.answered_by = caller.id
        return 200
