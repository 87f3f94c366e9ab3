"""`exchange worker` processes delivering webhooks, killed and doubled.

The test's own server does not deliver (`delivery_workers=0`): every webhook is
sent by real `exchange worker` subprocesses on the test's database and data
directory (which holds the key that seals webhook secrets). A receiver in this
module verifies every request with the `standardwebhooks` package and notes when
it started (body read) and ended (just before the answer is written).

- A worker SIGKILLed while a request is in flight (the receiver holds that request
  until the kill is done) loses nothing: after the lease runs out, a restarted
  worker resends the very same batch under the same webhook id. Killed twice.
- Two worker processes on PostgreSQL (`FOR UPDATE SKIP LOCKED` leases) over ten
  subscriptions never send an event twice, never overlap two requests for one
  subscription, and keep each subscription's events in order.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from audit.store import AuditEntry
from exchange.settings import Settings
from tests.conftest import BASE_URL, Exchange
from tests.feeds.conftest import with_settings
from tests.products import capture, captures_product

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = "violation-captures"
DATABASE = "postgresql" if BASE_URL.startswith("postgresql") else "sqlite"
STARTUP_SECONDS = 45.0
# Passed on to the workers as EXCHANGE_* variables, from the settings below.
SHARED = (
    "webhook_allow_private",
    "delivery_poll_seconds",
    "delivery_timeout_seconds",
    "delivery_retry_base_seconds",
    "delivery_retry_max_seconds",
    "delivery_max_attempts",
    "checkpoint_interval_seconds",
    "retention_interval_seconds",
)


pytestmark = with_settings(
    delivery_workers=0,  # no delivery in the test's server: only the worker processes
    delivery_timeout_seconds=1,  # so a 7 s lease
    delivery_retry_max_seconds=0.5,
    delivery_max_attempts=50,
    checkpoint_interval_seconds=0,
    retention_interval_seconds=0,
)


# --- the receiver ------------------------------------------------------------------


@dataclass
class Hit:
    """One webhook request as the receiver saw it."""

    webhook_id: str
    subscription: int | None
    events: tuple[tuple[int, str], ...]  # (event number, record id)
    verified: bool
    started: float
    ended: float | None = None


@dataclass
class Receiver:
    delay: float = 0.0
    secrets: dict[int, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)
    _armed: bool = False
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    held_hit: Hit | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def snapshot(self) -> list[Hit]:
        with self.changed:
            return list(self.hits)

    def wait_until(self, what: str, done: Callable[[list[Hit]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not done(self.hits):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not within {timeout} s: {what} ({len(self.hits)} hits)")
                self.changed.wait(min(left, 0.5))

    def hold_next(self) -> None:
        """The next request to arrive waits (unanswered) until `release()`."""
        with self.changed:
            self.held.clear()
            self.released.clear()
            self.held_hit = None
            self._armed = True

    def release(self) -> None:
        self.released.set()

    def arrived(self, raw: bytes, headers: dict[str, str]) -> Hit:
        try:
            body = json.loads(raw)
            data = body["data"]
            subscription = data["subscription"]
            events = tuple((e["event"], e["record"]["id"]) for e in data["events"])
        except (ValueError, KeyError, TypeError):
            subscription, events = None, ()
        verified = False
        secret = self.secrets.get(subscription) if subscription is not None else None
        if secret:
            try:
                Webhook(secret).verify(raw, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        hit = Hit(headers.get("webhook-id", ""), subscription, events, verified, time.monotonic())
        with self.changed:
            self.hits.append(hit)
            hold, self._armed = self._armed, False
            if hold:
                self.held_hit = hit
            self.changed.notify_all()
        if hold:
            self.held.set()
            self.released.wait(60)
        if self.delay:
            time.sleep(self.delay)
        return hit

    def answered(self, hit: Hit) -> None:
        with self.changed:
            hit.ended = time.monotonic()
            self.changed.notify_all()


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            hit = receiver.arrived(raw, headers)
            receiver.answered(hit)
            try:
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the sender was killed while we held its request
                self.close_connection = True

    return Handler


@contextmanager
def receiving(delay: float) -> Iterator[Receiver]:
    receiver = Receiver(delay=delay)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()


# --- worker processes ---------------------------------------------------------------


@dataclass
class Worker:
    """One `exchange worker` subprocess; its name is what it prints on start."""

    process: subprocess.Popen[bytes]
    log: Path
    name: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]

    def ready(self, timeout: float = STARTUP_SECONDS) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if line.startswith("delivering as "):
                    self.name = line.removeprefix("delivering as ").strip()
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(
            f"the worker did not start (exit code {self.process.poll()}); its output:\n"
            f"{self.output()}"
        )

    def kill(self) -> None:
        """SIGKILL: no clean-up, no lease released."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _environment(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The caller's environment without EXCHANGE_* settings, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_DATABASE_URL"] = settings.resolved_database_url
    env["EXCHANGE_DATA_DIR"] = str(settings.data_dir)
    for name in SHARED:
        env[f"EXCHANGE_{name.upper()}"] = str(getattr(settings, name))
    for name, value in overrides.items():
        env[f"EXCHANGE_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Workers:
    """Starts `exchange worker` processes; every one is stopped (or killed) on exit."""

    def __init__(self, settings: Settings, logs: Path, stack: ExitStack, **overrides: Any):
        self.settings, self.logs, self.overrides = settings, logs, overrides
        self.stack = stack
        self.started: list[Worker] = []

    def start(self, threads: int = 2) -> Worker:
        log = self.logs / f"worker-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "exchange", "worker", "--threads", str(threads)],
                cwd=ROOT,
                env=_environment(self.settings, **self.overrides),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        self.stack.callback(worker.stop)
        self.started.append(worker)
        return worker


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    with ExitStack() as stack:
        yield lambda **overrides: Workers(settings, tmp_path, stack, **overrides)


# --- helpers ------------------------------------------------------------------------


def _subscribe(exchange: Exchange, receiver: Receiver, batch_size: int) -> int:
    response = exchange.post(
        "police",
        "/v1/subscriptions",
        json={
            "product": PRODUCT,
            "purpose": "law_enforcement",
            "delivery": "webhook",
            "url": receiver.url,
            "batch_size": batch_size,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    receiver.secrets[body["id"]] = body["secret"]
    return int(body["id"])


def _publish(exchange: Exchange, numbers: range) -> list[str]:
    records = [capture(n) for n in numbers]
    response = exchange.publish("fleet", PRODUCT, records)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records), response.text
    return [record["id"] for record in records]


def _received(hits: list[Hit], subscription: int | None = None) -> set[str]:
    return {
        record
        for hit in hits
        if hit.verified and (subscription is None or hit.subscription == subscription)
        for _, record in hit.events
    }


def _settled(exchange: Exchange, subscriptions: list[int], count: int, timeout: float) -> None:
    """Wait until the exchange counts every event of each subscription delivered."""
    deadline = time.monotonic() + timeout
    while True:
        health = {
            sid: exchange.get("police", f"/v1/subscriptions/{sid}").json()["health"]
            for sid in subscriptions
        }
        if all(
            h["delivered"] == count and h["events_waiting"] == 0 and h["dead_letters"] == 0
            for h in health.values()
        ):
            return
        assert time.monotonic() < deadline, f"not settled in {timeout} s: {health}"
        time.sleep(0.1)


def _kill_in_flight(receiver: Receiver, worker: Worker) -> Hit:
    """Hold the next request at the receiver, SIGKILL the worker that sent it, let go."""
    receiver.hold_next()
    assert receiver.held.wait(30), "no request arrived to kill the worker during"
    worker.kill()
    hit = receiver.held_hit
    receiver.release()
    assert hit is not None
    return hit


# --- the tests ----------------------------------------------------------------------


def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_under_the_same_id(
    exchange: Exchange, workers: Callable[..., Workers]
) -> None:
    assert exchange.settings.delivery_lease_seconds == 7
    pool = workers()
    worker = pool.start()  # slow to start: set up meanwhile
    exchange.register("fleet", captures_product())
    with receiving(delay=0.15) as receiver:
        sid = _subscribe(exchange, receiver, batch_size=2)
        published = _publish(exchange, range(1, 11)) + _publish(exchange, range(11, 21))
        worker.ready()

        # First kill: a few batches through, the next one in flight.
        receiver.wait_until("3 answered", lambda h: sum(x.ended is not None for x in h) >= 3, 30)
        first = _kill_in_flight(receiver, worker)
        killed_at = time.monotonic()
        published += _publish(exchange, range(21, 41))  # queued while no worker runs
        worker = pool.start().ready()
        receiver.wait_until(
            "the killed batch again, and 3 more answered after it",
            lambda h: (
                sum(x.webhook_id == first.webhook_id for x in h) >= 2
                and sum(x.ended is not None and x.started > killed_at for x in h) >= 4
            ),
            45,
        )
        again = [h for h in receiver.snapshot() if h.webhook_id == first.webhook_id][1]

        # Second kill, the same way.
        second = _kill_in_flight(receiver, worker)
        published += _publish(exchange, range(41, 61))
        worker = pool.start(threads=1).ready()
        receiver.wait_until("all 60 records", lambda h: _received(h) >= set(published), 45)
        _settled(exchange, [sid], 60, 20)
        worker.stop()
        hits = receiver.snapshot()

    print(
        f"\n[{DATABASE}] {len(hits)} requests for 30 batches; the killed batch came again "
        f"{again.started - first.started:.1f} s later (lease 7 s)"
    )
    assert all(hit.verified for hit in hits), [h for h in hits if not h.verified]
    assert all(hit.subscription == sid for hit in hits)
    # Every event arrived at least once: none lost.
    assert _received(hits) == set(published)
    seqs = {seq for hit in hits for seq, _ in hit.events}
    assert seqs == set(range(1, 61))
    # Both killed batches came again, whole and under the same webhook id.
    for killed in (first, second):
        resent = [h for h in hits if h.webhook_id == killed.webhook_id]
        assert len(resent) >= 2, (killed, resent)
    # One webhook id is always the same batch, and an event only ever travels under
    # one webhook id (and as one record).
    batches: dict[str, set[tuple[tuple[int, str], ...]]] = defaultdict(set)
    under: dict[int, set[str]] = defaultdict(set)
    records: dict[int, set[str]] = defaultdict(set)
    for hit in hits:
        batches[hit.webhook_id].add(hit.events)
        for seq, record in hit.events:
            under[seq].add(hit.webhook_id)
            records[seq].add(record)
    assert all(len(shapes) == 1 for shapes in batches.values()), batches
    assert {seq: ids for seq, ids in under.items() if len(ids) > 1} == {}
    assert {seq: ids for seq, ids in records.items() if len(ids) > 1} == {}
    assert len(batches) == 30  # batch_size 2: the batches were never recut


@pytest.mark.skipif(
    DATABASE != "postgresql",
    reason="several delivery workers need PostgreSQL (FOR UPDATE SKIP LOCKED); on SQLite "
    "the exchange runs one `exchange worker`. Set EXCHANGE_TEST_DATABASE_URL to run this.",
)
def test_two_worker_processes_never_send_twice_nor_overlap_a_subscription(
    exchange: Exchange, workers: Callable[..., Workers]
) -> None:
    subscriptions, records = 10, 60
    # A generous receiver timeout: no retry may blur what this test looks for.
    pool = workers(delivery_timeout_seconds=10)
    starting = [pool.start(threads=3), pool.start(threads=3)]  # slow to start: set up meanwhile
    exchange.register("fleet", captures_product())
    with receiving(delay=0.02) as receiver:
        sids = [_subscribe(exchange, receiver, batch_size=4) for _ in range(subscriptions)]
        running = [worker.ready() for worker in starting]
        published: list[str] = []
        for first in range(1, records + 1, 20):
            published += _publish(exchange, range(first, first + 20))
        receiver.wait_until(
            "every event for every subscription",
            lambda h: all(_received(h, sid) >= set(published) for sid in sids),
            45,
        )
        _settled(exchange, sids, records, 20)
        for worker in running:
            worker.stop()
        hits = receiver.snapshot()

    assert all(hit.verified for hit in hits), [h for h in hits if not h.verified]
    assert all(hit.ended is not None for hit in hits)
    # No event was sent twice, and none is missing.
    seen: dict[tuple[int | None, int], int] = defaultdict(int)
    for hit in hits:
        for seq, _ in hit.events:
            seen[hit.subscription, seq] += 1
    assert {key: n for key, n in seen.items() if n > 1} == {}
    assert set(seen) == {(sid, seq) for sid in sids for seq in range(1, records + 1)}
    # One request at a time per subscription, its events in order.
    overlaps = []
    for sid in sids:
        mine = sorted((h for h in hits if h.subscription == sid), key=lambda h: h.started)
        for before, after in pairwise(mine):
            assert before.ended is not None
            if after.started < before.ended:
                overlaps.append((sid, before.webhook_id, after.webhook_id))
        assert [seq for h in mine for seq, _ in h.events] == list(range(1, records + 1)), sid
    assert overlaps == []
    # Both processes delivered (their audit entries name them).
    engine = create_engine(exchange.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            addresses = set(
                connection.scalars(
                    select(AuditEntry.client_address)
                    .where(AuditEntry.action == "deliver")
                    .distinct()
                )
            )
    finally:
        engine.dispose()
    names = {f"worker:{worker.name}"[:64] for worker in running}
    print(f"\n[{DATABASE}] {len(hits)} requests; delivering: {sorted(addresses)}")
    assert addresses == names, (addresses, names)
