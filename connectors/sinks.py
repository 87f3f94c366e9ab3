"""Where a subscriber's events go: durably, each at most once, and the follower's cursor.

`open_sink(path)` picks the kind by the file's suffix:

- `.ndjson` / `.jsonl`: one JSON line per event, appended and fsync'd before the
  store returns:

      {"subscription": 7, "event": 41, "product": "violation-captures",
       "purpose": "law_enforcement", "view": "raw", "webhook_id": "msg_…_3" | null,
       "received_at": "2026-12-01T08:00:01.250000Z", "record": {"id": "cap-000041", …}}

  Next to it, `FILE.ledger.sqlite` indexes what the file holds: the event keys,
  the webhook ids stored, each subscription's cursor, and `covered`, the file's
  length when the ledger was last committed.
- `.db` / `.sqlite` / `.sqlite3`: a SQLite database with the table `events`
  (primary key `(subscription, event)`; `product`, `purpose`, `view`,
  `record_id`, `published_at`, `webhook_id`, `received_at` as columns and the
  record as JSON text in `record`), plus `deliveries` and `cursors`.

Invariants (an event is `(subscription, event number)`):

1. An event is stored at most once, across restarts and crashes; a webhook id
   stored before is recognised and its delivery stores nothing again.
2. When `store` returns, its events are on disk (fsync), so acknowledging them
   to the exchange afterwards can never lose one.
3. A cursor is stored with or after the events it follows, never before: a
   crash replays events (absorbed by 1) instead of skipping them.

SQLite (WAL, `synchronous=FULL`) gives all three in one transaction. The NDJSON
sink writes in this order: append the lines and fsync the file, then commit the
ledger (event keys, webhook id, cursor, new `covered`). A crash before the fsync
completes leaves some of the lines, the last one perhaps torn; between the
fsync and the commit, whole lines the ledger does not know. Opening the sink (and any store after a
failed one) reconciles: a torn fragment at the end is cut off — its events were
never acknowledged, so the exchange sends them again — and complete lines past
`covered` are indexed. The webhook id of such a delivery is not recorded (the
file cannot tell whether all of its events made it), so its retry goes through
event dedup, stores only what is missing, and then records the id. The ledger
can always be rebuilt from the file (delete it; the cursors are then lost and a
follower replays from the start, absorbed by 1).

One process writes an NDJSON sink at a time (an exclusive `flock`, released by
the kernel when the process dies). Event numbers are per subscription, so one
sink should receive from one exchange.
"""

import fcntl
import json
import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

log = logging.getLogger(__name__)

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")

_SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    webhook_id TEXT PRIMARY KEY,
    subscription INTEGER NOT NULL,
    events INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    subscription INTEGER PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
_EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    subscription INTEGER NOT NULL,
    event INTEGER NOT NULL,
    product TEXT NOT NULL,
    purpose TEXT NOT NULL,
    view TEXT NOT NULL,
    record_id TEXT,
    published_at TEXT,
    webhook_id TEXT,
    received_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (subscription, event)
);
CREATE INDEX IF NOT EXISTS events_by_record ON events (product, record_id);
"""
_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    subscription INTEGER NOT NULL,
    event INTEGER NOT NULL,
    PRIMARY KEY (subscription, event)
);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    covered INTEGER NOT NULL
);
INSERT OR IGNORE INTO state (id, covered) VALUES (1, 0);
"""


class SinkError(Exception):
    """The sink cannot be opened or written; the message names the file."""


