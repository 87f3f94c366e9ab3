"""A receiver that answers its status at once and then trickles its body, a byte
every half second for longer than the worker's lease, does not hold the worker:
the body is not read, the batch is delivered once, and no second request for the
subscription starts while the first is open."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Exchange
from tests.feeds.conftest import with_settings
from tests.products import capture, captures_product


@pytest.fixture
def trickler() -> Iterator[tuple[int, list[list[float | None]]]]:
    """A raw socket server: 200 with a 24-byte body sent a byte each 0.5 s (12 s)."""
    requests: list[list[float | None]] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def handle(connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        timing: list[float | None] = [time.monotonic(), None]
        requests.append(timing)
        try:
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 24\r\n\r\n")
            for _ in range(24):
                time.sleep(0.5)
                connection.sendall(b"x")
        except OSError:
            pass
        timing[1] = time.monotonic()
        connection.close()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], requests
    listener.close()


@with_settings(delivery_workers=2, delivery_timeout_seconds=1)  # a 7 s lease
def test_a_trickled_body_does_not_outlive_the_lease(
    exchange: Exchange, trickler: tuple[int, list[list[float | None]]]
) -> None:
    port, requests = trickler
    exchange.register("fleet", captures_product())
    made = exchange.post(
        "police",
        "/v1/subscriptions",
        json={
            "product": "violation-captures",
            "purpose": "law_enforcement",
            "delivery": "webhook",
            "url": f"http://127.0.0.1:{port}/hook",
        },
    )
    assert made.status_code == 201, made.text
    assert exchange.publish("fleet", "violation-captures", [capture(1)]).status_code == 200
    subscription = f"/v1/subscriptions/{made.json()['id']}"
    deadline = time.monotonic() + 20
    while exchange.get("police", subscription).json()["health"]["delivered"] < 1:
        assert time.monotonic() < deadline, "the batch was not delivered"
        time.sleep(0.1)
    time.sleep(8)  # past the lease: a worker still held by the body would be joined now
    assert len(requests) == 1, f"{len(requests)} requests for one batch"
    attempts = exchange.get("police", f"{subscription}/deliveries").json()["attempts"]
    assert [a["outcome"] for a in attempts] == ["delivered"]
