"""Publishing through the connectors vs raw httpx batch posts, in the same run.

The same 5,000 fleet captures (from the simulator's `Fleet`, without photos) are
published in batches of 500 to copies of the violation-captures product on the
same server, each path twice in opposite orders (the better run kept):

- baseline: a bare `httpx.Client` posting each batch with a bearer token;
- the SDK: `ExchangeClient.publish` per batch (token management, retries, typed
  answers);
- the publisher connector: `Publisher.publish_paths` on an NDJSON file of the same
  records (reading, batching, rejects file, and a checkpoint saved after every
  batch, which is what makes it resumable).
"""

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.server import Running
from connectors import ExchangeClient
from connectors.fleet.product import VIOLATION_CAPTURES
from connectors.fleet.simulation import Fleet
from connectors.publisher import Publisher

RECORDS = 5_000
BATCH = 500


def _records() -> list[dict[str, Any]]:
    fleet = Fleet(seed=3, vehicles=40, photos=False)
    captures = fleet.captures(RECORDS / 50, 50)
    return [capture.record for capture in captures][:RECORDS]


def _batches(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [records[i : i + BATCH] for i in range(0, len(records), BATCH)]


def _register(http: httpx.Client, slug: str) -> None:
    http.post("/v1/products", json=VIOLATION_CAPTURES | {"slug": slug}).raise_for_status()


def raw_posts(running: Running, records: list[dict[str, Any]], slug: str) -> float:
    with running.client("fleet") as http:
        _register(http, slug)
        started = time.perf_counter()
        for batch in _batches(records):
            response = http.post(
                f"/v1/products/{slug}/records", params={"atomic": "false"}, json=batch
            )
            response.raise_for_status()
            assert response.json()["accepted"] == len(batch), response.text
        return len(records) / (time.perf_counter() - started)


def _sdk(running: Running) -> ExchangeClient:
    fleet = running.credentials["fleet"]
    return ExchangeClient(running.base_url, fleet["client_id"], fleet["client_secret"])


def sdk_publish(running: Running, records: list[dict[str, Any]], slug: str) -> float:
    with running.client("fleet") as http:
        _register(http, slug)
    with _sdk(running) as client:
        client.access_token()
        started = time.perf_counter()
        for batch in _batches(records):
            assert client.publish(slug, batch).accepted == len(batch)
        return len(records) / (time.perf_counter() - started)


def publisher(running: Running, records: list[dict[str, Any]], slug: str) -> float:
    with running.client("fleet") as http:
        _register(http, slug)
    with tempfile.TemporaryDirectory(prefix="bench-publisher-") as directory:
        return _publish_file(running, records, slug, Path(directory))


def _publish_file(
    running: Running, records: list[dict[str, Any]], slug: str, scratch: Path
) -> float:
    source = scratch / "captures.ndjson"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    with _sdk(running) as client:
        client.access_token()
        run = Publisher(
            client,
            slug,
            batch_size=BATCH,
            checkpoint=scratch / "checkpoint.json",
            rejects=scratch / "rejects.ndjson",
        )
        started = time.perf_counter()
        summary = run.publish_paths([source])
        elapsed = time.perf_counter() - started
    assert summary.accepted == len(records), summary
    return len(records) / elapsed


def run(running: Running) -> list[tuple[str, float, str]]:
    """Each path twice, in opposite orders (a fresh product each time), the better
    run kept: no path always gets the server first."""
    records = _records()
    paths = {"raw": raw_posts, "sdk": sdk_publish, "publisher": publisher}
    best = dict.fromkeys(paths, 0.0)
    for round, order in enumerate((list(paths), list(reversed(paths)))):
        for name in order:
            rate = paths[name](running, records, f"bench-{name}-{round}")
            best[name] = max(best[name], rate)
    baseline = best["raw"]
    return [
        (f"raw httpx posts, {BATCH} a batch (baseline), records/s", baseline, "1.00"),
        ("ExchangeClient.publish, records/s", best["sdk"], f"{best['sdk'] / baseline:.2f}"),
        (
            "exchange publish (Publisher, NDJSON file), records/s",
            best["publisher"],
            f"{best['publisher'] / baseline:.2f}",
        ),
    ]
