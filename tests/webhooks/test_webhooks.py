"""Webhooks: matching, the body, Standard Webhooks signatures, secrets, delivery faults, SSRF guards."""
import base64
import json
import os
import socket
import time

import boto3
import pytest
from botocore.stub import Stubber
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib import factory
from chalicelib.webhooks import rule as webhook_rule
from chalicelib.webhooks import delivery as webhooks
from chalicelib.config import config_from_environ, get_config
from chalicelib.errors import ExecutionNotFound, GatewayMisconfigured
from local.receiver import HANG, Receiver
from tests.conftest import ORDERS_ARN, TEST_STATE_MACHINES, execution_arn

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
PARAMETER = "/sfn-gateway/test/webhooks/billing"
REAL_SSM_CLIENT = factory.get_ssm_client  # the autouse fixture below replaces it


def subscription_entry(url="https://billing.example.com/hooks", **changes):
    return {"id": "billing", "url": url, "stateMachines": ["orders"], "secretParameter": PARAMETER, **changes}


def stage(monkeypatch, *entries, allow_local=True):
    """Point the cached configuration at a stage with these subscriptions."""
    monkeypatch.setenv("STATE_MACHINES", json.dumps(TEST_STATE_MACHINES))
    monkeypatch.setenv("WEBHOOKS", json.dumps(list(entries)))
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOCAL", "on" if allow_local else "off")
    get_config.cache_clear()
    return get_config()


def status_change(status="SUCCEEDED", arn=None, **detail):
    arn = arn or execution_arn("orders", "run-1")
    return {
        "version": "0", "id": "6f3b1c2e-0000-4000-8000-000000000001", "detail-type": webhook_rule.EVENT_DETAIL_TYPE,
        "source": "aws.states", "account": "123456789012", "time": "2026-11-26T09:00:00Z", "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "executionArn": arn, "stateMachineArn": ORDERS_ARN, "name": arn.rsplit(":", 1)[1], "status": status,
            "startDate": 1795683600000, "stopDate": 1795683601500, "input": '{"order": 7}',
            "inputDetails": {"included": True}, "output": '{"total": 42}' if status == "SUCCEEDED" else None,
            "outputDetails": {"included": True}, "error": None, "cause": None, **detail,
        },
    }


@pytest.fixture(autouse=True)
def secrets(monkeypatch):
    """SSM answers PARAMETER with SECRET; the cache starts empty."""
    values = {PARAMETER: SECRET}
    calls = []
    webhooks.clear_secret_cache()

    class FakeSsm:
        def get_parameter(self, Name, WithDecryption):
            calls.append((Name, WithDecryption))
            return {"Parameter": {"Name": Name, "Value": values[Name]}}

    monkeypatch.setattr(factory, "get_ssm_client", lambda: FakeSsm())
    yield values, calls
    webhooks.clear_secret_cache()


# --- the rule's pattern and matching ---------------------------------------------------------

def test_event_pattern_lists_only_the_subscribed_machines_and_statuses():
    environ = {"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES),
               "WEBHOOKS": json.dumps([subscription_entry(statuses=["FAILED", "TIMED_OUT"])])}
    assert webhook_rule.event_pattern(environ) == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [ORDERS_ARN], "status": ["FAILED", "TIMED_OUT"]},
    }


