"""ApprovalStore: approvals in one DynamoDB table, the task token kept server-side only.

Layout (docs/approvals.md): one item per approval, keyed by an opaque id from `secrets`.
While it waits, an approval carries `pending` and `createdKey`, the keys of the sparse index
the inbox lists newest first; answering or closing removes them (and the task token), so it
leaves the list at once. A second item per task token (`token#<sha256>`) makes a redelivered
queue message a no-op, and one per execution (`execution#<arn>`) holds its approvals' ids and,
once it ended, when: the closer and the consumer meet there with strongly consistent writes, so
an approval recorded just as its execution ends is closed all the same. The index projects what
a listing shows: never the token or details.
"""
import datetime
import hashlib
import secrets

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    GatewayMisconfigured,
    Throttled,
)

ID_PREFIX = "apv_"
# 18 random bytes: 144 bits, 24 URL-safe characters; ids are unguessable, not secret.
ID_BYTES = 18
ID_LENGTH = len(ID_PREFIX) + 24
PENDING_INDEX = "pending-newest-first"
PENDING = "PENDING"
CLOSED = "CLOSED"
ANSWERED = {"approved": "APPROVED", "rejected": "REJECTED"}
# DynamoDB deletes records this long after an approval expires (its TTL attribute `ttl`).
RETENTION_SECONDS = 30 * 86_400
_PENDING_PARTITION = "pending"
_TOKEN_KEY_PREFIX = "token#"
_EXECUTION_KEY_PREFIX = "execution#"
_THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded")


def new_id() -> str:
    """A fresh opaque approval id."""
    return ID_PREFIX + secrets.token_urlsafe(ID_BYTES)


def is_approval_id(value: str) -> bool:
    """The shape of ids this store hands out (anything else is looked up nowhere)."""
    return (len(value) == ID_LENGTH and value.startswith(ID_PREFIX)
            and all(c.isascii() and (c.isalnum() or c in "-_") for c in value[len(ID_PREFIX):]))


def now_text(moment: datetime.datetime | None = None) -> str:
    """An instant as the API writes it (ISO 8601, UTC, milliseconds)."""
    return (moment or datetime.datetime.now(tz=datetime.timezone.utc)).isoformat(timespec="milliseconds")


