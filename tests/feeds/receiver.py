"""A real webhook receiver for tests: an HTTP server on a free loopback port,
in a thread, that verifies every delivery with the `standardwebhooks` package
(the reference library, not our code) and records what it got.

`answers` scripts its replies: each request pops the next item — a status code,
`"drop"` (close the connection without answering) or `("status", headers)` —
and answers 204 once the script is used up.
"""

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    webhook_id: str
    body: dict[str, Any]
    verified: bool
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    secret: str | None = None
    answers: list[Any] = field(default_factory=list)
    delay: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verified(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.verified]

    def events(self) -> list[dict[str, Any]]:
        """Every event in every verified, accepted delivery, in arrival order."""
        return [event for d in self.verified() for event in d.body["data"]["events"]]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Block until `count` events arrived (verified); the events."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.events()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.events())} of {count} events arrived in {timeout} s"
                    )
                self.arrived.wait(left)
        return self.events()

    def wait_requests(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.deliveries)} of {count} requests arrived")
                self.arrived.wait(left)


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                answer = receiver.answers.pop(0) if receiver.answers else 204
            if receiver.delay:
                time.sleep(receiver.delay)
            verified = False
            if receiver.secret:
                try:
                    Webhook(receiver.secret).verify(raw, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            if answer == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                self._note(headers, raw, False)
                return
            status, extra = answer if isinstance(answer, tuple) else (answer, {})
            self._note(headers, raw, verified and 200 <= status < 300)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def _note(self, headers: dict[str, str], raw: bytes, accepted: bool) -> None:
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            with receiver.arrived:
                with receiver.lock:
                    receiver.deliveries.append(
                        Delivery(
                            headers.get("webhook-id", ""), body, accepted, headers, time.time()
                        )
                    )
                receiver.arrived.notify_all()

    return Handler


@contextmanager
def receiving(secret: str | None = None, **options: Any) -> Iterator[Receiver]:
    receiver = Receiver(secret=secret, **options)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
