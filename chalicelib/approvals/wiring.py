"""The approvals inbox wired to the stage: its table, the caller, Step Functions; app.py's entry points.

Light on purpose: app.py imports it for the routes, and the store, the inbox, the consumer and the
closer are imported only by the function that uses them. The AWS clients come from chalicelib.factory.
"""
from chalicelib import factory
from chalicelib.auth.identity import current_caller
from chalicelib.config import get_config


def store():
    """The approvals table of this stage (ApprovalsDisabled when APPROVALS is off)."""
    from chalicelib.approvals.settings import approvals_table
    from chalicelib.approvals.store import ApprovalStore

    return ApprovalStore(factory.get_dynamodb_client(), approvals_table(get_config().approvals))


def inbox():
    """The approvals inbox as this request's caller sees it."""
    from chalicelib.approvals.inbox import ApprovalsInbox, send_answer

    table = store()
    config = get_config()
    return ApprovalsInbox(table, config.registry, config.access_rules, current_caller(),
                          send_answer(factory.get_sfn_client))


def consume(event: dict) -> dict:
    """Lambda's SQS event: record each message as a pending approval (or dead-letter it)."""
    from chalicelib.approvals.consumer import consume as consume_records
    from chalicelib.approvals.settings import dead_letter_queue_url

    config = get_config()
    return consume_records(event.get("Records") or [], store(), config.registry, factory.get_sqs_client(),
                           dead_letter_queue_url(config.approvals))


def close(event: dict) -> int:
    """An EventBridge status-change event: close the ended execution's pending approvals."""
    from chalicelib.approvals.closer import close_ended_execution

    return close_ended_execution(event, store())
