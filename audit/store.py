"""The log in the database: appending entries (with their Merkle nodes) in the
caller's transaction, reading proofs, keeping checkpoints.

The caller's transaction holds the log's single writer: on PostgreSQL the head row
is locked (`SELECT … FOR UPDATE`) until commit, on SQLite the exchange opens every
transaction with `BEGIN IMMEDIATE`. So indexes are assigned `size + i` with no gap
and in commit order, and an entry commits or rolls back with the action it records.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col

from audit.encoding import COLUMN_KEYS, GENESIS, canonical_bytes, chain_hash
from audit.errors import AuditWriteError
from audit.merkle import (
    Frontier,
    NodeReader,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_of_leaves,
)

HEAD_ID = 1
# Nodes below this level are not stored: a level-1 node is rehashed from its two
# leaves (one range read), which halves the rows an append writes.
STORED_FROM_LEVEL = 2


# Auditors filter by these and page by index: each (column, index) index serves
# "WHERE column = ? AND index > ? ORDER BY index LIMIT n" without a sort.
FILTERED = ("actor", "organization", "action", "product", "decision", "grant_id")


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (
        *(Index(f"ix_audit_entry_{column}_index", column, "index") for column in FILTERED),
        Index("ix_audit_entry_recorded_at_index", "recorded_at", "index"),
    )

    index: int = Field(sa_column=Column("index", BigInteger, primary_key=True, autoincrement=False))
    recorded_at: datetime
    actor: str | None = None
    organization: str | None = None
    action: str
    product: str | None = None
    purpose: str | None = None
    decision: str
    reason: str
    policy_version: str | None = None
    view: str | None = None
    record_count: int = 0
    grant_id: str | None = None
    request_id: str | None = None
    client_address: str | None = None
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the log's size and last chain hash. A cache the sequencer locks;
    verification recomputes it from the entries."""

    __tablename__ = "audit_head"

    id: int = Field(default=HEAD_ID, primary_key=True)
    size: int = Field(default=0, sa_type=BigInteger)
    chain_hash: str = Field(default=GENESIS.hex(), max_length=64)
    frontier: dict[str, str] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="level → hex hash of the log's complete subtree at that level",
    )
    recorded_at: datetime | None = Field(
        default=None, description="The last entry's time; entries never go back in time."
    )


