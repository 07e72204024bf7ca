"""Signed completion webhooks: match a Step Functions status-change event, sign, deliver, retry.

EventBridge invokes the handler asynchronously. A subscription that still fails after the
retries here makes the handler raise, so Lambda's own async retries and then the failure
destination (an SQS queue, see docs/webhooks.md) take over: nothing is dropped silently.
"""
import base64
import binascii
import datetime
import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib import factory
from chalicelib.config import get_config
from chalicelib.errors import GatewayError, GatewayMisconfigured
from chalicelib.serialization import dumps, to_json_ready
from chalicelib.webhooks.settings import WebhookSubscription
from chalicelib.webhooks.ssrf import is_public_address

SECRET_PREFIX = "whsec_"
# Standard Webhooks recommends 24-64 random bytes; fewer than 16 is refused as too weak.
MIN_SECRET_BYTES = 16
# Read once per container; a rotated parameter is picked up within this many seconds.
SECRET_CACHE_SECONDS = 300
ATTEMPT_TIMEOUT = 10.0  # seconds per POST, shortened to what the invocation has left
MIN_ATTEMPT_SECONDS = 0.5  # no attempt is started with less time than this
MAX_ATTEMPTS = 5
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 4.0
# Time kept back from the Lambda deadline to log the outcome and raise before Lambda kills us.
SAFETY_MARGIN_SECONDS = 1.5
DEFAULT_BUDGET_SECONDS = 25.0
MAX_RESPONSE_BYTES = 64 * 1024
RETRIED_STATUSES = frozenset({408, 429})
USER_AGENT = "sfn-gateway-webhooks/1"

DELIVERY_LOG = logging.getLogger("sfn_gateway.webhooks")
DELIVERY_LOG.setLevel(logging.INFO)


class DestinationRefused(Exception):
    """The webhook URL may not be contacted (SSRF guard); never retried."""


class WebhookDeliveryFailed(Exception):
    """At least one subscription could not be delivered; raised so Lambda's failure path takes over."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one subscription's delivery."""

    subscription_id: str
    result: str  # "delivered", "stop-requested" (410) or "failed"
    attempts: int
    http_status: int | None = None
    error: str | None = None


def matching_subscriptions(subscriptions, detail: dict) -> list:
    """The subscriptions that want this execution's status change."""
    return [
        s for s in subscriptions
        if detail.get("stateMachineArn") in s.state_machine_arns and detail.get("status") in s.statuses
    ]


def webhook_id(event: dict) -> str:
    """The webhook-id: the EventBridge event id, the same on every retry and on a replay."""
    return f"msg_{event['id']}"


def _event_date(milliseconds):
    # EventBridge gives epoch milliseconds; the API gives ISO 8601 (via to_json_ready).
    if milliseconds is None:
        return None
    return datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.timezone.utc)


def execution_description(detail: dict, registry, describe=None) -> dict:
    """The execution as GET /executions/{arn} describes it, built from the event's detail."""
    # The entry GET /executions/{arn} would name (the unqualified machine before a version or alias).
    machine = registry.for_execution(detail["executionArn"])
    description = to_json_ready({
        "executionArn": detail["executionArn"],
        "stateMachineArn": detail["stateMachineArn"],
        "stateMachine": machine.name,
        "name": detail.get("name"),
        "status": detail.get("status"),
        "startDate": _event_date(detail.get("startDate")),
        "stopDate": _event_date(detail.get("stopDate")),
        "input": detail.get("input"),
        "output": detail.get("output"),
        "error": detail.get("error"),
        "cause": detail.get("cause"),
    })
    # EventBridge leaves out input/output over its ~248 KB event limit and says so here.
    truncated = [
        field for field in ("input", "output")
        if (detail.get(f"{field}Details") or {}).get("included") is False
    ]
    if truncated:
        described = (describe or _describe_execution)(detail["executionArn"])
        description.update({field: described.get(field) for field in truncated})
    return description


def _describe_execution(execution_arn: str) -> dict:
    # The gateway without its per-caller access checks: an EventBridge event has no caller,
    # and the operator chose what each subscription receives.
    from chalicelib.stepfunctions.service import StepFunctionsGateway

    return StepFunctionsGateway(factory.get_sfn_client, get_config(), None).describe_execution(execution_arn)