@dataclass(frozen=True)
class Delivery:
    """Events that arrived together: one webhook request or one pulled page.

    `events` are the exchange's `{"event": n, "record": {...}}`; `webhook_id` is
    set for webhooks, `cursor` (the page's `next_cursor`) for pulls."""

    subscription: int
    product: str
    purpose: str
    view: str
    events: list[dict[str, Any]]
    webhook_id: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class Stored:
    """What a store did: how many events were new, and whether the webhook id
    was already stored (then nothing was written)."""

    written: int
    duplicate: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _shaped(delivery: Delivery) -> list[dict[str, Any]]:
    """The delivery's events as stored (the NDJSON line's members), each number once
    (its last copy, should a delivery repeat one), in order."""
    received = _now()
    records = {int(item["event"]): item["record"] for item in delivery.events}
    return [
        {
            "subscription": delivery.subscription,
            "event": number,
            "product": delivery.product,
            "purpose": delivery.purpose,
            "view": delivery.view,
            "webhook_id": delivery.webhook_id,
            "received_at": received,
            "record": records[number],
        }
        for number in sorted(records)
    ]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _connect(path: Path) -> sqlite3.Connection:
    """A connection that commits only when told (`BEGIN IMMEDIATE` … `COMMIT`) and
    whose commits are durable: WAL with `synchronous=FULL` fsyncs at every commit.
    A new file is made readable by its owner only (records may be personal data);
    SQLite gives its -wal and -shm files the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as error:
        raise SinkError(f"{path}: {error.strerror}") from None
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as error:
        raise SinkError(f"{path}: {error}") from None
    return connection


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # a failed COMMIT (busy, I/O) may leave it open
            connection.execute("ROLLBACK")
        raise


def _known(connection: sqlite3.Connection, webhook_id: str | None) -> bool:
    if webhook_id is None:
        return False
    found = connection.execute("SELECT 1 FROM deliveries WHERE webhook_id = ?", (webhook_id,))
    return found.fetchone() is not None


def _noted(connection: sqlite3.Connection, delivery: Delivery, written: int) -> None:
    """The delivery's webhook id and cursor, in the transaction that stores its events."""
    now = _now()
    if delivery.webhook_id is not None:
        connection.execute(
            "INSERT INTO deliveries (webhook_id, subscription, events, received_at) "
            "VALUES (?, ?, ?, ?)",
            (delivery.webhook_id, delivery.subscription, written, now),
        )
    if delivery.cursor is not None:
        connection.execute(
            "INSERT INTO cursors (subscription, cursor, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (subscription) DO UPDATE SET cursor = excluded.cursor, "
            "updated_at = excluded.updated_at",
            (delivery.subscription, delivery.cursor, now),
        )


