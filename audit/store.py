"""Appending entries to the log, in the caller's transaction.

The caller's transaction holds the log's single writer: on PostgreSQL the head row
is locked (`SELECT … FOR UPDATE`) until commit, on SQLite the exchange opens every
transaction with `BEGIN IMMEDIATE`. So indexes are assigned `size + i` with no gap
and in commit order, and an entry commits or rolls back with the action it records.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, LargeBinary, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col

from audit.encoding import COLUMN_KEYS, GENESIS, canonical_bytes, chain_hash
from audit.errors import AuditWriteError
from audit.merkle import leaf_hash

HEAD_ID = 1


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    index: int = Field(sa_column=Column("index", BigInteger, primary_key=True, autoincrement=False))
    recorded_at: datetime = Field(index=True)
    actor: str | None = Field(default=None, index=True)
    organization: str | None = Field(default=None, index=True)
    action: str = Field(index=True)
    product: str | None = Field(default=None, index=True)
    purpose: str | None = None
    decision: str = Field(index=True)
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
            select(col(AuditHead.size), col(AuditHead.chain_hash))
            .where(col(AuditHead.id) == HEAD_ID)
            .with_for_update()
        ).one_or_none()
        if head is None:
            raise AuditWriteError("the audit head row is missing; run the migrations")
        size, previous = head.size, bytes.fromhex(head.chain_hash)
        now = datetime.now(UTC)
        rows = []
        for offset, event in enumerate(events):
            index = size + offset
            body = event.body(index, now)
            encoded = canonical_bytes(body)
            leaf = leaf_hash(encoded)
            previous = chain_hash(previous, leaf)
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
        session.execute(insert(AuditEntry), rows)
        session.execute(
            update(AuditHead)
            .where(col(AuditHead.id) == HEAD_ID)
            .values(size=size + len(rows), chain_hash=previous.hex())
        )
    except (SQLAlchemyError, ValueError) as error:
        raise AuditWriteError(str(error)) from error
    return [row["index"] for row in rows]