def parse_secrets(value: str, parameter: str) -> tuple:
    """The signing keys in a parameter value: space-separated whsec_<base64> secrets, newest first."""
    keys = []
    for secret in value.split():
        key = None
        if secret.startswith(SECRET_PREFIX):
            try:
                key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
            except (binascii.Error, ValueError):
                key = None
        if key is None or len(key) < MIN_SECRET_BYTES:
            # Never echo the value: it is a secret.
            raise GatewayMisconfigured(
                f"Invalid gateway configuration: SSM parameter {parameter!r} must hold whsec_<base64 of "
                f"{MIN_SECRET_BYTES}+ random bytes> secrets separated by spaces (two while rotating)."
            )
        keys.append(key)
    if not keys:
        raise GatewayMisconfigured(f"Invalid gateway configuration: SSM parameter {parameter!r} is empty.")
    return tuple(keys)


def sign(keys, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one v1,<base64 HMAC-SHA256> per key, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode() for key in keys
    )


_secret_cache: dict = {}
_secret_lock = threading.Lock()


def signing_keys(parameter: str, clock=time.monotonic) -> tuple:
    """The keys in an SSM SecureString parameter, read once and cached for SECRET_CACHE_SECONDS."""
    with _secret_lock:
        cached = _secret_cache.get(parameter)
        if cached and cached[0] > clock():
            return cached[1]
        value = factory.read_secure_parameter("webhook secret parameter", parameter)["Value"]
        keys = parse_secrets(value, parameter)
        _secret_cache[parameter] = (clock() + SECRET_CACHE_SECONDS, keys)
        return keys