class Sink(ABC):
    """Durable, deduplicated storage of events and cursors; safe to share between
    threads (stores are serialised)."""

    _db: sqlite3.Connection  # the events (SQLite) or the ledger (NDJSON); cursors in both

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @abstractmethod
    def store(self, delivery: Delivery) -> Stored:
        """Write the delivery's new events (and note its webhook id and cursor);
        durable when it returns. Raises SinkError if it could not be written."""

    def cursor(self, subscription: int) -> str | None:
        """The cursor stored for the subscription, if any."""
        with self._lock:
            found = self._db.execute(
                "SELECT cursor FROM cursors WHERE subscription = ?", (subscription,)
            ).fetchone()
        return str(found[0]) if found else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class SqliteSink(Sink):
    """Events as rows; dedup, webhook id and cursor in the events' own transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._db = _connect(path)
        try:
            self._db.executescript(_EVENTS_SCHEMA + _SHARED_SCHEMA)
        except sqlite3.Error as error:
            self._db.close()
            raise SinkError(f"{path}: {error}") from None

    def store(self, delivery: Delivery) -> Stored:
        events = _shaped(delivery)
        with self._lock:
            try:
                with _transaction(self._db) as db:
                    if _known(db, delivery.webhook_id):
                        return Stored(0, duplicate=True)
                    before = db.total_changes
                    db.executemany(
                        "INSERT OR IGNORE INTO events (subscription, event, product, purpose, "
                        "view, record_id, published_at, webhook_id, received_at, record) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [_columns(event) for event in events],
                    )
                    written = db.total_changes - before
                    _noted(db, delivery, written)
            except sqlite3.Error as error:
                raise SinkError(f"{self.path}: {error}") from None
        return Stored(written)


def _columns(event: dict[str, Any]) -> tuple[Any, ...]:
    record = event["record"]
    return (
        *(event[name] for name in ("subscription", "event", "product", "purpose", "view")),
        record.get("id"),
        record.get("published_at"),
        event["webhook_id"],
        event["received_at"],
        _json(record),
    )


class NdjsonSink(Sink):
    """Events as lines of a file, indexed by a ledger that is reconciled with the
    file's tail on open (see the module docstring for the order of writes)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.ledger_path = path.with_name(path.name + ".ledger.sqlite")
        created = not path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            raise SinkError(f"{path}: {error.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise SinkError(f"{path} is being written by another process") from None
        try:
            if created:
                _fsync_directory(path.parent)
            self._db = _connect(self.ledger_path)
        except (OSError, SinkError) as error:
            os.close(self._fd)
            if isinstance(error, SinkError):
                raise
            raise SinkError(f"{path}: {error}") from None
        try:
            self._db.executescript(_LEDGER_SCHEMA + _SHARED_SCHEMA)
            self._reconcile()
        except (OSError, sqlite3.Error, SinkError) as error:
            self.close()
            if isinstance(error, SinkError):
                raise
            raise SinkError(f"{path}: {error}") from None
        self._dirty = False

    def _reconcile(self) -> None:
        """Bring the ledger up to the file: cut a torn last line, index whole lines
        past `covered`. Raises SinkError if the file is shorter than the ledger
        records or holds a complete line that is not one of our events."""
        covered = int(self._db.execute("SELECT covered FROM state").fetchone()[0])
        size = os.fstat(self._fd).st_size
        if size < covered:
            raise SinkError(
                f"{self.path} is shorter ({size} bytes) than its ledger records ({covered}): "
                f"it was truncated or replaced; move {self.ledger_path.name} away to rebuild it"
            )
        if size == covered:
            self._size = size
            return
        keys, end = self._tail(covered)
        if end < size:
            log.warning("%s: cut a torn last line of %d bytes", self.path, size - end)
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        with _transaction(self._db) as db:
            db.executemany("INSERT OR IGNORE INTO events (subscription, event) VALUES (?, ?)", keys)
            db.execute("UPDATE state SET covered = ? WHERE id = 1", (end,))
        if keys:
            log.info("%s: indexed %d events the ledger had not recorded", self.path, len(keys))
        self._size = end

    def _tail(self, start: int) -> tuple[list[tuple[int, int]], int]:
        """The event keys of the complete lines from `start`, and where they end."""
        keys: list[tuple[int, int]] = []
        end = start
        with os.fdopen(os.dup(self._fd), "rb") as file:
            file.seek(start)
            for line in file:
                if not line.endswith(b"\n"):
                    break
                key = _key(line)
                if key is None:
                    raise SinkError(
                        f"{self.path}: line {_line_number(file, end)} is not an event of this "
                        "sink; only `exchange receive` and `exchange pull` may write the file"
                    )
                keys.append(key)
                end += len(line)
        return keys, end

    def store(self, delivery: Delivery) -> Stored:
        events = _shaped(delivery)
        with self._lock:
            try:
                if self._dirty:
                    self._reconcile()
                stored = self._append(delivery, events)
            except BaseException as error:
                # The file may be ahead of the ledger: reconcile before the next store.
                self._dirty = True
                if isinstance(error, OSError | sqlite3.Error):
                    raise SinkError(f"{self.path}: {error}") from None
                raise
            self._dirty = False
            return stored

    def _append(self, delivery: Delivery, events: list[dict[str, Any]]) -> Stored:
        with _transaction(self._db) as db:
            if _known(db, delivery.webhook_id):
                return Stored(0, duplicate=True)
            new = [event for event in events if _inserted(db, event)]
            data = "".join(_json(event) + "\n" for event in new).encode()
            if data:
                _write_all(self._fd, data)
                os.fsync(self._fd)
                db.execute("UPDATE state SET covered = ? WHERE id = 1", (self._size + len(data),))
            _noted(db, delivery, len(new))
        self._size += len(data)
        return Stored(len(new))

    def close(self) -> None:
        super().close()
        os.close(self._fd)  # releases the flock


def _key(line: bytes) -> tuple[int, int] | None:
    """The (subscription, event) of a line this sink wrote; None for anything else."""
    try:
        event = json.loads(line)
        key = (event["subscription"], event["event"])
    except (ValueError, TypeError, KeyError):
        return None
    return key if all(type(part) is int for part in key) else None


def _line_number(file: BinaryIO, offset: int) -> int:
    """The 1-based number of the line starting at `offset`."""
    file.seek(0)
    newlines = 0
    while offset > 0:
        chunk = file.read(min(offset, 1 << 20))
        newlines += chunk.count(b"\n")
        offset -= len(chunk)
    return newlines + 1


def _inserted(db: sqlite3.Connection, event: dict[str, Any]) -> bool:
    done = db.execute(
        "INSERT OR IGNORE INTO events (subscription, event) VALUES (?, ?)",
        (event["subscription"], event["event"]),
    )
    return done.rowcount == 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    """Make a new file's name durable, not only its contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_sink(path: Path) -> Sink:
    """The sink for `path`, by its suffix. Raises SinkError for another suffix or a
    file that cannot be opened."""
    suffix = path.suffix.lower()
    if suffix in NDJSON_SUFFIXES:
        return NdjsonSink(path)
    if suffix in SQLITE_SUFFIXES:
        return SqliteSink(path)
    kinds = ", ".join(NDJSON_SUFFIXES + SQLITE_SUFFIXES)
    raise SinkError(f"{path}: the file's suffix picks the sink; use one of {kinds}")


def stored_events(path: Path) -> Iterable[dict[str, Any]]:
    """Every event a sink file holds, in the NDJSON line shape (for checking a sink)."""
    if path.suffix.lower() in SQLITE_SUFFIXES:
        with closing(sqlite3.connect(path)) as db:
            rows = db.execute(
                "SELECT subscription, event, product, purpose, view, webhook_id, received_at, "
                "record FROM events ORDER BY subscription, event"
            ).fetchall()
        names = ("subscription", "event", "product", "purpose", "view", "webhook_id")
        return [
            dict(zip(names, row[:6], strict=True))
            | {"received_at": row[6], "record": json.loads(row[7])}
            for row in rows
        ]
    with open(path, "rb") as file:
        return [json.loads(line) for line in file if line.endswith(b"\n")]