def test_a_stage_without_webhooks_has_no_pattern():
    assert webhook_rule.event_pattern({"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES)}) is None
    assert webhook_rule.event_pattern({"STATE_MACHINES": json.dumps(TEST_STATE_MACHINES), "WEBHOOKS": "[]"}) is None


def test_only_subscriptions_for_the_machine_and_status_match():
    config = config_from_environ({
        "STATE_MACHINES": json.dumps({**TEST_STATE_MACHINES, "payroll": {"arn": ORDERS_ARN.replace("orders", "payroll")}}),
        "WEBHOOKS": json.dumps([
            subscription_entry(statuses=["FAILED"]),
            subscription_entry(id="audit"),
            subscription_entry(id="hr", stateMachines=["payroll"]),
        ]),
    })
    matched = webhooks.matching_subscriptions(config.webhooks, status_change("FAILED")["detail"])
    assert [s.id for s in matched] == ["billing", "audit"]
    matched = webhooks.matching_subscriptions(config.webhooks, status_change("SUCCEEDED")["detail"])
    assert [s.id for s in matched] == ["audit"]


# --- the body --------------------------------------------------------------------------------

def test_body_is_the_execution_as_the_api_describes_it(monkeypatch):
    config = stage(monkeypatch, subscription_entry())
    body = webhooks.execution_description(status_change()["detail"], config.registry)
    assert body == {
        "executionArn": execution_arn("orders", "run-1"), "stateMachineArn": ORDERS_ARN, "stateMachine": "orders",
        "name": "run-1", "status": "SUCCEEDED", "startDate": "2026-11-26T09:00:00+00:00",
        "stopDate": "2026-11-26T09:00:01.500000+00:00", "input": {"order": 7}, "output": {"total": 42},
        "error": None, "cause": None,
    }


def test_input_and_output_left_out_by_eventbridge_are_read_with_describe_execution(monkeypatch):
    config = stage(monkeypatch, subscription_entry())
    detail = status_change(output=None, outputDetails={"included": False})["detail"]
    described = []

    def describe(arn):
        described.append(arn)
        return {"input": {"order": 7}, "output": {"blob": "x" * 300_000}}

    body = webhooks.execution_description(detail, config.registry, describe=describe)
    assert described == [execution_arn("orders", "run-1")]
    assert (body["input"], len(body["output"]["blob"])) == ({"order": 7}, 300_000)


def test_included_input_and_output_need_no_describe_call(monkeypatch):
    config = stage(monkeypatch, subscription_entry())

    def describe(arn):
        raise AssertionError("DescribeExecution must not be called")

    body = webhooks.execution_description(status_change()["detail"], config.registry, describe=describe)
    assert body["output"] == {"total": 42}


# --- signatures ------------------------------------------------------------------------------

def test_signature_verifies_with_the_standardwebhooks_library():
    body = b'{"status":"SUCCEEDED"}'
    timestamp = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp),
               "webhook-signature": webhooks.sign(webhooks.parse_secrets(SECRET, PARAMETER), "msg_1", timestamp, body)}
    assert Webhook(SECRET).verify(body, headers) == {"status": "SUCCEEDED"}


def test_while_rotating_each_secret_signs_and_either_verifies():
    body = b'{"a":1}'
    timestamp = int(time.time())
    keys = webhooks.parse_secrets(f"{SECRET} {OLD_SECRET}", PARAMETER)
    signature = webhooks.sign(keys, "msg_2", timestamp, body)
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(timestamp), "webhook-signature": signature}
    assert len(signature.split(" ")) == 2 and all(s.startswith("v1,") for s in signature.split(" "))
    assert Webhook(SECRET).verify(body, headers) == {"a": 1}
    assert Webhook(OLD_SECRET).verify(body, headers) == {"a": 1}


@pytest.mark.parametrize("tampered", ["body", "id", "timestamp", "secret"])
def test_a_tampered_webhook_fails_verification(tampered):
    body, timestamp = b'{"a":1}', int(time.time())
    headers = {"webhook-id": "msg_3", "webhook-timestamp": str(timestamp),
               "webhook-signature": webhooks.sign(webhooks.parse_secrets(SECRET, PARAMETER), "msg_3", timestamp, body)}
    secret = SECRET
    if tampered == "body":
        body = b'{"a":2}'
    elif tampered == "id":
        headers["webhook-id"] = "msg_4"
    elif tampered == "timestamp":
        headers["webhook-timestamp"] = str(timestamp + 1)
    else:
        secret = OLD_SECRET
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


@pytest.mark.parametrize("value", ["", "secret", "whsec_", "whsec_!!!notbase64", "whsec_" + base64.b64encode(b"short").decode(),
                                   f"{SECRET} plain"])
def test_a_bad_secret_parameter_is_refused_without_echoing_it(value):
    with pytest.raises(GatewayMisconfigured) as raised:
        webhooks.parse_secrets(value, PARAMETER)
    assert PARAMETER in str(raised.value)
    assert [token for token in value.split() if len(token) > 8 and token in str(raised.value)] == []


def test_secrets_are_read_once_with_decryption_and_cached(secrets):
    values, calls = secrets
    first = webhooks.signing_keys(PARAMETER)
    second = webhooks.signing_keys(PARAMETER)
    assert first == second == (b"k" * 32,)
    assert calls == [(PARAMETER, True)]


