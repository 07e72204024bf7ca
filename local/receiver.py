"""Dev-only demo webhook receiver on 127.0.0.1: verifies Standard Webhooks signatures and prints.

    python -m local.receiver --port 8001 --secret whsec_...   # standalone

`make run` starts one subscribed to the demo workflows. Tests use it with scripted faults.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HANG = None  # a response plan entry meaning "never answer"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # the receiver prints its own line per webhook
        pass

    def do_POST(self):
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = receiver.record(self.path, dict(self.headers.items()), body)
        if status is HANG:
            receiver.stopped.wait()
            return
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", receiver.redirect_to)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Receiver:
    """A threaded HTTP receiver; respond(webhook) chooses each answer (an HTTP status or HANG)."""

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0, respond=None, echo=None):
        self._webhook = Webhook(secret)
        self.respond = respond or (lambda webhook: 200)
        self.echo = echo
        self.redirect_to = "http://169.254.169.254/latest/meta-data/"
        self.received = []  # every request, verified or not, in arrival order
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}/webhooks"

    def use_secret(self, secret: str) -> None:
        """Verify with another secret from now on (e.g. one a stack printed after this receiver started)."""
        self._webhook = Webhook(secret)

    def record(self, path: str, headers: dict, body: bytes):
        """Verify and keep one request; return the status to answer."""
        try:
            payload = self._webhook.verify(body, headers)
            verified = True
        except (WebhookVerificationError, ValueError) as err:
            payload, verified = {"error": str(err)}, False
        lower = {key.lower(): value for key, value in headers.items()}
        webhook = {"id": lower.get("webhook-id"), "path": path, "headers": lower, "body": body,
                   "payload": payload, "verified": verified, "receivedAt": time.time(), "status": 0}
        with self._lock:
            webhook["attempt"] = sum(1 for w in self.received if w["id"] == webhook["id"]) + 1
            self.received.append(webhook)
        status = self.respond(webhook) if verified else 401
        webhook["status"] = status
        if self.echo:
            self.echo(_describe(webhook, status))
        return status

    def delivered(self) -> list:
        """The verified webhooks answered 2xx, one per webhook-id (the receiver's de-duplicated view)."""
        seen = {}
        for webhook in self.received:
            answered = webhook["status"] is not HANG and 200 <= webhook["status"] < 300
            if webhook["verified"] and answered and webhook["id"] not in seen:
                seen[webhook["id"]] = webhook
        return list(seen.values())

    def start(self) -> "Receiver":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _describe(webhook: dict, status) -> str:
    if not webhook["verified"]:
        return f"webhook REJECTED (bad signature: {webhook['payload']['error']}) -> {status}"
    payload = webhook["payload"]
    output = json.dumps(payload.get("output") if payload.get("status") == "SUCCEEDED" else payload.get("error"))
    answer = "no answer" if status is HANG else status
    return (f"webhook {webhook['id']} signature verified: {payload.get('stateMachine')} {payload.get('status')} "
            f"{payload.get('executionArn')} {output[:200]} -> {answer}")


def main(argv=None) -> int:
    """Run a receiver until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--secret", required=True, help="whsec_... (the secret in the subscription's parameter)")
    args = parser.parse_args(argv)
    receiver = Receiver(args.secret, port=args.port, echo=lambda line: print(line, flush=True))
    print(f"Receiving webhooks at {receiver.url}", flush=True)
    try:
        receiver._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
