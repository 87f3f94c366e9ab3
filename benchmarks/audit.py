"""The audit log in the database, against same-run baselines.

- append: events through `audit.store.append` (canonical body, leaf and chain
  hashes, Merkle nodes, head and frontier under the log's lock) in transactions of
  100 events, vs plain INSERTs of the very same rows (same columns and values, read
  back from the log) into a copy of `audit_entry` with its indexes but no triggers,
  also 100 per transaction.
- inclusion proofs: ms per `audit.store.inclusion(session, index, n)` (median of
  random leaves) as the log grows to 10^4, 10^5 and 10^6 entries; the log is built
  through `append` in transactions of 5,000 events. Latency should follow log2 n.
- the plans of the auditor's usual filter queries (by product, by actor, since a
  time, first 100 by index), on the biggest log.

Each part gets a fresh, migrated database: a file in the scratch dir, or on
PostgreSQL a database created next to the given one and dropped afterwards.
"""

import math
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, event, insert, select, text
from sqlmodel import Session, col

from audit import verify_inclusion
from audit.store import AuditEntry, AuditEvent, append, inclusion, index_range
from benchmarks.databases import fresh_database
from exchange.db import make_engine

APPEND_EVENTS = 20_000
APPEND_BATCH = 100
BUILD_BATCH = 5_000
PROOFS = 200
MAX_ENTRIES = 10**6
QUERY_RUNS = 5
PLAIN = "bench_plain_audit_entry"

PRODUCTS = [f"product-{n:02d}" for n in range(20)]
ORGANIZATIONS = [f"org-{n:02d}" for n in range(10)]
ACTORS = [f"client-{n:03d}" for n in range(100)]
ACTIONS = ["records.read", "records.publish", "product.register", "grant.create"]
PURPOSES = ["law_enforcement", "navigation_safety", "research", None]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _say(message: str) -> None:
    print(message, flush=True)


def _events(first: int, count: int, rng: random.Random) -> list[AuditEvent]:
    """Plausible access events, spread over products, organisations and actors."""
    events = []
    for n in range(first, first + count):
        organization = rng.choice(ORGANIZATIONS)
        records = rng.randint(1, 1000)
        events.append(
            AuditEvent(
                action=rng.choice(ACTIONS),
                decision="allow" if rng.random() < 0.9 else "deny",
                reason=f"benchmark event {n}",
                actor=rng.choice(ACTORS),
                organization=organization,
                product=rng.choice(PRODUCTS),
                purpose=rng.choice(PURPOSES),
                policy_version="2024-06-01",
                view=rng.choice(["raw", "protected"]),
                record_count=records,
                records=[[n, n + records - 1]],
                request_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                client_address=f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                details={"page": rng.randint(1, 50), "bench": True},
            )
        )
    return events


def _append_all(engine: Engine, events: list[AuditEvent], batch: int) -> float:
    """Seconds to append `events` in transactions of `batch`, each committed."""
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        with Session(engine) as session:
            append(session, events[start : start + batch])
            session.commit()
    return time.perf_counter() - started


def _plain_table(engine: Engine) -> Table:
    """A copy of audit_entry as migrated (columns, types, primary key, indexes),
    reflected from the database, without the append-only triggers."""
    live = Table("audit_entry", MetaData(), autoload_with=engine)
    metadata = MetaData()
    table = live.to_metadata(metadata, name=PLAIN)
    for item in [*table.indexes, table.primary_key]:
        if item.name:
            item.name = item.name.replace("audit_entry", PLAIN)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return table


def appends(scratch: Path, database_url: str | None) -> list[tuple[str, float, str]]:
    with fresh_database(scratch, database_url, "audit_appends") as url:
        engine = make_engine(url)
        events = _events(0, APPEND_EVENTS, random.Random(1))
        _say(f"appending {APPEND_EVENTS:,} events, {APPEND_BATCH} per transaction …")
        append_seconds = _append_all(engine, events, APPEND_BATCH)

        table = _plain_table(engine)
        with Session(engine) as session:
            rows = [
                dict(row._mapping)
                for row in session.execute(
                    select(AuditEntry.__table__).order_by(col(AuditEntry.index))
                )
            ]
            session.rollback()
        assert len(rows) == APPEND_EVENTS, len(rows)
        _say(f"inserting the same {len(rows):,} rows plainly, {APPEND_BATCH} per transaction …")
        started = time.perf_counter()
        for start in range(0, len(rows), APPEND_BATCH):
            with engine.begin() as connection:
                connection.execute(insert(table), rows[start : start + APPEND_BATCH])
        plain_seconds = time.perf_counter() - started
        table.metadata.drop_all(engine)
        engine.dispose()
    plain, appended = _rate(len(rows), plain_seconds), _rate(APPEND_EVENTS, append_seconds)
    return [
        (
            f"plain INSERT of the same rows, {APPEND_BATCH}/txn (rows/s, baseline)",
            plain,
            "1.00",
        ),
        (
            f"audit.store.append with Merkle nodes, {APPEND_BATCH}/txn (events/s)",
            appended,
            f"{appended / plain:.2f} (target ≥ 0.5)",
        ),
    ]


