"""DynamoDB conditional writes applied atomically, as DynamoDB applies them per item.

moto 5.2.5 checks a ConditionExpression and then writes, in two steps that two requests on the
server's threads can interleave: both pass `status = PENDING` and both write. The approvals
inbox's "first answer wins" relies on DynamoDB's guarantee, so the local engine serialises writes.
"""
import threading

from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_write_lock = threading.RLock()


def patch_atomic_conditional_writes() -> None:
    for name in _WRITES:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))


def _serialised(write):
    def locked(*args, **kwargs):
        with _write_lock:
            return write(*args, **kwargs)

    return locked
