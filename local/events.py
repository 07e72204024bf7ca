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
from local.state import create_private_state_once, shown, state_path

LOG = logging.getLogger("sfn_gateway.local.events")
FAILURE_QUEUE_NAME = "sfn-gateway-webhook-failures"
SECRET_PARAMETER = "/sfn-gateway/local/webhooks/demo"
DEMO_ID = "demo"
# The demo secret outlives restarts, so a receiver set up once keeps verifying.
SECRET_FILE = "webhook-secret"
SECRET_VARIABLE = "LOCAL_WEBHOOK_SECRET"
CREATED, PRESENT = "created", "present"
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

    def ensure_secret(self, parameter: str, value: str) -> str:
        """Create the parameter with this secret if the engine lacks it; CREATED, or PRESENT (left as it is)."""
        try:
            self._ssm.put_parameter(Name=parameter, Value=value, Type="SecureString", Overwrite=False)
        except self._ssm.exceptions.ParameterAlreadyExists:
            return PRESENT
        return CREATED

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
        try:
            future = self._pool.submit(self._invoke, event)
        except RuntimeError:
            # Detached while this event was on its way: dropped, as in a stack that is stopping.
            self._finished(None)
            return
        # Also called for an invocation cancelled before it ran (detach), so wait_idle never waits for it.
        future.add_done_callback(self._finished)

    def _finished(self, _future) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _invoke(self, event: dict) -> None:
        for attempt in range(1, self.async_retries + 2):
            context = LambdaContext("sfn-gateway-local-webhooks", 256, int(self.function_timeout * 1000))
            try:
                self._handler(event, context)
                return
            except Exception as err:  # noqa: BLE001 - Lambda treats any exception as a failed invocation
                LOG.warning("webhooks handler failed (attempt %d): %s", attempt, err)
                error = err
        self._send_to_failure_queue(event, context, error, attempt)

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


class LocalWebhookSecretError(ValueError):
    """LOCAL_WEBHOOK_SECRET is not a usable Standard Webhooks secret."""


def local_webhook_secret() -> tuple[str, str]:
    """The secret for subscriptions whose parameter is missing, and where it comes from (kept across runs)."""
    from chalicelib.errors import GatewayMisconfigured
    from chalicelib.webhooks.delivery import parse_secrets

    given = os.environ.get(SECRET_VARIABLE)
    if given is not None:
        try:
            keys = parse_secrets(given, SECRET_VARIABLE)
        except GatewayMisconfigured:
            keys = ()
        if len(keys) != 1:
            # Never echo the value: it is a secret.
            raise LocalWebhookSecretError(
                f"{SECRET_VARIABLE} must be one whsec_<base64 of 16+ random bytes> secret; unset it to use "
                f"{shown(state_path(SECRET_FILE))} (created on the first run)."
            )
        return given.strip(), SECRET_VARIABLE
    secret, _ = create_private_state_once(SECRET_FILE, lambda: new_secret() + "\n")
    return secret.strip(), shown(state_path(SECRET_FILE))


