"""The approvals functions' entry points (app.py's consumer and closer), wired to the stage's table and queue."""
from chalicelib import factory
from chalicelib.approvals.closer import close_ended_execution
from chalicelib.approvals.consumer import consume as consume_records
from chalicelib.approvals.settings import dead_letter_queue_url
from chalicelib.config import get_config


def consume(event: dict) -> dict:
    """Lambda's SQS event: record each message as a pending approval (or dead-letter it)."""
    return consume_records(event.get("Records") or [], factory.get_approvals_store(), get_config().registry,
                           factory.get_sqs_client(), dead_letter_queue_url(get_config().approvals))


def close(event: dict) -> int:
    """An EventBridge status-change event: close the ended execution's pending approvals."""
    return close_ended_execution(event, factory.get_approvals_store())