def _to_attribute(value):
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, (list, tuple)):
        return {"L": [_to_attribute(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def _from_attribute(attribute: dict):
    (kind, value), = attribute.items()
    if kind == "N":
        return int(value)
    if kind == "L":
        return [_from_attribute(v) for v in value]
    return value


def _item(attributes: dict) -> dict:
    return {key: _to_attribute(value) for key, value in attributes.items() if value is not None}


def _plain(item: dict) -> dict:
    return {key: _from_attribute(value) for key, value in item.items()}


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def translate_store_error(err: Exception, table: str) -> Exception:
    """A DynamoDB fault as a domain error (the caller raises it)."""
    if isinstance(err, ClientError):
        code = _code(err)
        if code in _THROTTLED:
            return Throttled("The approvals table is throttled; retry shortly.")
        if code == "ResourceNotFoundException":
            return GatewayMisconfigured(f"Invalid gateway configuration: the approvals table {table!r} (APPROVALS_TABLE) "
                                        "or one of its indexes does not exist; deploy the stage with make package.")
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            return GatewayMisconfigured(f"Invalid gateway configuration: the gateway's role may not use the approvals "
                                        f"table {table!r} ({code}); deploy the stage with make package.")
        return BackendError(f"The approvals table answered with an unexpected error {code}.")
    if isinstance(err, ReadTimeoutError):
        return BackendTimeout("The approvals table did not answer in time.")
    if isinstance(err, BotoConnectionError):
        return BackendUnavailable("The approvals table could not be reached; retry later.")
    if isinstance(err, BotoCoreError):
        return BackendError(f"The call to the approvals table failed ({type(err).__name__}).")
    return err


class ApprovalStore:
    """Approvals in a DynamoDB table (the low-level client: no resource layer to import at cold start)."""

    def __init__(self, client, table: str):
        self._client = client
        self._table = table

    # Not `_call`: that name marks Step Functions calls, which tools/policy.py's test scans for.
    def _request(self, operation: str, **params) -> dict:
        try:
            return getattr(self._client, operation)(TableName=self._table, **params)
        except (ClientError, BotoCoreError) as err:
            if isinstance(err, ClientError) and _code(err) in ("ConditionalCheckFailedException",
                                                                "TransactionCanceledException"):
                raise
            raise translate_store_error(err, self._table) from err

    def add(self, record: dict, task_token: str, expires_epoch: int, sent_ms: int) -> str:
        """Store a new pending approval: "added", "duplicate" (token already stored) or "ended" (its run ended)."""
        ttl = expires_epoch + RETENTION_SECONDS
        approval = _item({**record, "taskToken": task_token, "status": PENDING, "ttl": ttl,
                          "pending": _PENDING_PARTITION, "createdKey": f"{record['createdAt']}#{record['id']}"})
        # The key is a digest: the token itself is stored once, in the approval.
        token_key = _TOKEN_KEY_PREFIX + hashlib.sha256(task_token.encode()).hexdigest()
        marker = _item({"id": token_key, "approvalId": record["id"], "ttl": ttl})
        try:
            self._client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table, "Item": approval, "ConditionExpression": "attribute_not_exists(id)"}},
                {"Put": {"TableName": self._table, "Item": marker, "ConditionExpression": "attribute_not_exists(id)"}},
                # The execution's record, read and written strongly consistently with the closer's: a
                # message sent before its execution ended (and closed) adds nothing; a redriven run's
                # later message opens the record again.
                {"Update": {
                    "TableName": self._table, "Key": {"id": {"S": _EXECUTION_KEY_PREFIX + record["executionArn"]}},
                    "UpdateExpression": "ADD approvalIds :ids SET #ttl = :ttl REMOVE endedMs",
                    "ConditionExpression": "attribute_not_exists(endedMs) OR endedMs < :sent",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {":ids": {"SS": [record["id"]]}, ":ttl": {"N": str(ttl)},
                                                  ":sent": {"N": str(sent_ms)}}}},
            ])
        except ClientError as err:
            if _code(err) == "TransactionCanceledException":
                reasons = [reason.get("Code") for reason in err.response.get("CancellationReasons", [])]
                if reasons[1:2] == ["ConditionalCheckFailed"]:
                    return "duplicate"
                if reasons[2:3] == ["ConditionalCheckFailed"]:
                    return "ended"
            raise translate_store_error(err, self._table) from err
        except BotoCoreError as err:
            raise translate_store_error(err, self._table) from err
        return "added"

    def get(self, approval_id: str) -> dict | None:
        """The approval (without its task token), or None."""
        item = self._request("get_item", Key={"id": {"S": approval_id}}, ConsistentRead=True).get("Item")
        if item is None or "status" not in item:
            return None
        item.pop("taskToken", None)
        return _plain(item)

    def pending_page(self, limit: int, start_key: dict | None) -> tuple[list, dict | None]:
        """One page of the pending index, newest first, and the key to continue after it."""
        params = {"IndexName": PENDING_INDEX, "KeyConditionExpression": "pending = :p",
                  "ExpressionAttributeValues": {":p": {"S": _PENDING_PARTITION}},
                  "ScanIndexForward": False, "Limit": limit}
        if start_key:
            params["ExclusiveStartKey"] = _item(start_key)
        page = self._request("query", **params)
        last = page.get("LastEvaluatedKey")
        return [_plain(item) for item in page.get("Items", [])], (_plain(last) if last else None)

    @staticmethod
    def page_key(item: dict) -> dict:
        """The index key of a listed item, to continue a listing right after it."""
        return {"id": item["id"], "pending": _PENDING_PARTITION, "createdKey": item["createdKey"]}

    def answer(self, approval_id: str, decision: str, answer: dict) -> str | None:
        """Record the first answer (conditional write); the task token to send it with, or None if not pending."""
        try:
            old = self._request(
                "update_item", Key={"id": {"S": approval_id}},
                UpdateExpression="SET #status = :answered, answeredBy = :by, answeredAt = :at, #comment = :comment, "
                                 "#data = :data REMOVE pending, createdKey, taskToken",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status", "#comment": "comment", "#data": "data"},
                ExpressionAttributeValues={":answered": {"S": ANSWERED[decision]}, ":pending": {"S": PENDING},
                                           **{f":{key}": {"S": answer[name]} for key, name in
                                              (("by", "answeredBy"), ("at", "answeredAt"), ("comment", "comment"),
                                               ("data", "data"))}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as err:
            if _code(err) == "ConditionalCheckFailedException":
                return None
            raise
        return old["Attributes"]["taskToken"]["S"]

    def reopen(self, approval_id: str, task_token: str, created_key: str, answered_at: str) -> None:
        """Undo an answer that never reached the workflow, so that it can be answered again."""
        self._request(
            "update_item", Key={"id": {"S": approval_id}},
            UpdateExpression="SET #status = :pending, pending = :p, createdKey = :ck, taskToken = :t "
                             "REMOVE answeredBy, answeredAt, #comment, #data",
            ConditionExpression="answeredAt = :at",
            ExpressionAttributeNames={"#status": "status", "#comment": "comment", "#data": "data"},
            ExpressionAttributeValues={":pending": {"S": PENDING}, ":p": {"S": _PENDING_PARTITION},
                                       ":ck": {"S": created_key}, ":t": {"S": task_token}, ":at": {"S": answered_at}},
        )

    def close(self, approval_id: str, closed_at: str, only_if_answered_at: str | None = None) -> bool:
        """Close a pending approval (or an answer the workflow refused); True when it changed."""
        condition, values = "#status = :pending", {":pending": {"S": PENDING}}
        if only_if_answered_at is not None:
            condition, values = "answeredAt = :at", {":at": {"S": only_if_answered_at}}
        try:
            self._request(
                "update_item", Key={"id": {"S": approval_id}},
                UpdateExpression="SET #status = :closed, closedAt = :now "
                                 "REMOVE pending, createdKey, taskToken, answeredBy, answeredAt, #comment, #data",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", "#comment": "comment", "#data": "data"},
                ExpressionAttributeValues={**values, ":closed": {"S": CLOSED}, ":now": {"S": closed_at}},
            )
        except ClientError as err:
            if _code(err) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def end_execution(self, execution_arn: str, ended_ms: int) -> list:
        """Record that an execution ended; the ids of every approval it asked for."""
        ttl = ended_ms // 1000 + RETENTION_SECONDS
        item = self._request(
            "update_item", Key={"id": {"S": _EXECUTION_KEY_PREFIX + execution_arn}},
            UpdateExpression="SET endedMs = :ended, #ttl = :ttl", ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":ended": {"N": str(ended_ms)}, ":ttl": {"N": str(ttl)}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return sorted(item.get("approvalIds", {}).get("SS", []))


def table_definition(table: str) -> dict:
    """CreateTable arguments for the approvals table (the local stack and tests; make package writes the same)."""
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"}
                                 for name in ("id", "pending", "createdKey")],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {"IndexName": PENDING_INDEX,
             "KeySchema": [{"AttributeName": "pending", "KeyType": "HASH"},
                           {"AttributeName": "createdKey", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(LISTED_FIELDS)}},
        ],
    }


# What GET /approvals shows of each approval (and all the pending index holds besides its keys).
LISTED_FIELDS = ("title", "stateMachine", "executionArn", "createdAt", "expiresAt", "candidateGroups", "candidateUsers")
