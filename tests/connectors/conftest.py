"""The exchange served for real (uvicorn on a loopback port) to the connectors.

The connectors talk to the exchange only over HTTP, as their users do: `live` serves
the test's app (the `exchange` fixture's, already started) on a free port, and
`connection` gives a party's URL and credentials in the environment variables the
connector commands read.
"""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import uvicorn

from tests.conftest import Exchange, Party

T = TypeVar("T")


@dataclass
class Live:
    """The exchange under test and the URL it is served at."""

    exchange: Exchange
    url: str

    def party(self, key: str) -> Party:
        return self.exchange.parties[key]

    def environment(self, key: str) -> dict[str, str]:
        """What a connector command run as this party needs: EXCHANGE_URL and credentials."""
        party = self.party(key)
        return {
            "EXCHANGE_URL": self.url,
            "EXCHANGE_CLIENT_ID": party.client_id,
            "EXCHANGE_CLIENT_SECRET": party.client_secret,
        }


def eventually(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """What `check` returns once it returns something, polling; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live(exchange: Exchange) -> Iterator[Live]:
    """The app served by uvicorn in a thread. Its lifespan already ran in the test
    client, so uvicorn serves it without running startup again."""
    port = free_port()
    config = uvicorn.Config(
        exchange.client.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-exchange", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Live(exchange, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
