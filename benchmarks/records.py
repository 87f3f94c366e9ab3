"""Publishing and reading records through the API, against same-run baselines.

- publish: 10,000 records in one API batch (validation, idempotency lookup, dense
  sequence numbers, sealing the protected fields, audit entry) vs inserting the
  same rows, unencrypted, straight into an identical table with SQLAlchemy Core in
  one transaction.
- read: paging through all of them (each record's sealed fields opened) as the
  police (raw view) vs as the map
  company (protected view: plates pseudonymized under its own key, points
  generalised to H3 cells, photos redacted). Target: at least half the raw rate.
"""

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint, insert
from sqlmodel import SQLModel

from benchmarks.server import Running
from connectors.fleet import captures
from exchange.db import make_engine
from exchange.demo.products import VIOLATION_CAPTURES
from exchange.privacy.sealing import canonical_json

RECORDS = 10_000
RAW = "bench_raw_record"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def publish_api(running: Running, records: list[dict[str, Any]]) -> float:
    with running.client("fleet") as fleet:
        fleet.post(
            "/v1/products", json=VIOLATION_CAPTURES.model_dump(mode="json")
        ).raise_for_status()
        started = time.perf_counter()
        response = fleet.post("/v1/products/violation-captures/records", json=records)
        elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert response.json()["accepted"] == len(records), response.text
    return _rate(len(records), elapsed)


def insert_raw(database_url: str, records: list[dict[str, Any]]) -> float:
    """The same rows into a copy of the record table, in a database of the same
    engine: the floor an API publish cannot beat."""
    engine = make_engine(database_url)
    metadata = MetaData()
    source = SQLModel.metadata.tables["record"]
    table = Table(
        RAW,
        metadata,
        *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in source.c),
        UniqueConstraint("product_id", "record_id"),
        UniqueConstraint("product_id", "seq"),
        Index(f"ix_{RAW}_product_id_event_time", "product_id", "event_time"),
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    rows = [
        {
            "product_id": 1,
            "seq": n,
            "record_id": record["id"],
            "product_version": 1,
            "content": {k: v for k, v in record.items() if k != "id"},
            "content_hash": hashlib.sha256(canonical_json(record)).hexdigest(),
            "event_time": datetime.now(UTC),
            "published_at": datetime.now(UTC),
        }
        for n, record in enumerate(records, start=1)
    ]
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(insert(table), rows)
    elapsed = time.perf_counter() - started
    metadata.drop_all(engine)
    engine.dispose()
    return _rate(len(rows), elapsed)


def read_all(running: Running, key: str, purpose: str) -> tuple[float, str]:
    with running.client(key) as client:
        started = time.perf_counter()
        count, cursor, view = 0, None, ""
        while True:
            params = {"purpose": purpose, "limit": 1000} | ({"cursor": cursor} if cursor else {})
            response = client.get("/v1/products/violation-captures/records", params=params)
            response.raise_for_status()
            page = response.json()
            count += len(page["records"])
            view = page["view"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        elapsed = time.perf_counter() - started
    assert count == RECORDS, count
    return _rate(count, elapsed), view


def run(running: Running) -> list[tuple[str, float, str]]:
    records = captures.violation_captures(RECORDS, now=datetime.now(UTC))
    baseline = insert_raw(running.settings.resolved_database_url, records)
    api = publish_api(running, records)
    raw_read, raw_view = read_all(running, "police", "law_enforcement")
    protected_read, protected_view = read_all(running, "mapco", "navigation_safety")
    return [
        ("insert rows straight into the database (baseline)", baseline, "1.00"),
        ("publish 10,000 records through the API", api, f"{api / baseline:.2f}"),
        (f"read all records, {raw_view} view (baseline)", raw_read, "1.00"),
        (
            f"read all records, {protected_view} view (pseudonyms, H3 cells)",
            protected_read,
            f"{protected_read / raw_read:.2f}",
        ),
    ]
