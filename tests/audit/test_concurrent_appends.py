"""Concurrent appends: several OS processes write to one log at once, and the log
stays dense, ordered, chained and Merkle-consistent.

Each writer is a separate Python process (its own engine and connections), so the
only thing serialising them is the database: the head row's `FOR UPDATE` lock on
PostgreSQL, `BEGIN IMMEDIATE` and the busy timeout on SQLite. They wait on a start
file so they really start together.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from audit import verify_chain, verify_inclusion
from audit.merkle import Frontier, root_of_leaves
from audit.store import (
    STORED_FROM_LEVEL,
    AuditEntry,
    AuditEvent,
    AuditHead,
    AuditNode,
    append,
    head,
    inclusion,
)
from exchange.db import make_engine

PROCESSES = 4
TRANSACTIONS = 25
PER_TRANSACTION = 2
ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from sqlmodel import Session
    from audit.store import AuditEvent, append
    from exchange.db import make_engine

    url, process, transactions, per, ready, go = sys.argv[1:]
    process, transactions, per = int(process), int(transactions), int(per)
    engine = make_engine(url)
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.005)
    assigned = []
    for transaction in range(transactions):
        events = [
            AuditEvent(
                action="test",
                decision="allow",
                reason=f"process {process} transaction {transaction} event {event}",
                details={"process": process, "transaction": transaction, "event": event},
            )
            for event in range(per)
        ]
        with Session(engine) as session:
            indexes = append(session, events)
            session.commit()
        assigned.append(indexes)
    engine.dispose()
    print(json.dumps(assigned))
    """
)


def _event(reason: str) -> AuditEvent:
    return AuditEvent(action="test", decision="allow", reason=reason)


def _append(url: str, reasons: list[str]) -> list[int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            indexes = append(session, [_event(reason) for reason in reasons])
            session.commit()
        return indexes
    finally:
        engine.dispose()


def _check_log(url: str, size: int) -> list[AuditEntry]:
    """The whole stored log is intact: dense, chained, and its Merkle nodes, frontier
    and root are exactly those of the tree rebuilt from the entries."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            entries = list(session.scalars(select(AuditEntry).order_by(col(AuditEntry.index))))
            assert [entry.index for entry in entries] == list(range(size))
            assert verify_chain(entries, expected_size=size) is None

            leaves = [bytes.fromhex(entry.leaf_hash) for entry in entries]
            frontier, expected_nodes = Frontier(), {}
            for leaf in leaves:
                for level, index, value in frontier.append(leaf):
                    if level >= STORED_FROM_LEVEL:
                        expected_nodes[(level, index)] = value.hex()
            stored_nodes = {
                (node.level, node.index): node.hash for node in session.scalars(select(AuditNode))
            }
            assert stored_nodes == expected_nodes
            # Every complete subtree of level >= 2: n//4 + n//8 + ... of them.
            assert len(stored_nodes) == sum(size >> level for level in range(2, size.bit_length()))

            current = head(session)
            assert current.size == size
            assert current.root == root_of_leaves(leaves) == frontier.root()
            stored_head = session.scalars(select(AuditHead)).one()
            assert stored_head.chain_hash == entries[-1].chain_hash
            assert stored_head.frontier == {
                str(level): value.hex() for level, value in frontier.levels.items()
            }

            for index in sorted({0, size // 2, size - 1}):
                leaf, root_hash, proof = inclusion(session, index, size)
                assert leaf == leaves[index]
                verify_inclusion(leaf, index, size, proof, root_hash)
            session.expunge_all()
        return entries
    finally:
        engine.dispose()


def test_processes_appending_at_once_keep_the_log_dense_and_consistent(
    database_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{process}" for process in range(PROCESSES)]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                database_url,
                str(process),
                str(TRANSACTIONS),
                str(PER_TRANSACTION),
                str(ready[process]),
                str(go),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for process in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in ready):
            failed = [w for w in writers if w.poll() is not None]
            assert not failed, failed[0].communicate()
            assert time.monotonic() < deadline, "the writers did not get ready"
            time.sleep(0.01)
        go.touch()
        outputs = [writer.communicate(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
    assigned = [json.loads(stdout) for stdout, _ in outputs]

    total = PROCESSES * TRANSACTIONS * PER_TRANSACTION
    entries = _check_log(database_url, total)

    # Every event is there exactly once, where append said it was.
    located: dict[tuple[int, int, int], int] = {}
    for entry in entries:
        details = json.loads(bytes(entry.body))["details"]
        key = (details["process"], details["transaction"], details["event"])
        assert key not in located, f"{key} appears twice"
        located[key] = entry.index
        process, transaction, event = key
        assert entry.reason == f"process {process} transaction {transaction} event {event}"
    assert set(located) == {
        (process, transaction, event)
        for process in range(PROCESSES)
        for transaction in range(TRANSACTIONS)
        for event in range(PER_TRANSACTION)
    }
    for process, transactions in enumerate(assigned):
        assert len(transactions) == TRANSACTIONS
        for transaction, indexes in enumerate(transactions):
            stored = [located[(process, transaction, e)] for e in range(PER_TRANSACTION)]
            assert indexes == stored
            # A transaction's events are adjacent and in order.
            assert stored == list(range(stored[0], stored[0] + PER_TRANSACTION))
        # One writer's transactions commit in the order it ran them.
        firsts = [indexes[0] for indexes in transactions]
        assert firsts == sorted(firsts)


def test_a_rolled_back_append_leaves_no_gap(database_url: str) -> None:
    assert _append(database_url, ["first", "second", "third"]) == [0, 1, 2]

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            assert append(session, [_event("undone 1"), _event("undone 2")]) == [3, 4]
            session.rollback()
    finally:
        engine.dispose()

    assert _append(database_url, ["after the rollback"]) == [3]
    entries = _check_log(database_url, 4)
    assert [entry.reason for entry in entries] == ["first", "second", "third", "after the rollback"]


def test_a_writer_waiting_behind_a_rolled_back_append_takes_its_indexes(
    database_url: str,
) -> None:
    assert _append(database_url, ["first"]) == [0]
    waiting: list[list[int]] = []
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            waiting.append(_append(database_url, ["waited", "and wrote"]))
        except BaseException as error:  # reported to the test thread below
            failures.append(error)

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            # This session holds the log's lock from here until it rolls back.
            assert append(session, [_event("undone")]) == [1]
            thread = threading.Thread(target=writer)
            thread.start()
            time.sleep(0.3)  # let the writer queue on the lock (correct either way)
            session.rollback()
        thread.join(timeout=60)
    finally:
        engine.dispose()
    assert not thread.is_alive()
    assert not failures, failures
    assert waiting == [[1, 2]]
    entries = _check_log(database_url, 3)
    assert [entry.reason for entry in entries] == ["first", "waited", "and wrote"]
