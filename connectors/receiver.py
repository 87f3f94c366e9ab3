"""Receiving webhook deliveries: verify, deduplicate, store durably, then answer.

Each POST to the receiver's path is checked in this order, and answered:

    413  the body is larger than `max_body` bytes (by its Content-Length or as read)
    401  a webhook-id, webhook-timestamp or webhook-signature header is missing
    400  the timestamp is not integer seconds within `tolerance` of now (a replay of
         an old message, or a wrong clock)
    401  no signature matches a secret in force (several `--secret` may be, while
         the exchange's rotation overlap lasts); entries of the signature header
         that cannot be parsed are skipped, as the specification asks, so one
         malformed entry cannot hide a valid one
    400  a verified body is not a `records.published` delivery
    200  `{"stored": n, "duplicate": bool}`: the delivery's events are on disk
         (a webhook id stored before: nothing is written again)
    500  the sink could not store it; the exchange retries

Signatures are checked by the `standardwebhooks` package, the reference
implementation, over the raw body. Its own window is five minutes and cannot be
widened, so `tolerance` may only narrow it (at most 300 seconds). The exchange
retries a batch under the same webhook id, so only after the events are durable
(the sink fsyncs) does the receiver answer 2xx: a crash before that is retried,
a crash after is a duplicate the sink recognises.

It is served by uvicorn, the server the exchange itself runs on, rather than the
standard library's `http.server`, which its documentation says is not for
production: uvicorn bounds header sizes, times out idle keep-alive connections
and shuts down gracefully on SIGINT/SIGTERM, letting requests in flight finish.
The app is plain ASGI on Starlette's request and response types, a dozen lines
that need no framework. The store runs in a worker thread, so a slow fsync does
not hold other requests.
"""

import base64
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from connectors.sinks import Delivery, Sink, SinkError, open_sink

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024  # the exchange's batches (≤ 1000 records) stay far below
STANDARD_TOLERANCE = 300  # seconds: the standardwebhooks package's fixed window
EVENT_TYPE = "records.published"
SECRET_PREFIX = "whsec_"
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_TIMESTAMP_DIGITS = 12  # seconds since 1970 need 10 until the year 2286


class Refused(Exception):
    """A request answered with `status` and a reason (which never quotes the body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verifiers(secrets: Sequence[str]) -> list[Webhook]:
    """One verifier per secret; ValueError (naming the position, never the secret)
    for one that is not a Standard Webhooks secret."""
    if not secrets:
        raise ValueError("no webhook secret: pass --secret or set EXCHANGE_WEBHOOK_SECRET")
    found = []
    for position, secret in enumerate(secrets, start=1):
        # Stricter than the library, which skips characters that are not base64 and
        # would take a mistyped secret for another key.
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except ValueError:
            key = b""
        if not secret.startswith(SECRET_PREFIX) or not key:
            raise ValueError(f"secret {position} is not a {SECRET_PREFIX}… secret")
        found.append(Webhook(key))
    return found


def checked_timestamp(value: str, tolerance: float, now: float) -> None:
    """Refused (400) unless `value` is integer seconds within `tolerance` of `now`."""
    if not value.isascii() or not value.isdigit() or len(value) > _TIMESTAMP_DIGITS:
        raise Refused(400, "webhook-timestamp is not integer seconds")
    skew = int(value) - now
    if skew < -tolerance:
        raise Refused(400, f"webhook-timestamp is {-skew:.0f} s old (tolerance {tolerance:g} s)")
    if skew > tolerance:
        raise Refused(400, f"webhook-timestamp is {skew:.0f} s ahead (tolerance {tolerance:g} s)")


def verified(
    checkers: Sequence[Webhook], body: bytes, headers: dict[str, str], tolerance: float
) -> None:
    """Refused (401 or 400) unless the headers are present, fresh and signed by one
    of the secrets."""
    missing = [name for name in _HEADERS if not headers.get(name)]
    if missing:
        raise Refused(401, f"missing {', '.join(missing)}")
    checked_timestamp(headers["webhook-timestamp"], tolerance, time.time())
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    signatures = _parsable(headers["webhook-signature"])
    if not signatures:
        raise Refused(401, "malformed webhook-signature")
    headers = headers | {"webhook-signature": signatures}
    for checker in checkers:
        try:
            checker.verify(text, headers, json_parse=False)
            return
        except WebhookVerificationError:
            continue
    raise Refused(401, "no signature matches a secret in force")


def _parsable(header: str) -> str:
    """The header's `version,base64` entries that the library can read (it raises on
    the first it cannot, which would hide the valid ones after it)."""
    kept = []
    for entry in header.split(" "):
        version, comma, signature = entry.partition(",")
        if not comma or not version or "," in signature:
            continue
        try:
            base64.b64decode(signature, validate=True)
        except ValueError:
            continue
        kept.append(entry)
    return " ".join(kept)


def delivery(body: bytes, webhook_id: str) -> Delivery:
    """The events of a verified `records.published` body; Refused (400) if it is not one."""
    try:
        message = json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(message, dict) or message.get("type") != EVENT_TYPE:
        raise Refused(400, f"not a {EVENT_TYPE} delivery")
    data = message.get("data")
    if not isinstance(data, dict):
        raise Refused(400, "data is not an object")
    wanted = {"subscription": int, "product": str, "purpose": str, "view": str, "events": list}
    for name, kind in wanted.items():
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise Refused(400, f"data.{name} is missing or not {kind.__name__}")
    for index, event in enumerate(data["events"]):
        number = event.get("event") if isinstance(event, dict) else None
        if type(number) is not int or number < 1 or not isinstance(event.get("record"), dict):
            raise Refused(400, f"data.events[{index}] is not an event and its record")
    return Delivery(
        data["subscription"],
        data["product"],
        data["purpose"],
        data["view"],
        data["events"],
        webhook_id=webhook_id,
    )


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def receiver_app(
    sink: Sink,
    secrets: Sequence[str],
    *,
    path: str = "/",
    tolerance: float = STANDARD_TOLERANCE,
    max_body: int = MAX_BODY,
) -> Any:
    """The ASGI app: POST `path` as described in the module docstring. Raises
    ValueError for a bad secret or a tolerance wider than the library's."""
    if not 0 < tolerance <= STANDARD_TOLERANCE:
        raise ValueError(f"tolerance must be over 0 and at most {STANDARD_TOLERANCE} s")
    checkers = verifiers(secrets)

    async def handle(request: Request) -> Response:
        webhook_id = request.headers.get("webhook-id", "")
        shown = webhook_id[:100]  # as the sender put it, so bounded in the log
        try:
            body = await _body(request, max_body)
            verified(checkers, body, dict(request.headers), tolerance)
            arrived = delivery(body, webhook_id)
            stored = await run_in_threadpool(sink.store, arrived)
        except Refused as refused:
            log.warning("delivery %r refused %d: %s", shown, refused.status, refused.reason)
            return JSONResponse({"detail": refused.reason}, status_code=refused.status)
        except SinkError as error:
            log.error("delivery %r not stored: %s", shown, error)
            return JSONResponse({"detail": "could not store the events"}, status_code=500)
        outcome = "duplicate" if stored.duplicate else f"{stored.written} new"
        log.info("delivery %r: %d events, %s", shown, len(arrived.events), outcome)
        return JSONResponse({"stored": stored.written, "duplicate": stored.duplicate})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.url.path != path:
            response: Response = JSONResponse({"detail": "not found"}, status_code=404)
        elif request.method != "POST":
            response = JSONResponse(
                {"detail": "POST only"}, status_code=405, headers={"Allow": "POST"}
            )
        else:
            try:
                response = await handle(request)
            except ClientDisconnect:
                return
        await response(scope, receive, send)

    return app


