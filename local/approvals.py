"""Dev-only: the approvals inbox on the local stack, wired as Lambda and EventBridge wire it when deployed.

* The queue, its dead-letter queue and the table live on the engine's moto server (its SQS
  and DynamoDB), created as `make package` declares them (chalicelib.approvals.store.table_definition).
* A poller long-polls the queue and hands each batch to the app's `on_sqs_message` handler, as
  Lambda's event source mapping does: a batch is deleted when the handler returns, and stays for
  a redelivery when it raises (after MAX_RECEIVE_COUNT receives SQS moves it to the dead-letter queue).
* The engine's status-change events (local/events.py) run the app's closer, as EventBridge would.
* moto's DynamoDB checks a ConditionExpression and writes in two steps that concurrent requests
  can interleave; DynamoDB applies a conditional write atomically per item, which "the first
  answer wins" relies on. Writes are serialised here so the local table behaves like the real one.
"""
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
from chalice.local import LambdaContext
from moto.dynamodb.models import DynamoDBBackend

from chalicelib.approvals.store import table_definition
from local import events
from local.engine import ACCOUNT_ID, APPROVAL_QUEUE_NAME, REGION

LOG = logging.getLogger("sfn_gateway.local.approvals")
TABLE_NAME = "sfn-gateway-local-approvals"
DEAD_LETTER_QUEUE_NAME = APPROVAL_QUEUE_NAME + "-dlq"
# As the packaged queue (tools/templates/approvals.sam.json): a batch that keeps failing is dead-lettered.
MAX_RECEIVE_COUNT = 5
# Short locally, so a failed batch comes back within seconds (deployed: the function's timeout x 6).
VISIBILITY_TIMEOUT = 5
BATCH_SIZE = 10
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_write_lock = threading.RLock()
_atomic = False


def make_conditional_writes_atomic() -> None:
    """Serialise moto's DynamoDB writes, so a ConditionExpression is checked and applied as one step."""
    global _atomic
    if _atomic:
        return
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _atomic = True


def _serialised(write):
    def locked(*args, **kwargs):
        with _write_lock:
            return write(*args, **kwargs)

    return locked


class LocalApprovals:
    """The approvals queue, dead-letter queue and table on a local engine, and their consumer and closer."""

    def __init__(self, engine_url: str, region: str = REGION, queue_name: str = APPROVAL_QUEUE_NAME,
                 table: str = TABLE_NAME):
        make_conditional_writes_atomic()
        self.region = region
        self.table = table
        self.queue_name = queue_name
        self._sqs = boto3.client("sqs", endpoint_url=engine_url, region_name=region, **_CREDENTIALS)
        dynamodb = boto3.client("dynamodb", endpoint_url=engine_url, region_name=region, **_CREDENTIALS)
        self.dead_letter_queue_url = self._sqs.create_queue(QueueName=DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
        dead_letter_arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{DEAD_LETTER_QUEUE_NAME}"
        self.queue_url = self._sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        self._sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        })
        try:
            dynamodb.create_table(**table_definition(table))
        except dynamodb.exceptions.ResourceInUseException:
            pass
        # The stage's variables for approvals; botocore reads AWS_ENDPOINT_URL_<SERVICE> itself.
        self.variables = {
            "APPROVALS": "on", "APPROVALS_QUEUE": queue_name, "APPROVALS_TABLE": table,
            "APPROVALS_DLQ_URL": self.dead_letter_queue_url,
            "AWS_ENDPOINT_URL_DYNAMODB": engine_url, "AWS_ENDPOINT_URL_SQS": engine_url,
        }
        self._stopping = threading.Event()
        self._poller = None
        self._closers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="approvals-closer")
        self._consume = self._close = None

    def attach(self, app_module) -> "LocalApprovals":
        """Run the app's approvals consumer on the queue and its closer on the engine's status changes."""
        self._consume, self._close = app_module.consume_approvals, app_module.close_approvals
        events.subscribe(self._on_status_change)
        self._poller = threading.Thread(target=self._poll, name="approvals-poller", daemon=True)
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stop polling and listening (a long poll in progress ends within a second)."""
        self._stopping.set()
        events.unsubscribe(self._on_status_change)
        self._closers.shutdown(wait=False, cancel_futures=True)
        if self._poller is not None:
            self._poller.join(timeout=1.5)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH_SIZE, WaitTimeSeconds=1,
                    AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            except Exception as err:  # noqa: BLE001 - the engine stopping under the poller
                if not self._stopping.is_set():
                    LOG.warning("approvals poller: %s", err)
                    self._stopping.wait(1)
                continue
            if messages:
                self._deliver(messages)

    def _deliver(self, messages: list) -> None:
        # The event Lambda's SQS event source mapping sends.
        records = [{
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes", {}), "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{self.queue_name}", "awsRegion": self.region,
        } for message in messages]
        context = LambdaContext("sfn-gateway-local-approvals_consumer", 256, 30_000)
        try:
            self._consume({"Records": records}, context)
        except Exception as err:  # noqa: BLE001 - Lambda treats any exception as a failed batch
            LOG.warning("approvals consumer failed; the batch comes back after %d s: %s", VISIBILITY_TIMEOUT, err)
            return
        self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)])

    def _on_status_change(self, event: dict) -> None:
        self._closers.submit(self._run_closer, event)

    def _run_closer(self, event: dict) -> None:
        try:
            self._close(event, LambdaContext("sfn-gateway-local-approvals_closer", 256, 30_000))
        except Exception as err:  # noqa: BLE001 - EventBridge retries; locally the log says it
            LOG.warning("approvals closer failed for %s: %s", event.get("detail", {}).get("executionArn"), err)

    def banner(self, url: str) -> str:
        """How to try the inbox on this stack."""
        return f"""
Approvals inbox (APPROVALS=on): workflows send to SQS queue {self.queue_name} on the engine
({self.queue_url}); the demo `approval` workflow asks group approvers. GET {url}/approvals lists what
you may answer; POST {url}/approvals/<id>/approve (or /reject). See docs/approvals.md.
"""