def clear_secret_cache() -> None:
    """Forget cached secrets (tests; a rotation that cannot wait)."""
    with _secret_lock:
        _secret_cache.clear()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to an address already checked, while Host names the URL's host."""

    def __init__(self, host, port, address, timeout, connector):
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._connector = connector

    def connect(self):
        # Connecting by name would resolve again, and a DNS answer changed in between
        # (rebinding) could reach an address that was never checked.
        self.sock = self._connector((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to a checked address; the certificate is verified for the URL's host (SNI too)."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host, port, address, timeout, connector, tls=None):
        super().__init__(host, port, address, timeout, connector)
        self._tls = tls or ssl.create_default_context()

    def connect(self):
        super().connect()
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


def _checked_address(host: str, port: int, allow_local: bool, resolver) -> str:
    try:
        addresses = [info[4][0] for info in resolver(host, port, type=socket.SOCK_STREAM)]
    except (socket.gaierror, UnicodeError) as err:
        raise OSError(f"cannot resolve {host}: {err}") from err
    if not addresses:
        raise OSError(f"{host} has no address")
    if not allow_local:
        # Every answer must be public: a name with one private address is refused outright.
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise DestinationRefused(f"{host} resolves to the non-public address {refused[0]}")
    return addresses[0]


def post(url: str, body: bytes, headers: dict, timeout: float, allow_local: bool = False,
         resolver=socket.getaddrinfo, connector=socket.create_connection, tls=None) -> tuple:
    """POST once, without following redirects; (status, Location header)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_local and parts.scheme == "http"):
        raise DestinationRefused(f"{parts.scheme}:// is refused; webhooks are delivered over https only")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _checked_address(parts.hostname, port, allow_local, resolver)
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(parts.hostname, port, address, timeout, connector, tls)
    else:
        connection = _PinnedHTTPConnection(parts.hostname, port, address, timeout, connector)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The socket timeout bounds each read, not the answer: a receiver dripping a byte at a
    # time would hold the invocation until Lambda kills it. The watchdog ends the attempt.
    expired = threading.Event()
    watchdog = threading.Timer(timeout, _abort, (connection, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status, response.getheader("Location")
    except (OSError, http.client.HTTPException) as err:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout:.1f} s") from err
        raise
    finally:
        watchdog.cancel()
        connection.close()


def _abort(connection, expired: threading.Event) -> None:
    expired.set()
    sock = connection.sock
    if sock is not None:
        try:
            # shutdown() wakes a thread blocked in recv(); close() alone may not.
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def deliver(subscription: WebhookSubscription, body: bytes, message_id: str, deadline: float,
            allow_local: bool = False, send=post, sleep=time.sleep, clock=time.monotonic) -> Outcome:
    """Deliver one signed body to one subscription, retrying transient faults until the deadline."""
    try:
        keys = signing_keys(subscription.secret_parameter)
    except GatewayError as err:
        return Outcome(subscription.id, "failed", 0, error=str(err))
    delay, attempts, last_error, last_status = BACKOFF_FIRST, 0, "no time left to deliver", None
    while attempts < MAX_ATTEMPTS:
        remaining = deadline - clock()
        if remaining < MIN_ATTEMPT_SECONDS:
            break
        attempts += 1
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(keys, message_id, timestamp, body),
        }
        try:
            status, location = send(subscription.url, body, headers, min(ATTEMPT_TIMEOUT, remaining), allow_local)
        except DestinationRefused as err:
            return Outcome(subscription.id, "failed", attempts, error=f"refused: {err}")
        except (OSError, http.client.HTTPException) as err:
            last_status, last_error = None, f"{type(err).__name__}: {err}"
        else:
            if 200 <= status < 300:
                return Outcome(subscription.id, "delivered", attempts, status)
            if status == 410:
                return Outcome(subscription.id, "stop-requested", attempts, status)
            last_status, last_error = status, f"HTTP {status}"
            if not (status in RETRIED_STATUSES or status >= 500):
                if 300 <= status < 400:
                    last_error += f": redirect to {location!r} not followed"
                return Outcome(subscription.id, "failed", attempts, status, last_error)
        pause = min(delay, BACKOFF_MAX) * (0.5 + random.random() / 2)
        delay *= 2
        if clock() + pause + MIN_ATTEMPT_SECONDS > deadline:
            break
        sleep(pause)
    return Outcome(subscription.id, "failed", attempts, last_status, last_error)


def _deadline(context, clock) -> float:
    remaining = DEFAULT_BUDGET_SECONDS
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000
    return clock() + remaining - SAFETY_MARGIN_SECONDS


def _log(outcome: Outcome, message_id: str, detail: dict) -> None:
    record = {
        "webhookId": message_id,
        "subscriptionId": outcome.subscription_id,
        "executionArn": detail.get("executionArn"),
        "executionStatus": detail.get("status"),
        "result": outcome.result,
        "attempts": outcome.attempts,
        "httpStatus": outcome.http_status,
    }
    if outcome.result == "delivered":
        DELIVERY_LOG.info(json.dumps(record))
    elif outcome.result == "stop-requested":
        record["message"] = (f"the receiver answered 410 Gone: it asks to stop; remove subscription "
                             f"{outcome.subscription_id!r} from WEBHOOKS")
        DELIVERY_LOG.warning(json.dumps(record))
    else:
        DELIVERY_LOG.error(json.dumps({**record, "error": outcome.error}))


def deliver_status_change(event: dict, context=None, send=post, clock=time.monotonic) -> list:
    """Deliver one status-change event to every matching subscription; raise if any still fails."""
    config = get_config()
    detail = event.get("detail") or {}
    subscriptions = matching_subscriptions(config.webhooks, detail)
    if not subscriptions:
        return []
    deadline = _deadline(context, clock)
    message_id = webhook_id(event)
    try:
        # The gateway's own writer: numbers in input/output go out exactly as they came in.
        body = dumps(execution_description(detail, config.registry)).encode()
    except GatewayError as err:
        # DescribeExecution failed: nothing was sent; the failure record keeps the event for a replay.
        for subscription in subscriptions:
            _log(Outcome(subscription.id, "failed", 0, error=f"{type(err).__name__}: {err}"), message_id, detail)
        raise
    # One thread per receiver, so a receiver that never answers cannot starve the others.
    with ThreadPoolExecutor(max_workers=len(subscriptions)) as pool:
        outcomes = list(pool.map(
            lambda s: deliver(s, body, message_id, deadline, config.webhooks_allow_local, send=send, clock=clock),
            subscriptions,
        ))
    for outcome in outcomes:
        _log(outcome, message_id, detail)
    failed = [outcome for outcome in outcomes if outcome.result == "failed"]
    if failed:
        raise WebhookDeliveryFailed(
            f"Webhook {message_id} for {detail.get('executionArn')} ({detail.get('status')}) failed for "
            + "; ".join(f"subscription {o.subscription_id!r} after {o.attempts} attempts: {o.error}" for o in failed)
        )
    return outcomes