def test_a_missing_parameter_names_it_and_the_fix(monkeypatch, aws_credentials):
    client = boto3.client("ssm", region_name="us-east-1")
    monkeypatch.setattr(factory, "get_ssm_client", lambda: client)
    with Stubber(client) as stubber:
        stubber.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": PARAMETER, "WithDecryption": True})
        with pytest.raises(GatewayMisconfigured) as raised:
            webhooks.signing_keys(PARAMETER)
        stubber.assert_no_pending_responses()
    assert "ParameterNotFound" in str(raised.value) and "SecureString" in str(raised.value)


def test_the_ssm_client_honours_botocores_per_service_endpoint_variable(monkeypatch, aws_credentials):
    monkeypatch.setenv("STATE_MACHINES", json.dumps(TEST_STATE_MACHINES))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:4566")
    REAL_SSM_CLIENT.cache_clear()
    try:
        assert REAL_SSM_CLIENT().meta.endpoint_url == "http://127.0.0.1:4566"
    finally:
        REAL_SSM_CLIENT.cache_clear()


# --- delivery faults, against a real receiver on 127.0.0.1 -----------------------------------

def scripted(*statuses):
    """A respond() answering these statuses in turn, then 200."""
    plan = list(statuses)
    return lambda webhook: plan.pop(0) if plan else 200


def deliver_to(receiver, monkeypatch, budget=20.0, **entry):
    config = stage(monkeypatch, subscription_entry(url=receiver.url, **entry))
    [subscription] = config.webhooks
    monkeypatch.setattr(webhooks, "BACKOFF_FIRST", 0.05)
    body = json.dumps({"status": "SUCCEEDED"}).encode()
    return webhooks.deliver(subscription, body, "msg_fixed", time.monotonic() + budget, allow_local=True)


def test_two_500s_then_200_deliver_once_with_the_same_webhook_id(monkeypatch):
    with Receiver(SECRET, respond=scripted(500, 503)) as receiver:
        outcome = deliver_to(receiver, monkeypatch)
    assert (outcome.result, outcome.attempts, outcome.http_status) == ("delivered", 3, 200)
    assert [w["id"] for w in receiver.received] == ["msg_fixed"] * 3
    assert all(w["verified"] for w in receiver.received)
    assert len(receiver.delivered()) == 1


def test_429_is_retried(monkeypatch):
    with Receiver(SECRET, respond=scripted(429)) as receiver:
        outcome = deliver_to(receiver, monkeypatch)
    assert (outcome.result, outcome.attempts) == ("delivered", 2)


def test_410_stops_at_once_and_is_not_a_failure(monkeypatch):
    with Receiver(SECRET, respond=scripted(410)) as receiver:
        outcome = deliver_to(receiver, monkeypatch)
    assert (outcome.result, outcome.attempts, outcome.http_status) == ("stop-requested", 1, 410)
    assert len(receiver.received) == 1


def test_a_4xx_is_a_failure_without_retries(monkeypatch):
    with Receiver(SECRET, respond=scripted(400)) as receiver:
        outcome = deliver_to(receiver, monkeypatch)
    assert (outcome.result, outcome.attempts, outcome.error) == ("failed", 1, "HTTP 400")


def test_a_redirect_to_the_metadata_address_is_not_followed(monkeypatch):
    with Receiver(SECRET, respond=scripted(302)) as receiver:
        outcome = deliver_to(receiver, monkeypatch)
    assert (outcome.result, outcome.attempts, outcome.http_status) == ("failed", 1, 302)
    assert "redirect to 'http://169.254.169.254/latest/meta-data/' not followed" in outcome.error
    assert len(receiver.received) == 1


def test_a_receiver_that_never_answers_fails_within_the_budget(monkeypatch):
    monkeypatch.setattr(webhooks, "ATTEMPT_TIMEOUT", 0.5)
    with Receiver(SECRET, respond=lambda webhook: HANG) as receiver:
        started = time.monotonic()
        outcome = deliver_to(receiver, monkeypatch, budget=2.5)
        elapsed = time.monotonic() - started
    assert outcome.result == "failed" and outcome.attempts >= 2
    assert outcome.error.startswith("TimeoutError")
    assert elapsed < 2.6


def test_a_slow_first_answer_times_out_and_the_retry_is_delivered(monkeypatch):
    monkeypatch.setattr(webhooks, "ATTEMPT_TIMEOUT", 0.5)

    def respond(webhook):
        if webhook["attempt"] == 1:
            time.sleep(1.0)
        return 200

    with Receiver(SECRET, respond=respond) as receiver:
        outcome = deliver_to(receiver, monkeypatch)
    assert (outcome.result, outcome.attempts) == ("delivered", 2)


