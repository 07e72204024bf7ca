"""Dev-only: the local engine publishes "Step Functions Execution Status Change" events, as AWS does
to EventBridge, and the app's real webhooks handler runs on them.

moto 5.2.5 publishes no events. Here, when a STANDARD execution ends (moto's worker reports its
end; StopExecution ends it at once), an event shaped like EventBridge's is built. Like AWS,
the input and output are left out (`inputDetails.included: false`) when they would push the
event over EventBridge's 256 KB limit. Like Lambda's asynchronous invocation, the handler runs
on a worker thread, and a handler that raises ends as an on-failure record (Lambda's
destination format) in a local SQS queue on the engine's server. Lambda retries a failed async
invocation twice, minutes apart; locally the record is written at once (LOCAL_ASYNC_RETRIES=0).
"""
import base64
import datetime
import json
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
from chalice.local import LambdaContext
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    SyncExecutionWorkerCommunication,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from chalicelib.webhooks.rule import EVENT_DETAIL_TYPE, EVENT_SOURCE
from local.engine import ACCOUNT_ID, REGION

LOG = logging.getLogger("sfn_gateway.local.events")
FAILURE_QUEUE_NAME = "sfn-gateway-webhook-failures"
SECRET_PARAMETER = "/sfn-gateway/local/webhooks/demo"
# EventBridge's event limit is 256 KB; Step Functions leaves input/output out above about this.
EVENT_PAYLOAD_LIMIT = 248 * 1024
LOCAL_ASYNC_RETRIES = 0
_ENDED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED)
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_listeners = []
_listeners_lock = threading.Lock()
_installed = False


def _milliseconds(moment):
    return None if moment is None else int(moment.timestamp() * 1000)


def _json_text(value):
    return None if value is None else to_json_str(value)


def status_change_event(execution) -> dict:
    """The EventBridge event AWS would publish for this execution's current status."""
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": execution.exec_status.value,
        "startDate": _milliseconds(execution.start_date),
        "stopDate": _milliseconds(execution.stop_date),
        "input": _json_text(execution.input_data),
        "output": _json_text(execution.output) if execution.exec_status == ExecutionStatus.SUCCEEDED else None,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True},
        "error": execution.error,
        "cause": execution.cause,
    }
    for field in ("output", "input"):
        if len((detail["input"] or "").encode()) + len((detail["output"] or "").encode()) > EVENT_PAYLOAD_LIMIT:
            detail[field] = None
            detail[f"{field}Details"] = {"included": False}
    # arn:<partition>:states:<region>:<account>:execution:...
    region, account = execution.exec_arn.split(":")[3:5]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EVENT_DETAIL_TYPE,
        "source": EVENT_SOURCE,
        "account": account,
        "time": datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution.exec_arn],
        "detail": detail,
    }


def _publish(execution) -> None:
    # Once per end: StopExecution publishes ABORTED, then the abandoned worker ends too.
    if getattr(execution, "_status_change_published", False) or execution.exec_status not in _ENDED:
        return
    execution._status_change_published = True
    event = status_change_event(execution)
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(event)


def _install() -> None:
    global _installed
    if _installed:
        return
    terminated = BaseExecutionWorkerCommunication.terminated
    stop_execution = StepFunctionsParserBackend.stop_execution

    def terminated_and_published(self):
        terminated(self)
        # Express executions publish no status-change events in AWS.
        if not isinstance(self, SyncExecutionWorkerCommunication):
            _publish(self.execution)

    def stop_and_publish(backend, execution_arn, *args, **kwargs):
        execution = stop_execution(backend, execution_arn, *args, **kwargs)
        _publish(execution)
        return execution

    BaseExecutionWorkerCommunication.terminated = terminated_and_published
    StepFunctionsParserBackend.stop_execution = stop_and_publish
    _installed = True


def subscribe(listener) -> None:
    """Call listener(event) for every status-change event of the local engine (after the webhooks' own)."""
    _install()
    with _listeners_lock:
        _listeners.append(listener)


