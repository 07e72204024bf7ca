"""Servers the client tests put in front of the local stack: a header recorder and a fault-injecting proxy."""
import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.test_end_to_end import ACCESS_KEY, REGION, SECRET_KEY, Stack


def start_stack_with_task_routes():
    """The end-to-end stack with TASK_ROUTES=on (main turns it off by default)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASK_ROUTES", "on")
        return Stack()


class _Server:
    """A threaded HTTP server on a free loopback port, running until stop()."""

    def __init__(self, handler):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class RecordingServer(_Server):
    """Answers every request 200 with a fixed JSON body and records the request headers."""

    def __init__(self, answer):
        self.requests = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers), "body": self.rfile.read(length)})
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        super().__init__(Handler)


class FaultyProxy(_Server):
    """Forwards to the stack, after answering the faults queued for a method.

    A fault is `(status, Retry-After or None[, Code])`; Code None answers API Gateway's `{"message"}`.

    `lose_answer` forwards a request but answers 503 instead of the stack's answer, as a
    connection cut after the gateway acted would. With `stage="/api"` it serves the API under
    that prefix like API Gateway: it strips the prefix, re-signs for the stack, and prefixes Location.
    """

    def __init__(self, target_url, stage="", max_wait=None):
        self.faults = {"GET": [], "POST": []}
        self._max_wait = max_wait
        self.log = []  # (method, path, answered status, forwarded?)
        self._target = urlsplit(target_url)
        self._stage = stage
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy.faults[self.command].pop(0) if proxy.faults[self.command] else None
                if fault is not None and fault[0] != "lose_answer":
                    status, retry_after, *code = fault
                    code = code[0] if code else "Throttled" if status == 429 else "BackendUnavailable"
                    body = {"Code": code, "Message": "injected by the test proxy"} if code else {"message": "Too Many"}
                    proxy.log.append((self.command, self.path, status, False))
                    return self._send(status, {"Retry-After": retry_after} if retry_after else {},
                                      json.dumps(body).encode())
                status, headers, data = proxy._forward(self.command, self.path, dict(self.headers), body)
                if fault is not None:
                    proxy.log.append((self.command, self.path, 503, True))
                    return self._send(503, {"Retry-After": "0"}, b'{"Code": "BackendUnavailable", "Message": "lost"}')
                proxy.log.append((self.command, self.path, status, True))
                self._send(status, headers, data)

            def _send(self, status, headers, data):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def _forward(self, method, path, headers, body):
        if self._max_wait is not None:
            # A gateway with a shorter wait (a smaller time budget) answers 202 sooner.
            path = re.sub(r"([?&]wait=)\d+", lambda match: f"{match.group(1)}{self._max_wait}", path)
        if self._stage:
            assert path.startswith(self._stage + "/"), path
            path = path[len(self._stage):]
        if self._stage or self._max_wait is not None:
            headers = self._resigned(method, path, headers, body)
        connection = http.client.HTTPConnection(self._target.hostname, self._target.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        kept = {name: value for name, value in response.getheaders() if name.lower() in ("location", "retry-after")}
        if self._stage and "Location" in kept:
            # Lower-case, as API Gateway's HTTP/2 answers spell header names; the ARN decoded (the
            # gateway takes both), so a test can tell a followed Location from a path the client built.
            kept["location"] = self._stage + unquote(kept.pop("Location"))
        return response.status, kept, data

    def _resigned(self, method, path, headers, body):
        unsigned = {name: value for name, value in headers.items()
                    if name.lower() not in ("authorization", "x-amz-date", "host", "x-amz-security-token")}
        request = AWSRequest(method=method, url=f"{self._target.scheme}://{self._target.netloc}{path}",
                             data=body, headers=unsigned)
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(request)
        return dict(request.headers)

    def forwarded(self, method, path_start):
        """How many requests of this method and path prefix reached the stack."""
        return sum(1 for logged in self.log if logged[0] == method and logged[1].startswith(path_start) and logged[3])