def test_a_closed_port_is_retried_then_fails(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = stage(monkeypatch, subscription_entry(url=f"http://127.0.0.1:{port}/hooks"))
    monkeypatch.setattr(webhooks, "BACKOFF_FIRST", 0.01)
    outcome = webhooks.deliver(config.webhooks[0], b"{}", "msg_x", time.monotonic() + 5, allow_local=True)
    assert (outcome.result, outcome.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert "ConnectionRefusedError" in outcome.error


def test_every_attempt_is_freshly_timestamped_and_signed(monkeypatch):
    with Receiver(SECRET, respond=scripted(500)) as receiver:
        deliver_to(receiver, monkeypatch)
    assert [w["verified"] for w in receiver.received] == [True, True]
    assert [w["headers"]["user-agent"] for w in receiver.received] == [webhooks.USER_AGENT] * 2


def test_a_failed_delivery_raises_naming_the_execution_and_subscription(monkeypatch, caplog):
    with Receiver(SECRET, respond=scripted(400)) as receiver:
        stage(monkeypatch, subscription_entry(url=receiver.url), subscription_entry(id="audit", url=receiver.url + "?audit"))
        receiver.respond = lambda webhook: 400 if "audit" not in webhook["path"] else 200
        with pytest.raises(webhooks.WebhookDeliveryFailed) as raised:
            webhooks.deliver_status_change(status_change())
    message = str(raised.value)
    assert execution_arn("orders", "run-1") in message and "'billing'" in message and "'audit'" not in message
    records = [json.loads(r.message) for r in caplog.records if r.name == "sfn_gateway.webhooks"]
    assert sorted((r["subscriptionId"], r["result"]) for r in records) == [("audit", "delivered"), ("billing", "failed")]
    assert all(r["executionArn"] == execution_arn("orders", "run-1") for r in records)
    assert all(r["webhookId"] == "msg_6f3b1c2e-0000-4000-8000-000000000001" for r in records)


def test_an_unsubscribed_status_delivers_nothing(monkeypatch):
    with Receiver(SECRET) as receiver:
        stage(monkeypatch, subscription_entry(url=receiver.url, statuses=["FAILED"]))
        assert webhooks.deliver_status_change(status_change("SUCCEEDED")) == []
    assert receiver.received == []


def test_the_deadline_comes_from_the_lambda_context(monkeypatch):
    class Context:
        def get_remaining_time_in_millis(self):
            return 3000

    assert webhooks._deadline(Context(), clock=lambda: 100.0) == pytest.approx(100.0 + 3.0 - webhooks.SAFETY_MARGIN_SECONDS)


# --- SSRF guard, outside the local stage -----------------------------------------------------

def resolver_for(*addresses, calls=None):
    def resolve(host, port, type=0):
        if calls is not None:
            calls.append(host)
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]
    return resolve


def refusing_connector(address, timeout):
    raise AssertionError(f"connected to {address}")


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "169.254.10.10", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
])
def test_a_name_resolving_to_a_non_public_address_is_refused(address):
    with pytest.raises(webhooks.DestinationRefused, match="non-public address"):
        webhooks.post("https://hooks.example.com/x", b"{}", {}, 1.0, resolver=resolver_for(address),
                      connector=refusing_connector)


def test_one_private_answer_among_public_ones_is_refused():
    with pytest.raises(webhooks.DestinationRefused, match="10.0.0.1"):
        webhooks.post("https://hooks.example.com/x", b"{}", {}, 1.0, resolver=resolver_for("93.184.216.34", "10.0.0.1"),
                      connector=refusing_connector)


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/x", "https://[::1]/x", "https://169.254.169.254/latest/meta-data", "https://[::ffff:10.0.0.1]/x",
])
def test_literal_non_public_addresses_are_refused(url):
    with pytest.raises(webhooks.DestinationRefused):
        webhooks.post(url, b"{}", {}, 1.0, connector=refusing_connector)


def test_plain_http_is_refused_outside_the_local_stage():
    with pytest.raises(webhooks.DestinationRefused, match="https only"):
        webhooks.post("http://hooks.example.com/x", b"{}", {}, 1.0, resolver=resolver_for("93.184.216.34"),
                      connector=refusing_connector)