@contextmanager
def _counting_statements(engine: Engine) -> Iterator[list[int]]:
    counter = [0]

    def count(*_: Any) -> None:
        counter[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _proofs(engine: Engine, size: int, rng: random.Random) -> tuple[float, float, float]:
    """(median ms per proof, statements per proof, hashes per proof) over random leaves."""
    timings, statements, hashes = [], 0, 0
    with _counting_statements(engine) as counter, Session(engine) as session:
        for index in (rng.randrange(size) for _ in range(PROOFS)):
            before = counter[0]
            started = time.perf_counter()
            leaf, root_hash, proof = inclusion(session, index, size)
            timings.append(time.perf_counter() - started)
            statements += counter[0] - before
            hashes += len(proof)
            verify_inclusion(leaf, index, size, proof, root_hash)
        session.rollback()
    return statistics.median(timings) * 1000, statements / PROOFS, hashes / PROOFS


def _plan(connection: Any, query: str, params: dict[str, Any]) -> list[str]:
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text(f"EXPLAIN QUERY PLAN {query}"), params)
        return [row.detail for row in rows]
    return [row[0] for row in connection.execute(text(f"EXPLAIN {query}"), params)]


def _index_used(plan: list[str]) -> str:
    for line in plan:
        for word in line.replace("(", " ").split():
            if word.startswith(("ix_", "pk_", "sqlite_autoindex")):
                return word
    return "no index"


def _queries(engine: Engine, size: int) -> list[tuple[str, float, str]]:
    """EXPLAIN (printed) and the median time of the auditor's filter query as the API
    runs it: the time range becomes an index range (`audit.store.index_range`, two
    lookups), then `column = ? AND index in range ORDER BY index LIMIT 100`."""
    rows = []
    with Session(engine) as session:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE audit_entry"))
        since = session.scalar(
            select(AuditEntry.recorded_at).where(col(AuditEntry.index) == size * 9 // 10)
        )
        for column, value in (("product", PRODUCTS[3]), ("actor", ACTORS[7])):
            query = (
                f'SELECT * FROM audit_entry WHERE {column} = :value AND "index" >= :first '
                'AND "index" < :end ORDER BY "index" LIMIT 100'
            )
            first, end = index_range(session, since, None)
            params = {"value": value, "first": first, "end": end}
            plan = _plan(connection, query, params)
            _say(f"\nquery plan, by {column} ({size:,} entries): {query}")
            for line in plan:
                _say(f"    {line}")
            timings = []
            for _ in range(QUERY_RUNS):
                started = time.perf_counter()
                first, end = index_range(session, since, None)
                params = {"value": value, "first": first, "end": end}
                found = connection.execute(text(query), params).all()
                timings.append(time.perf_counter() - started)
            assert 0 < len(found) <= 100, len(found)
            rows.append(
                (
                    f"filter by {column} since t, first 100 by index (ms, n={size:,})",
                    statistics.median(timings) * 1000,
                    _index_used(plan),
                )
            )
        session.rollback()
    return rows


def proofs(
    scratch: Path, database_url: str | None, max_entries: int = MAX_ENTRIES
) -> list[tuple[str, float, str]]:
    sizes = [n for n in (10**4, 10**5, 10**6) if n <= max_entries]
    if max_entries not in sizes:
        sizes.append(max_entries)
    rng = random.Random(2)
    rows: list[tuple[str, float, str]] = []
    with fresh_database(scratch, database_url, "audit_proofs") as url:
        engine = make_engine(url)
        built, build_seconds = 0, 0.0
        for size in sizes:
            _say(f"growing the log to {size:,} entries, {BUILD_BATCH:,} per transaction …")
            while built < size:
                count = min(BUILD_BATCH, size - built)
                events = _events(built, count, rng)
                build_seconds += _append_all(engine, events, count)
                built += count
            with Session(engine) as session:
                stored = session.scalar(
                    select(col(AuditEntry.index)).order_by(text('"index" DESC'))
                )
                session.rollback()
            assert stored == size - 1, stored
            median_ms, statements, hashes = _proofs(engine, size, rng)
            rows.append(
                (
                    f"inclusion proof, n={size:,} (ms, median of {PROOFS})",
                    median_ms,
                    f"log2 n={math.log2(size):.1f}, {hashes:.1f} hashes, {statements:.0f} reads",
                )
            )
        rows.insert(
            0,
            (
                f"append to build the log, {BUILD_BATCH:,}/txn (events/s)",
                _rate(built, build_seconds),
                f"{built:,} entries in {build_seconds:.0f} s",
            ),
        )
        rows += _queries(engine, built)
        engine.dispose()
    return rows


def run(
    scratch: Path, database_url: str | None, max_entries: int = MAX_ENTRIES
) -> list[tuple[str, float, str]]:
    return appends(scratch, database_url) + proofs(scratch, database_url, max_entries)
