"""Backend faults over real loopback sockets: unreachable engine -> 503, silent engine -> 504."""
import socket
import threading

import pytest

from tests.conftest import assert_error


@pytest.fixture
def closed_port():
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server():
    """A loopback server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept_forever():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    server.close()


def test_unreachable_engine_returns_503_with_retry_after(make_client, closed_port):
    with make_client(SFN_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}", SFN_MAX_ATTEMPTS="1") as client:
        response = client.http.get("/executions?stateMachine=orders")
    assert_error(response, 503, "BackendUnavailable")
    assert response.headers["Retry-After"] == "5"


def test_engine_slower_than_read_timeout_returns_504(make_client, silent_server):
    with make_client(
        SFN_ENDPOINT_URL=f"http://127.0.0.1:{silent_server}", SFN_MAX_ATTEMPTS="1", SFN_READ_TIMEOUT="0.3"
    ) as client:
        response = client.http.get("/executions?stateMachine=orders")
    assert_error(response, 504, "BackendTimeout")
