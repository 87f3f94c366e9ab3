"""Webhook feeds through a real running exchange, against a bare-POST baseline.

The exchange (uvicorn in a thread, its own delivery threads, default settings but
`webhook_allow_private`) delivers to a loopback receiver in this process: a
threaded `http.server` that keeps connections alive, answers 204 at once and
notes when each record arrived for each subscription.

- latency: one record per publish, timed from just before the publish POST to its
  arrival at the receiver, once per subscription, for 1, 10 and 100 webhook
  subscriptions (the police's, raw view): p50 and p99.
- throughput: one publish of many records (2,000; 500 for 10 subscriptions), timed
  from before its POST until every event arrived (batches of 100).
- baseline, same run, same receiver: a bare httpx POST loop of a captured webhook
  body (one event: POSTs/s and p50/p99 per POST; a full 100-event batch: events/s).
"""

import http.server
import json
import os
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.databases import fresh_database
from benchmarks.server import Running, running_exchange
from connectors.fleet import captures
from exchange.demo.products import VIOLATION_CAPTURES

PRODUCT = "violation-captures"
RECORDS = f"/v1/products/{PRODUCT}/records"
PUBLISHES = {1: 100, 10: 30, 100: 6}  # subscriptions: one-record publishes timed
BULK = {1: 2_000, 10: 500}  # subscriptions: records in the one throughput publish
BARE_POSTS = 1_000
WAIT_SECONDS = 60.0

Row = tuple[str, float, str]