def test_the_connection_goes_to_the_address_that_was_checked_not_a_second_lookup():
    # Given a DNS answer that would change to the metadata address on a second lookup (rebinding)
    answers = iter(["93.184.216.34", "169.254.169.254"])
    lookups, connected = [], []

    def rebinding(host, port, type=0):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    def connector(address, timeout):
        connected.append(address)
        raise ConnectionRefusedError("test stops here")

    # When the gateway posts
    with pytest.raises(ConnectionRefusedError):
        webhooks.post("https://hooks.example.com/x", b"{}", {}, 1.0, resolver=rebinding, connector=connector)
    # Then it looked the name up once and connected to that very address
    assert lookups == ["hooks.example.com"]
    assert connected == [("93.184.216.34", 443)]


def test_refused_destinations_are_not_retried(monkeypatch):
    config = stage(monkeypatch, subscription_entry(url="https://hooks.example.com/x"), allow_local=False)

    def send(url, body, headers, timeout, allow_local):
        return webhooks.post(url, body, headers, timeout, allow_local, resolver=resolver_for("127.0.0.1"),
                             connector=refusing_connector)

    outcome = webhooks.deliver(config.webhooks[0], b"{}", "msg_x", time.monotonic() + 5, allow_local=False, send=send)
    assert (outcome.result, outcome.attempts) == ("failed", 1)
    assert outcome.error == "refused: hooks.example.com resolves to the non-public address 127.0.0.1"


def test_outside_local_a_loopback_receiver_is_never_contacted(monkeypatch):
    with Receiver(SECRET) as receiver:
        config = stage(monkeypatch, subscription_entry(url=receiver.url.replace("http:", "https:")), allow_local=True)
        outcome = webhooks.deliver(config.webhooks[0], b"{}", "msg_x", time.monotonic() + 5, allow_local=False)
    assert outcome.result == "failed" and outcome.error.startswith("refused:")
    assert receiver.received == []


# --- https: pinned to the checked address, certificate and SNI for the URL's name --------------

def _certificate(tmp_path, name: str):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _TlsReceiver:
    """A TLS server on 127.0.0.1 that records SNI and Host of each request."""

    def __init__(self, cert_file, key_file):
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.seen.append((receiver.sni, self.headers["Host"]))
                self.send_response(204)
                self.end_headers()

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.sni = None

        def remember_sni(sock, server_name, ctx):
            receiver.sni = server_name

        context.sni_callback = remember_sni
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _via_loopback(port, connected):
    # Stands in for the network: "connecting to 93.184.216.34:443" reaches the local TLS server.
    def connector(address, timeout):
        connected.append(address)
        return socket.create_connection(("127.0.0.1", port), timeout)
    return connector


def test_https_goes_to_the_checked_address_with_sni_and_host_of_the_url(tmp_path):
    import ssl

    cert_file, key_file = _certificate(tmp_path, "hooks.example.com")
    server = _TlsReceiver(cert_file, key_file)
    connected = []
    try:
        status, _ = webhooks.post(
            "https://hooks.example.com/sfn", b"{}", {"Content-Type": "application/json"}, 5.0,
            resolver=resolver_for("93.184.216.34"), connector=_via_loopback(server.port, connected),
            tls=ssl.create_default_context(cafile=str(cert_file)),
        )
    finally:
        server.close()
    assert status == 204
    assert connected == [("93.184.216.34", 443)]
    assert server.seen == [("hooks.example.com", "hooks.example.com")]


def test_https_refuses_a_certificate_for_another_name(tmp_path):
    import ssl

    cert_file, key_file = _certificate(tmp_path, "attacker.example.net")
    server = _TlsReceiver(cert_file, key_file)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            webhooks.post(
                "https://hooks.example.com/sfn", b"{}", {}, 5.0, resolver=resolver_for("93.184.216.34"),
                connector=_via_loopback(server.port, []), tls=ssl.create_default_context(cafile=str(cert_file)),
            )
    finally:
        server.close()
    assert server.seen == []


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_attempt_timeout():
    import threading

    # Given a receiver that answers one byte every 0.2 s, for ever
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            while not stop.is_set():
                try:
                    connection.sendall(b"H")
                except OSError:
                    return
                time.sleep(0.2)

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    try:
        # When the gateway posts with a 1 s timeout
        with pytest.raises(TimeoutError, match="no complete answer within 1.0 s"):
            webhooks.post(f"http://127.0.0.1:{listener.getsockname()[1]}/x", b"{}", {}, 1.0, allow_local=True)
    finally:
        stop.set()
        listener.close()
    # Then the attempt ends at the timeout, although every single read was quick
    assert time.monotonic() - started < 1.5


