"""Publishing through the connectors vs raw httpx batch posts, in the same run.

The same 5,000 fleet captures (from the simulator's `Fleet`, without photos) are
published in batches of 500 to three copies of the violation-captures product on
the same server:

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


def raw_posts(running: Running, records: list[dict[str, Any]]) -> float:
    with running.client("fleet") as http:
        _register(http, "bench-raw")
        started = time.perf_counter()
        for batch in _batches(records):
            response = http.post(
                "/v1/products/bench-raw/records", params={"atomic": "false"}, json=batch
            )
            response.raise_for_status()
            assert response.json()["accepted"] == len(batch), response.text
        return len(records) / (time.perf_counter() - started)


def _sdk(running: Running) -> ExchangeClient:
    fleet = running.credentials["fleet"]
    return ExchangeClient(running.base_url, fleet["client_id"], fleet["client_secret"])


def sdk_publish(running: Running, records: list[dict[str, Any]]) -> float:
    with running.client("fleet") as http:
        _register(http, "bench-sdk")
    with _sdk(running) as client:
        client.access_token()
        started = time.perf_counter()
        for batch in _batches(records):
            assert client.publish("bench-sdk", batch).accepted == len(batch)
        return len(records) / (time.perf_counter() - started)


def publisher(running: Running, records: list[dict[str, Any]], scratch: Path) -> float:
    with running.client("fleet") as http:
        _register(http, "bench-connector")
    source = scratch / "captures.ndjson"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    with _sdk(running) as client:
        client.access_token()
        run = Publisher(
            client,
            "bench-connector",
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
    records = _records()
    baseline = raw_posts(running, records)
    sdk = sdk_publish(running, records)
    with tempfile.TemporaryDirectory(prefix="bench-publisher-") as directory:
        connector = publisher(running, records, Path(directory))
    return [
        (f"raw httpx posts, {BATCH} a batch (baseline), records/s", baseline, "1.00"),
        ("ExchangeClient.publish, records/s", sdk, f"{sdk / baseline:.2f}"),
        (
            "exchange publish (Publisher, NDJSON file), records/s",
            connector,
            f"{connector / baseline:.2f}",
        ),
    ]