@dataclass
class Receiver:
    """The receiver served by uvicorn: `start()`/`stop()` in a thread (tests, embedding)
    or `serve()` in the foreground until SIGINT/SIGTERM. Binds at construction, so
    `port=0` picks a free port and `url` is known at once."""

    sink: Sink
    secrets: Sequence[str] = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 8800
    path: str = "/"
    tolerance: float = STANDARD_TOLERANCE
    max_body: int = MAX_BODY

    def __post_init__(self) -> None:
        app = receiver_app(
            self.sink,
            self.secrets,
            path=self.path,
            tolerance=self.tolerance,
            max_body=self.max_body,
        )
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            limit_concurrency=64,
        )
        self._server = uvicorn.Server(config)
        self._socket = _bound(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    def serve(self) -> None:
        """Serve in the foreground (the main thread) until SIGINT/SIGTERM, then finish
        the requests in flight and return. (uvicorn raises the signal again once it
        has shut down; with these handlers in place that ends nothing else.)"""
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {signum: signal.signal(signum, lambda *_: None) for signum in stops}
        try:
            self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="receiver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()


def _bound(host: str, port: int) -> socket.socket:
    family, kind, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    bound = socket.socket(family, kind)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind(address)
    except OSError:
        bound.close()
        raise
    return bound


def receive(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Where events go: .ndjson/.jsonl lines, or a .db/.sqlite database"
        ),
    ],
    secret: Annotated[
        list[str],
        typer.Option(
            "--secret",
            envvar="EXCHANGE_WEBHOOK_SECRET",
            metavar="WHSEC",
            show_default=False,
            help="The subscription's whsec_ secret; repeat during a rotation's overlap. "
            "Prefer the environment variable (space-separated), which `ps` does not show",
        ),
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 8800,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    path: Annotated[str, typer.Option(help="The URL path deliveries are POSTed to")] = "/",
    tolerance: Annotated[
        float,
        typer.Option(
            min=1,
            max=STANDARD_TOLERANCE,
            help="Seconds a delivery's timestamp may be off (at most the library's 300)",
        ),
    ] = STANDARD_TOLERANCE,
) -> None:
    """Receive a webhook subscription's deliveries: verify, deduplicate, store.

    Runs until SIGINT or SIGTERM. One log line per delivery on stderr (webhook id,
    events, outcome); never the records or the secret."""
    if not path.startswith("/"):
        raise typer.BadParameter("a path starts with /", param_hint="--path")
    try:
        verifiers(secret)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--secret") from None
    try:
        sink = open_sink(out)
    except SinkError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with sink:
        try:
            receiver = Receiver(sink, secret, host, port, path, tolerance)
        except OSError as error:
            typer.echo(f"error: cannot listen on {host}:{port}: {error.strerror}", err=True)
            raise typer.Exit(1) from None
        log.info("receiving at %s into %s", receiver.url, out)
        receiver.serve()
    log.info("stopped")