def unsubscribe(listener) -> None:
    """Stop calling listener."""
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def new_secret() -> str:
    """A fresh Standard Webhooks secret (whsec_ + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class LocalWebhooks:
    """Status-change events from one local engine, handed to a Chalice event handler like Lambda would."""

    def __init__(self, engine_url: str, function_timeout: float = 29.0, async_retries: int = LOCAL_ASYNC_RETRIES,
                 region: str = REGION):
        self.engine_url = engine_url
        self.function_timeout = function_timeout
        self.async_retries = async_retries
        self.region = region
        # moto keeps one backend per region: the queue and the secret live in the stack's region.
        self._sqs = boto3.client("sqs", endpoint_url=engine_url, region_name=region, **_CREDENTIALS)
        self._ssm = boto3.client("ssm", endpoint_url=engine_url, region_name=region, **_CREDENTIALS)
        self.failure_queue_url = self._sqs.create_queue(QueueName=FAILURE_QUEUE_NAME)["QueueUrl"]
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="webhooks")
        self._handler = None
        self._pending = 0
        self._idle = threading.Condition()

    def put_secret(self, value: str, parameter: str = SECRET_PARAMETER) -> None:
        """Store a subscription's secret as a SecureString parameter on the engine's SSM."""
        self._ssm.put_parameter(Name=parameter, Value=value, Type="SecureString", Overwrite=True)

    def attach(self, handler) -> "LocalWebhooks":
        """Run handler(event, context) (the app's on_cw_event function) for each status change."""
        self._handler = handler
        _install()
        with _listeners_lock:
            _listeners.append(self._submit)
        return self

    def detach(self) -> None:
        """Stop listening; deliveries already running finish on their threads."""
        with _listeners_lock:
            if self._submit in _listeners:
                _listeners.remove(self._submit)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no handler invocation is running (tests, benchmarks)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _submit(self, event: dict) -> None:
        with self._idle:
            self._pending += 1
        self._pool.submit(self._invoke, event)

    def _invoke(self, event: dict) -> None:
        try:
            for attempt in range(1, self.async_retries + 2):
                context = LambdaContext("sfn-gateway-local-webhooks", 256, int(self.function_timeout * 1000))
                try:
                    self._handler(event, context)
                    return
                except Exception as err:  # noqa: BLE001 - Lambda treats any exception as a failed invocation
                    LOG.warning("webhooks handler failed (attempt %d): %s", attempt, err)
                    error = err
            self._send_to_failure_queue(event, context, error, attempt)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _send_to_failure_queue(self, event: dict, context, error: Exception, attempts: int) -> None:
        # The record Lambda sends to an on-failure destination of an asynchronous invocation.
        record = {
            "version": "1.0",
            "timestamp": datetime.datetime.now(tz=datetime.timezone.utc).isoformat(),
            "requestContext": {
                "requestId": context.aws_request_id,
                "functionArn": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:sfn-gateway-local-webhooks:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        self._sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(record))

    def failures(self, max_messages: int = 10) -> list:
        """Read (and delete) on-failure records from the local failure queue."""
        messages = self._sqs.receive_message(
            QueueUrl=self.failure_queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in messages:
            self._sqs.delete_message(QueueUrl=self.failure_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in messages]


class DemoWebhooks:
    """What `make run` adds for webhooks: the secret in SSM, the demo receiver, the stage's subscriptions."""

    def __init__(self, engine_url: str, state_machines: dict, receiver_port: int, own_url: str | None = None,
                 region: str = REGION):
        from local.receiver import Receiver

        timeout = float(os.environ.get("LOCAL_WEBHOOK_TIMEOUT") or 29)
        self.events = LocalWebhooks(engine_url, function_timeout=timeout, region=region)
        self.secret = new_secret()
        self.events.put_secret(self.secret)
        self.receiver = Receiver(self.secret, port=receiver_port, echo=lambda line: print(line, flush=True)).start()
        standard = sorted(name for name, machine in state_machines.items() if machine["type"] == "STANDARD")
        subscriptions = [{"id": "demo", "url": self.receiver.url, "stateMachines": standard,
                          "secretParameter": SECRET_PARAMETER}]
        if own_url:
            subscriptions.append({"id": "yours", "url": own_url, "stateMachines": standard,
                                  "secretParameter": SECRET_PARAMETER})
        self.machines = standard
        self.own_url = own_url
        # The local stage's variables for webhooks; botocore reads AWS_ENDPOINT_URL_SSM itself.
        self.variables = {"WEBHOOKS": json.dumps(subscriptions), "WEBHOOKS_ALLOW_LOCAL": "on",
                          "AWS_ENDPOINT_URL_SSM": engine_url}

    def attach(self, app_module) -> None:
        """Run the app's webhooks handler on the engine's status changes."""
        self.events.attach(app_module.deliver_webhooks)

    def banner(self) -> str:
        """How to see webhooks arrive, and how to subscribe another URL."""
        own = f"\n  Also delivered to WEBHOOK_URL={self.own_url}." if self.own_url else ""
        return f"""
Webhooks: every end of {', '.join(self.machines)} is POSTed, signed (Standard Webhooks), to the demo
receiver at {self.receiver.url}, which verifies the signature and prints it here.{own}
  Secret: {self.secret}   (SSM SecureString {SECRET_PARAMETER} on the engine)
  Your own receiver: WEBHOOK_URL=http://127.0.0.1:9000/hook make run   (same secret; verify with the
  standardwebhooks library: Webhook(secret).verify(body, headers); docs/webhooks.md)
  Failed deliveries: SQS queue {FAILURE_QUEUE_NAME} on the engine.
"""

    def stop(self) -> None:
        """Stop the receiver and the event listener."""
        self.events.detach()
        self.receiver.stop()