def test_a_describe_execution_failure_is_logged_per_subscription_and_raised(monkeypatch, stub, caplog):
    # Given an event whose output EventBridge left out, and a Step Functions that answers with an error
    stage(monkeypatch, subscription_entry(url="https://billing.example.com/hooks"))
    stub.add_client_error("describe_execution", "ExecutionDoesNotExist", expected_params={"executionArn": execution_arn("orders", "run-1")})
    event = status_change(output=None, outputDetails={"included": False})
    # When the handler runs, then it raises (so Lambda's failure path keeps the event) and logs who missed it
    with pytest.raises(ExecutionNotFound):
        webhooks.deliver_status_change(event, send=lambda *args: pytest.fail("nothing may be sent"))
    [record] = [json.loads(r.message) for r in caplog.records if r.name == "sfn_gateway.webhooks"]
    assert (record["subscriptionId"], record["result"], record["executionArn"]) == ("billing", "failed", execution_arn("orders", "run-1"))
    assert "ExecutionNotFound" in record["error"]



def test_a_subscription_to_an_alias_matches_events_of_its_state_machine(monkeypatch):
    # Given an allow-list entry for the "live" alias of orders, and a subscription naming it
    monkeypatch.setenv("STATE_MACHINES", json.dumps({"orders-live": {"arn": ORDERS_ARN + ":live"}}))
    monkeypatch.setenv("WEBHOOKS", json.dumps([subscription_entry(stateMachines=["orders-live"])]))
    get_config.cache_clear()
    config = get_config()
    # Then the rule and the matching use the state machine's own ARN, which status-change events carry
    assert webhook_rule.event_pattern(dict(os.environ))["detail"]["stateMachineArn"] == [ORDERS_ARN]
    detail = status_change()["detail"]
    assert [s.id for s in webhooks.matching_subscriptions(config.webhooks, detail)] == ["billing"]
    assert webhooks.execution_description(detail, config.registry)["stateMachine"] == "orders-live"


def test_numbers_in_input_and_output_reach_the_receiver_exactly(monkeypatch):
    with Receiver(SECRET) as receiver:
        stage(monkeypatch, subscription_entry(url=receiver.url))
        event = status_change(input='{"amount": 12345678901234567.89}', output='{"total": 1e400, "n": 0.1000}')
        webhooks.deliver_status_change(event)
    [webhook] = receiver.received
    assert webhook["verified"]
    assert b'"input":{"amount":12345678901234567.89}' in webhook["body"]
    assert b'"output":{"total":1e400,"n":0.1000}' in webhook["body"]


def test_describe_execution_for_a_webhook_needs_no_caller_even_with_owner_only_machines(monkeypatch, stub):
    # Given an ownerOnly machine (the API checks each caller's tag) and an event without its output
    monkeypatch.setenv("STATE_MACHINES", json.dumps({"orders": {"arn": ORDERS_ARN, "ownerOnly": True}}))
    monkeypatch.setenv("WEBHOOKS", json.dumps([subscription_entry()]))
    get_config.cache_clear()
    arn = execution_arn("orders", "run-1")
    stub.add_response("describe_execution", {
        "executionArn": arn, "stateMachineArn": ORDERS_ARN, "status": "SUCCEEDED", "startDate": 1795683600,
        "input": '{"order": 7}', "output": '{"total": 42}',
    }, {"executionArn": arn})
    detail = status_change(output=None, outputDetails={"included": False})["detail"]
    # When the webhook body is built, then DescribeExecution runs without a caller and fills the output
    assert webhooks.execution_description(detail, get_config().registry)["output"] == {"total": 42}


def test_importing_the_app_with_webhooks_declares_the_handler_but_loads_no_delivery_code():
    # Given a stage with WEBHOOKS, imported as chalice package/deploy do (variables first)
    import subprocess
    import sys

    environ = {**os.environ, "STATE_MACHINES": json.dumps(TEST_STATE_MACHINES),
               "WEBHOOKS": json.dumps([subscription_entry()]), "AWS_DEFAULT_REGION": "us-east-1"}
    probe = ("import sys, app; print(app.app.event_sources[0].name if app.app.event_sources else None, "
             "'chalicelib.webhooks.delivery' in sys.modules, 'http.client' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environ, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    # Then the handler exists, and the API function's cold start pays for neither delivery nor http.client
    assert (result.returncode, result.stdout.split()) == (0, ["webhooks", "False", "False"]), result.stderr