class AuditNode(SQLModel, table=True):
    """The hash of each complete aligned subtree of level ≥ 1 (level 0 is the
    entry's leaf hash): node (level, i) covers leaves [i·2^level, (i+1)·2^level)."""

    __tablename__ = "audit_node"

    level: int = Field(primary_key=True)
    index: int = Field(sa_column=Column("index", BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(max_length=64)


class AuditSubject(SQLModel, table=True):
    """Which entries returned records about a subject. `subject` is a keyed hash
    (HMAC-SHA256) of product and subject value, so the log holds no plate in the
    clear and nobody without the exchange's key can test a guess against it."""

    __tablename__ = "audit_subject"

    subject: str = Field(primary_key=True, max_length=64)
    entry_index: int = Field(
        sa_column=Column("entry_index", BigInteger, primary_key=True, autoincrement=False)
    )


class AuditCheckpoint(SQLModel, table=True):
    """Every checkpoint signed, kept; each commits to the tree at its size."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(sa_type=BigInteger, index=True)
    root_hash: str = Field(max_length=64)
    note: str
    created_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    """What happened. `records` lists the record sequence numbers touched, as
    inclusive [first, last] runs; `details` carries action-specific facts."""

    action: str
    decision: str
    reason: str
    actor: str | None = None
    organization: str | None = None
    product: str | None = None
    purpose: str | None = None
    policy_version: str | None = None
    view: str | None = None
    record_count: int = 0
    records: list[list[int]] = field(default_factory=list)
    grant_id: str | None = None
    request_id: str | None = None
    client_address: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def body(self, index: int, recorded_at: datetime) -> dict[str, Any]:
        if self.decision not in {"allow", "deny"}:
            raise ValueError(f"decision must be allow or deny, not {self.decision!r}")
        return {
            "index": index,
            "time": recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": self.actor,
            "organization": self.organization,
            "action": self.action,
            "product": self.product,
            "purpose": self.purpose,
            "decision": self.decision,
            "reason": self.reason,
            "policy_version": self.policy_version,
            "view": self.view,
            "record_count": self.record_count,
            "records": self.records,
            "grant": self.grant_id,
            "request_id": self.request_id,
            "client": self.client_address,
            "details": self.details,
        }


def append(session: Session, events: Sequence[AuditEvent]) -> list[int]:
    """Append events in order; returns their indexes. Does not commit.

    Raises AuditWriteError if anything about the write fails, so the caller's
    transaction — and the action in it — fails with it.
    """
    if not events:
        raise AuditWriteError("nothing to append")
    try:
        head = session.execute(
            select(
                col(AuditHead.size),
                col(AuditHead.chain_hash),
                col(AuditHead.frontier),
                col(AuditHead.recorded_at),
            )
            .where(col(AuditHead.id) == HEAD_ID)
            .with_for_update()
        ).one_or_none()
        if head is None:
            raise AuditWriteError("the audit head row is missing; run the migrations")
        size, previous = head.size, bytes.fromhex(head.chain_hash)
        frontier = _frontier(size, head.frontier)
        # Time never goes back along the log (even across machines whose clocks
        # differ), so a time range is an index range: see `index_range`.
        now = max(datetime.now(UTC), head.recorded_at or datetime.min.replace(tzinfo=UTC))
        rows, nodes = [], []
        for offset, event in enumerate(events):
            index = size + offset
            body = event.body(index, now)
            encoded = canonical_bytes(body)
            leaf = leaf_hash(encoded)
            previous = chain_hash(previous, leaf)
            nodes += [
                {"level": level, "index": i, "hash": node.hex()}
                for level, i, node in frontier.append(leaf)
                if level >= STORED_FROM_LEVEL
            ]
            columns = {column: body[key] for column, key in COLUMN_KEYS.items()}
            rows.append(
                {
                    "index": index,
                    "recorded_at": now,
                    **columns,
                    "body": encoded,
                    "leaf_hash": leaf.hex(),
                    "chain_hash": previous.hex(),
                }
            )
        # Core inserts of the tables: one executemany each (the ORM's bulk path would
        # split the rows into one statement per pattern of None values).
        session.execute(insert(_table(AuditEntry)), rows)
        if nodes:
            session.execute(insert(_table(AuditNode)), nodes)
        session.execute(
            update(AuditHead)
            .where(col(AuditHead.id) == HEAD_ID)
            .values(
                size=size + len(rows),
                chain_hash=previous.hex(),
                frontier={str(level): h.hex() for level, h in frontier.levels.items()},
                recorded_at=now,
            )
        )
    except (SQLAlchemyError, ValueError) as error:
        raise AuditWriteError(str(error)) from error
    return [row["index"] for row in rows]


def index_range(
    session: Session, since: datetime | None, until: datetime | None
) -> tuple[int, int]:
    """The indexes [first, end) of the entries recorded in [since, until), found with
    two index lookups; entries' times never decrease along the log."""
    first, end = 0, head(session).size
    if since is not None:
        found = session.scalar(
            select(col(AuditEntry.index))
            .where(col(AuditEntry.recorded_at) >= since)
            .order_by(col(AuditEntry.recorded_at), col(AuditEntry.index))
            .limit(1)
        )
        first = end if found is None else found
    if until is not None:
        found = session.scalar(
            select(col(AuditEntry.index))
            .where(col(AuditEntry.recorded_at) < until)
            .order_by(col(AuditEntry.recorded_at).desc(), col(AuditEntry.index).desc())
            .limit(1)
        )
        end = 0 if found is None else found + 1
    return first, max(first, end)


def index_subjects(session: Session, entry_index: int, subjects: Sequence[str]) -> None:
    """Record that entry `entry_index` returned records about these subjects (keyed hashes)."""
    rows = [{"subject": subject, "entry_index": entry_index} for subject in sorted(set(subjects))]
    if rows:
        try:
            session.execute(insert(AuditSubject), rows)
        except SQLAlchemyError as error:
            raise AuditWriteError(str(error)) from error


def entries_about(session: Session, subjects: Sequence[str], limit: int) -> list[AuditEntry]:
    """The entries indexed under any of the subjects' keys, oldest first."""
    indexes = select(col(AuditSubject.entry_index)).where(col(AuditSubject.subject).in_(subjects))
    return list(
        session.scalars(
            select(AuditEntry)
            .where(col(AuditEntry.index).in_(indexes))
            .order_by(col(AuditEntry.index))
            .limit(limit)
        )
    )


def _table(model: type[SQLModel]) -> Any:
    return model.__table__  # type: ignore[attr-defined]


def _frontier(size: int, stored: dict[str, str]) -> Frontier:
    levels = {int(level): bytes.fromhex(value) for level, value in stored.items()}
    if sorted(levels) != [bit for bit in range(size.bit_length()) if size >> bit & 1]:
        raise AuditWriteError("the audit head's frontier does not match its size")
    return Frontier(size, levels)


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes


def head(session: Session) -> Head:
    """The log's size and Merkle root now (no node reads: the root comes from the frontier)."""
    row = session.execute(
        select(col(AuditHead.size), col(AuditHead.frontier)).where(col(AuditHead.id) == HEAD_ID)
    ).one()
    return Head(row.size, _frontier(row.size, row.frontier).root())


def node_reader(session: Session) -> NodeReader:
    """Reads stored subtree hashes; each call is one indexed lookup. Raises ProofError
    if a node the tree should have is missing."""

    def read(level: int, index: int) -> bytes:
        if level < STORED_FROM_LEVEL:
            width = 1 << level
            leaves = session.scalars(
                select(col(AuditEntry.leaf_hash))
                .where(col(AuditEntry.index).between(index * width, (index + 1) * width - 1))
                .order_by(col(AuditEntry.index))
            ).all()
            if len(leaves) != width:
                raise ProofError(f"node ({level}, {index}) is missing from the store")
            return root_of_leaves([bytes.fromhex(leaf) for leaf in leaves])
        else:
            found = session.scalar(
                select(col(AuditNode.hash)).where(
                    col(AuditNode.level) == level, col(AuditNode.index) == index
                )
            )
        if found is None:
            raise ProofError(f"node ({level}, {index}) is missing from the store")
        return bytes.fromhex(found)

    return read


def _checked_size(session: Session, size: int) -> None:
    current = head(session).size
    if not 0 < size <= current:
        raise ProofError(f"the log has {current} entries; no tree of size {size}")


def inclusion(session: Session, index: int, size: int) -> tuple[bytes, bytes, list[bytes]]:
    """(leaf hash, root at `size`, proof). Raises ProofError for a bad index or size."""
    _checked_size(session, size)
    read = node_reader(session)
    proof = inclusion_proof(index, size, read)
    return read(0, index), root(size, read), proof


def consistency(session: Session, old: int, new: int) -> tuple[bytes, bytes, list[bytes]]:
    """(root at `old`, root at `new`, proof). Raises ProofError for bad sizes."""
    _checked_size(session, new)
    read = node_reader(session)
    return root(old, read), root(new, read), consistency_proof(old, new, read)


def keep_checkpoint(session: Session, size: int, root_hash: bytes, note: str) -> AuditCheckpoint:
    checkpoint = AuditCheckpoint(
        size=size, root_hash=root_hash.hex(), note=note, created_at=datetime.now(UTC)
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1))


def preloaded_reader(session: Session, first: int, last: int, size: int) -> NodeReader:
    """A reader for many proofs of leaves in [first, last] of the tree of `size`:
    it loads, per level, the stored nodes around that range in one query (about
    log n queries in all) and falls back to single reads for the rest."""
    cache: dict[tuple[int, int], bytes] = {}
    for level in (0, *range(STORED_FROM_LEVEL, size.bit_length())):
        width = 1 << level
        low, high = max(first - width, 0) // width, (last + width) // width
        if level == 0:
            rows = session.execute(
                select(col(AuditEntry.index), col(AuditEntry.leaf_hash)).where(
                    col(AuditEntry.index).between(low, high)
                )
            )
        else:
            rows = session.execute(
                select(col(AuditNode.index), col(AuditNode.hash)).where(
                    col(AuditNode.level) == level, col(AuditNode.index).between(low, high)
                )
            )
        cache.update(((level, index), bytes.fromhex(value)) for index, value in rows)
    fallback = node_reader(session)

    def read(level: int, index: int) -> bytes:
        if 0 < level < STORED_FROM_LEVEL:
            width = 1 << level
            leaves = [cache.get((0, index * width + i)) for i in range(width)]
            if all(leaf is not None for leaf in leaves):
                return root_of_leaves([leaf for leaf in leaves if leaf is not None])
        found = cache.get((level, index))
        return found if found is not None else fallback(level, index)

    return read