class DemoWebhooks:
    """What `make run` adds for webhooks: the demo receiver beside the stage's own subscriptions, their secrets in SSM."""

    def __init__(self, engine_url: str, state_machines: dict, receiver_port: int, own_url: str | None = None,
                 region: str = REGION, configured: list | None = None):
        from local.receiver import Receiver

        timeout = float(os.environ.get("LOCAL_WEBHOOK_TIMEOUT") or 29)
        self.secret, self.secret_source = local_webhook_secret()
        self.events = LocalWebhooks(engine_url, function_timeout=timeout, region=region)
        self.receiver = Receiver(self.secret, port=receiver_port, echo=lambda line: print(line, flush=True)).start()
        standard = sorted(name for name, machine in state_machines.items() if machine["type"] == "STANDARD")
        # The stage's subscriptions as written. An entry with the demo's id only names the demo
        # receiver's settings: it delivers every STANDARD workflow (also ones dropped into
        # statemachines/) to the receiver, wherever this run put it.
        subscriptions = [entry for entry in configured or [] if not _is_demo(entry)]
        demo = next((entry for entry in configured or [] if _is_demo(entry)), {})
        self.secret_parameter = demo.get("secretParameter", SECRET_PARAMETER)
        subscriptions.insert(0, {**demo, "id": DEMO_ID, "url": self.receiver.url, "stateMachines": standard,
                                 "secretParameter": self.secret_parameter})
        if own_url:
            subscriptions.append({"id": "yours", "url": own_url, "stateMachines": standard,
                                  "secretParameter": self.secret_parameter})
        self.subscriptions = subscriptions
        self.secrets = {}
        self.machines = standard
        self.own_url = own_url
        # The local stage's variables for webhooks; botocore reads AWS_ENDPOINT_URL_SSM itself.
        self.variables = {"WEBHOOKS": json.dumps(subscriptions), "WEBHOOKS_ALLOW_LOCAL": "on",
                          "AWS_ENDPOINT_URL_SSM": engine_url}

    def create_missing_secrets(self) -> None:
        """Give each subscription's secret parameter the secret above, unless the engine has it already."""
        # Called once the stage's subscriptions passed the gateway's own check of WEBHOOKS.
        for parameter in dict.fromkeys(entry["secretParameter"] for entry in self.subscriptions):
            self.secrets[parameter] = self.events.ensure_secret(parameter, self.secret)

    def attach(self, app_module) -> None:
        """Run the app's webhooks handler on the engine's status changes."""
        from chalicelib.webhooks.delivery import clear_secret_cache

        def deliver_with_current_secrets(event, context):
            # In AWS a secret put in SSM counts once the function's cache (SECRET_CACHE_SECONDS)
            # runs out; locally it counts from the next delivery, so a changed secret is seen at once.
            clear_secret_cache()
            return app_module.deliver_webhooks(event, context)

        self.events.attach(deliver_with_current_secrets)

    def banner(self) -> str:
        """How to see webhooks arrive, and how to subscribe another URL."""
        own = f"\n  Also delivered to WEBHOOK_URL={self.own_url}." if self.own_url else ""
        others = [entry for entry in self.subscriptions if entry["id"] not in (DEMO_ID, "yours")]
        stage = "".join(
            f"\n  {entry['id']}: {entry['url']} ({', '.join(entry['stateMachines'])}), secret {entry['secretParameter']}: "
            f"{self._secret_text(entry['secretParameter'])}"
            for entry in others
        )
        stage = f"\nThe local stage's own subscriptions (.chalice/config.json), served as written:{stage}" if others else ""
        return f"""
Webhooks: every end of {', '.join(self.machines)} is POSTed, signed (Standard Webhooks), to the demo
receiver at {self.receiver.url}, which verifies the signature and prints it here.{own}
  Secret: {self.secret}   (kept in {self.secret_source}; SSM SecureString {self.secret_parameter} on the engine)
  Your own receiver: WEBHOOK_URL=http://127.0.0.1:9000/hook make run   (same secret; verify with the
  standardwebhooks library: Webhook(secret).verify(body, headers); docs/webhooks.md)
  Failed deliveries: SQS queue {FAILURE_QUEUE_NAME} on the engine.{stage}
"""

    def _secret_text(self, parameter: str) -> str:
        if self.secrets.get(parameter) == CREATED:
            return f"created with the secret above ({self.secret_source})"
        return "already on the engine, used as it is"

    def stop(self, grace: float = 0.0) -> None:
        """Stop listening, give deliveries already running up to grace seconds, then stop the receiver."""
        self.events.detach()
        # While the receiver still answers, so that they end rather than retry against a closed port.
        self.events.wait_idle(grace)
        self.receiver.stop()


def _is_demo(entry) -> bool:
    return isinstance(entry, dict) and entry.get("id") == DEMO_ID
