"""The receiver example in docs/webhooks.md verifies what the gateway signs, and refuses a forgery."""
import re
import threading
import time
from http.server import HTTPServer
from pathlib import Path

import requests

from chalicelib.webhooks import delivery as webhooks

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_example() -> dict:
    [code] = [block for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "class Hook" in block]
    namespace = {"__name__": "docs_example"}  # not __main__: the test serves it on a free port
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def signed_headers(secret: str, message_id: str, body: bytes) -> dict:
    timestamp = int(time.time())
    signature = webhooks.sign(webhooks.parse_secrets(secret, "doc"), message_id, timestamp, body)
    return {"Content-Type": "application/json", "webhook-id": message_id,
            "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_the_documented_receiver_accepts_the_gateways_signature_once_per_id_and_refuses_forgeries(capsys):
    example = receiver_example()
    server = HTTPServer(("127.0.0.1", 0), example["Hook"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    body = b'{"stateMachine":"orders","status":"SUCCEEDED","output":{"total":42},"error":null}'
    try:
        first = requests.post(url, data=body, headers=signed_headers(example["SECRET"], "msg_1", body), timeout=5)
        again = requests.post(url, data=body, headers=signed_headers(example["SECRET"], "msg_1", body), timeout=5)
        forged = requests.post(url, data=body, headers=signed_headers("whsec_" + "Zm9yZ2VkIHNlY3JldCBieXRlcyE=", "msg_2", body), timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert (first.status_code, again.status_code, forged.status_code) == (204, 204, 401)
    assert capsys.readouterr().out == "orders SUCCEEDED {'total': 42}\n"