class Receiver:
    """Arrival times (perf_counter) by record id and subscription, and the last body."""

    def __init__(self) -> None:
        self.arrivals: dict[str, dict[int, float]] = defaultdict(dict)
        self.bodies: dict[int, bytes] = {}  # a body seen, by how many events it carries
        self.changed = threading.Condition()
        self.requests = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def note(self, raw: bytes) -> None:
        now = time.perf_counter()
        try:
            payload = json.loads(raw)["data"]
        except (ValueError, KeyError, TypeError):  # a baseline POST
            with self.changed:
                self.requests += 1
            return
        subscription = payload["subscription"]
        with self.changed:
            self.requests += 1
            self.bodies.setdefault(len(payload["events"]), raw)
            for event in payload["events"]:
                self.arrivals[event["record"]["id"]].setdefault(subscription, now)
            self.changed.notify_all()

    def wait(self, records: list[str], subscriptions: int) -> None:
        """Until every record arrived for that many subscriptions."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self.changed:
            while any(len(self.arrivals[r]) < subscriptions for r in records):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sum(len(self.arrivals[r]) < subscriptions for r in records)
                    raise RuntimeError(f"{missing} records did not arrive in {WAIT_SECONDS} s")
                self.changed.wait(min(left, 1.0))


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            receiver.note(self.rfile.read(int(self.headers.get("content-length", "0"))))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    return Handler


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _private_webhooks() -> Iterator[None]:
    """The benchmark server reads its settings from the environment: let its webhooks
    go to the loopback receiver."""
    before = os.environ.get("EXCHANGE_WEBHOOK_ALLOW_PRIVATE")
    os.environ["EXCHANGE_WEBHOOK_ALLOW_PRIVATE"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["EXCHANGE_WEBHOOK_ALLOW_PRIVATE"]
        else:
            os.environ["EXCHANGE_WEBHOOK_ALLOW_PRIVATE"] = before


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _ms(seconds: list[float]) -> tuple[float, float]:
    ms = [s * 1000 for s in seconds]
    return _percentile(ms, 50), _percentile(ms, 99)


class Feeds:
    def __init__(self, running: Running, receiver: Receiver) -> None:
        self.receiver = receiver
        self.fleet = running.client("fleet")
        self.police = running.client("police")
        self.records = iter(captures.violation_captures(5_000, now=datetime.now(UTC)))
        product = VIOLATION_CAPTURES.model_dump(mode="json")
        self.fleet.post("/v1/products", json=product).raise_for_status()
        self.subscriptions: list[int] = []
        self.posts: list[float] = []  # seconds each timed one-record publish POST took

    def close(self) -> None:
        self.fleet.close()
        self.police.close()

    def subscribe(self, count: int) -> None:
        """Exactly `count` webhook subscriptions (older ones deleted)."""
        for sid in self.subscriptions:
            self.police.delete(f"/v1/subscriptions/{sid}").raise_for_status()
        self.subscriptions = []
        for _ in range(count):
            response = self.police.post(
                "/v1/subscriptions",
                json={
                    "product": PRODUCT,
                    "purpose": "law_enforcement",
                    "delivery": "webhook",
                    "url": self.receiver.url,
                    "batch_size": 100,
                },
            )
            response.raise_for_status()
            self.subscriptions.append(response.json()["id"])

    def publish(self, count: int) -> tuple[list[str], float]:
        """Publish `count` new records in one POST; their ids and when it started."""
        records = [next(self.records) for _ in range(count)]
        started = time.perf_counter()
        response = self.fleet.post(RECORDS, json=records)
        response.raise_for_status()
        self.posts.append(time.perf_counter() - started)
        return [str(r["id"]) for r in records], started

    def latencies(self, subscriptions: int, publishes: int) -> tuple[list[float], list[float]]:
        """Publish -> arrival, per subscription; and how long each publish POST took."""
        self.subscribe(subscriptions)
        ids, _ = self.publish(1)  # warm up: connections, caches
        self.receiver.wait(ids, subscriptions)
        self.posts, seconds = [], []
        for _ in range(publishes):
            ids, started = self.publish(1)
            self.receiver.wait(ids, subscriptions)
            arrived = self.receiver.arrivals[ids[0]]
            seconds += [arrived[sid] - started for sid in self.subscriptions]
        return seconds, self.posts

    def throughput(self, subscriptions: int, records: int) -> float:
        self.subscribe(subscriptions)
        ids, started = self.publish(records)
        self.receiver.wait(ids, subscriptions)
        last = max(t for r in ids for t in self.receiver.arrivals[r].values())
        return records * subscriptions / (last - started)


def bare_posts(receiver: Receiver, body: bytes, count: int) -> list[float]:
    """Seconds per POST of `body` to the receiver, one after another on one connection."""
    seconds = []
    with httpx.Client(trust_env=False) as client:
        headers = {"content-type": "application/json"}
        client.post(receiver.url, content=b"{}", headers=headers)
        for _ in range(count):
            started = time.perf_counter()
            client.post(receiver.url, content=body, headers=headers).raise_for_status()
            seconds.append(time.perf_counter() - started)
    return seconds


def _strip(body: bytes) -> bytes:
    """A captured webhook body the receiver will not count as a delivery."""
    return json.dumps({"baseline": json.loads(body)}).encode()


def run(scratch: Path, database_url: str | None) -> list[Row]:
    with (
        _private_webhooks(),
        fresh_database(scratch, database_url, "feeds") as url,
        running_exchange(scratch / "feeds-data", url) as running,
        receiving() as receiver,
    ):
        threads = running.settings.delivery_workers
        feeds = Feeds(running, receiver)
        try:
            latency = {n: feeds.latencies(n, publishes) for n, publishes in PUBLISHES.items()}
            rates = {n: feeds.throughput(n, records) for n, records in BULK.items()}
        finally:
            feeds.close()
        one, full = receiver.bodies[1], receiver.bodies[max(receiver.bodies)]
        per_batch = max(receiver.bodies)
        single = bare_posts(receiver, _strip(one), BARE_POSTS)
        batched = bare_posts(receiver, _strip(full), BARE_POSTS // 5)
    base50, base99 = _ms(single)
    bare_rate = len(single) / sum(single)
    bare_events = per_batch * len(batched) / sum(batched)
    rows: list[Row] = [
        (f"bare httpx POST, 1-event body ({len(one):,} B): POSTs/s (baseline)", bare_rate, ""),
        ("bare httpx POST, 1-event body: p50 ms (baseline)", base50, "1.00"),
        ("bare httpx POST, 1-event body: p99 ms (baseline)", base99, "1.00"),
    ]
    for n, (seconds, posts) in latency.items():
        p50, p99 = _ms(seconds)
        noun = "subscription" if n == 1 else "subscriptions"
        rows += [
            (
                f"publish -> webhook, {n} {noun}: p50 ms ({len(seconds):,} arrivals)",
                p50,
                f"{p50 / base50:.0f}x; the publish POST itself {_ms(posts)[0]:.0f} ms",
            ),
            (f"publish -> webhook, {n} {noun}: p99 ms", p99, f"{p99 / base99:.0f}x"),
        ]
    rows.append(
        (
            f"bare httpx POST, {per_batch}-event body ({len(full):,} B): events/s (baseline)",
            bare_events,
            "1.00",
        )
    )
    for n, rate in rates.items():
        noun = "subscription" if n == 1 else "subscriptions"
        rows.append(
            (
                f"delivered events/s, {BULK[n]:,} records to {n} {noun}",
                rate,
                f"{rate / bare_events:.2f}; {threads} delivery threads",
            )
        )
    return rows
