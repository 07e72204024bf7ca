"""ApprovalsInbox: what a caller may see and answer, and answering (first answer wins).

Everything a caller may not answer is reported exactly as an id that does not exist, so
the API never confirms that someone else's approval is there.
"""
import base64
import binascii
import datetime
import json
import logging

from chalicelib.auth.access import may_approve
from chalicelib.approvals import store as approvals_store
from chalicelib.errors import (
    ApprovalAlreadyAnswered,
    ApprovalClosed,
    ApprovalNotFound,
    GatewayError,
    InvalidToken,
    TaskNotFound,
    TaskTimedOut,
    ValidationError,
)
from chalicelib.serialization import dumps, loads

LOG = logging.getLogger("sfn_gateway.approvals")
DEFAULT_PAGE = 25
MAX_PAGE = 100
# One listing reads at most this many index pages, so a caller who may answer few of many
# approvals gets a short page (with a nextToken) within the request's time.
MAX_INDEX_READS = 5
# What tells the gateway that the task no longer waits: the approval is closed.
_TASK_GONE = (TaskTimedOut, TaskNotFound, InvalidToken)
_PAGE_KEYS = {"id", "pending", "createdKey"}


def _encode_page(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_page(token: str) -> dict:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        key = None
    if (not isinstance(key, dict) or set(key) != _PAGE_KEYS or not all(isinstance(v, str) for v in key.values())
            or not approvals_store.is_approval_id(key["id"])):
        raise ValidationError("nextToken is not valid for this listing; pass back the nextToken of the previous "
                              "page unchanged.")
    return key


def _listed(item: dict) -> dict:
    return {"id": item["id"], **{field: item.get(field) for field in approvals_store.LISTED_FIELDS}}


def _page(items: list, continue_after: dict | None) -> dict:
    return {"approvals": [_listed(item) for item in items],
            "nextToken": _encode_page(continue_after) if continue_after else None}


def _shown(item: dict) -> dict:
    shown = {**_listed(item), "status": item["status"], "details": loads(item.get("details") or "{}")}
    if item["status"] in approvals_store.ANSWERED.values():
        shown.update(answeredBy=item.get("answeredBy"), answeredAt=item.get("answeredAt"), comment=item.get("comment"))
    return shown


class ApprovalsInbox:
    """One caller's view of the approvals inbox."""

    def __init__(self, store, registry, rules, caller: dict | None, send_task_success, clock=None):
        self._store = store
        self._registry = registry
        self._rules = rules
        self._caller = caller
        self._send_task_success = send_task_success
        self._now = clock or (lambda: datetime.datetime.now(tz=datetime.timezone.utc))

    def _may_answer(self, item: dict) -> bool:
        try:
            machine = self._registry.for_execution(item.get("executionArn") or "")
        except GatewayError:
            return False  # its machine left the allow-list: nobody here may answer for it
        return may_approve(self._rules, self._caller, machine.name,
                           item.get("candidateUsers") or (), item.get("candidateGroups") or ())

    def _visible(self, approval_id: str) -> dict:
        item = self._store.get(approval_id) if approvals_store.is_approval_id(approval_id) else None
        if item is None or not self._may_answer(item):
            # One message for both: a 404 that differed would tell that the id exists.
            raise ApprovalNotFound(f"Approval {approval_id!r:.60} does not exist.")
        return item

    def list_pending(self, limit: int | None = None, next_token: str | None = None) -> dict:
        """The pending approvals this caller may answer, newest first."""
        limit = limit or DEFAULT_PAGE
        start = _decode_page(next_token) if next_token else None
        now = approvals_store.now_text(self._now())
        listed = []
        for _ in range(MAX_INDEX_READS):
            items, next_start = self._store.pending_page(MAX_PAGE, start)
            for index, item in enumerate(items):
                if item.get("expiresAt", "") > now and self._may_answer(item):
                    listed.append(item)
                if len(listed) == limit:
                    more = index < len(items) - 1 or next_start is not None
                    # Continue right after the last approval shown.
                    return _page(listed, approvals_store.ApprovalStore.page_key(item) if more else None)
            if next_start is None:
                return _page(listed, None)
            start = next_start
        return _page(listed, start)

    def show(self, approval_id: str) -> dict:
        """One approval with its details and status."""
        return _shown(self._visible(approval_id))

    def answer(self, approval_id: str, decision: str, comment: str | None = None, data=None) -> dict:
        """Answer a pending approval; the workflow gets SendTaskSuccess with the decision."""
        item = self._visible(approval_id)
        self._refuse_unless_pending(item)
        answer = {
            "decision": decision,
            "comment": comment or "",
            "data": {} if data is None else data,
            "answeredBy": self._caller["id"],
            "answeredAt": approvals_store.now_text(self._now()),
        }
        token = self._store.answer(approval_id, decision, {**answer, "data": dumps(answer["data"])})
        if token is None:
            # Someone else's answer (or the execution's end) came first.
            self._refuse_unless_pending(self._store.get(approval_id) or item)
            raise ApprovalAlreadyAnswered(f"Approval {approval_id!r} was answered first by someone else.")
        try:
            self._send_task_success(token, answer)
        except _TASK_GONE as err:
            self._store.close(approval_id, approvals_store.now_text(self._now()), only_if_answered_at=answer["answeredAt"])
            raise ApprovalClosed(f"Approval {approval_id!r} is closed: its task no longer waits for an answer "
                                 "(the execution ended or the task timed out).") from err
        except GatewayError:
            # The workflow did not get the answer: give the approval back to whoever answers next.
            self._store.reopen(approval_id, token, item["createdKey"], answer["answeredAt"])
            raise
        LOG.info(json.dumps({"approvalId": approval_id, "executionArn": item["executionArn"], "decision": decision,
                             "answeredBy": answer["answeredBy"]}))
        return _shown({**item, "status": approvals_store.ANSWERED[decision], **answer})

    @staticmethod
    def _refuse_unless_pending(item: dict) -> None:
        status = item["status"]
        if status == approvals_store.CLOSED:
            raise ApprovalClosed(f"Approval {item['id']!r} is closed: its execution ended without an answer.")
        if status != approvals_store.PENDING:
            raise ApprovalAlreadyAnswered(
                f"Approval {item['id']!r} was already answered ({status.lower()} by {item.get('answeredBy')!r} at "
                f"{item.get('answeredAt')}); the first answer stands.")


def send_answer(client_for):
    """SendTaskSuccess of an answer through the gateway's Step Functions client, errors translated."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.stepfunctions.backend_errors import translate_backend_error

    def send(task_token: str, answer: dict) -> None:
        try:
            client_for().send_task_success(taskToken=task_token, output=dumps(answer))
        except (ClientError, BotoCoreError) as err:
            raise translate_backend_error(err, "send_task_success") from err

    return send
