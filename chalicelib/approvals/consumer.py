"""The approvals queue's consumer: each message becomes a pending approval, or goes to the dead-letter queue.

Nothing is dropped silently: a malformed message is copied to the dead-letter queue with a log
line naming its execution (never its token); a fault of the table makes the invocation fail, so
SQS delivers the batch again (redelivered messages are recognised by their task token) and,
after the queue's maxReceiveCount, moves it to the same dead-letter queue.
"""
import datetime
import json
import logging

from chalicelib.approvals.messages import MalformedMessage, execution_named, parse_message
from chalicelib.approvals.store import new_id, now_text
from chalicelib.errors import GatewayError
from chalicelib.serialization import dumps

LOG = logging.getLogger("sfn_gateway.approvals")
LOG.setLevel(logging.INFO)


_EVENTS = {"added": "approval-added", "duplicate": "approval-redelivered",
           "ended": "approval-not-added-execution-ended"}


class ApprovalsNotRecorded(Exception):
    """Some messages of the batch could not be stored; raised so that SQS delivers them again."""


def _dead_letter(sqs, queue_url: str, record: dict, reason: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=record["body"], MessageAttributes={
        "error": {"DataType": "String", "StringValue": reason[:1000]},
        "sourceMessageId": {"DataType": "String", "StringValue": record.get("messageId") or "unknown"},
    })


def consume(records, store, registry, sqs, dead_letter_queue_url: str, clock=None) -> dict:
    """Record each SQS message (Lambda's record dicts) as a pending approval; counts of what happened."""
    clock = clock or (lambda: datetime.datetime.now(tz=datetime.timezone.utc))
    counts = {"added": 0, "duplicate": 0, "ended": 0, "deadLettered": 0}
    failed = []
    for record in records:
        execution = execution_named(record.get("body") or "")
        try:
            request = parse_message(record.get("body") or "", registry)
        except MalformedMessage as err:
            # Sent before the batch succeeds: a failure here fails the batch, and SQS retries it.
            _dead_letter(sqs, dead_letter_queue_url, record, str(err))
            LOG.error(json.dumps({"event": "approval-message-malformed", "executionArn": execution,
                                  "messageId": record.get("messageId"), "error": str(err),
                                  "deadLetterQueue": dead_letter_queue_url}))
            counts["deadLettered"] += 1
            continue
        created = clock()
        expires = created + datetime.timedelta(seconds=request.timeout_seconds)
        approval = {
            "id": new_id(),
            "executionArn": request.execution_arn,
            "stateMachine": request.machine.name,
            "title": request.title,
            "details": dumps(request.details),
            "candidateGroups": list(request.candidate_groups),
            "candidateUsers": list(request.candidate_users),
            "createdAt": now_text(created),
            "expiresAt": now_text(expires),
        }
        # SQS's SentTimestamp (ms): set by SQS when the workflow sent the message.
        sent_ms = int((record.get("attributes") or {}).get("SentTimestamp") or created.timestamp() * 1000)
        try:
            outcome = store.add(approval, request.task_token, int(expires.timestamp()), sent_ms)
        except GatewayError as err:
            LOG.error(json.dumps({"event": "approval-not-recorded", "executionArn": execution,
                                  "messageId": record.get("messageId"), "error": f"{type(err).__name__}: {err}"}))
            failed.append(record.get("messageId"))
            continue
        counts[outcome] += 1
        LOG.info(json.dumps({"event": _EVENTS[outcome], "approvalId": approval["id"] if outcome == "added" else None,
                             "executionArn": execution, "stateMachine": request.machine.name}))
    if failed:
        raise ApprovalsNotRecorded(f"{len(failed)} approval message(s) could not be stored ({', '.join(map(str, failed))}); "
                                   "SQS will deliver them again.")
    return counts
