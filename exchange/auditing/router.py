"""The auditor's view of the log."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from audit.store import AuditEntry
from exchange.auditing.trail import record
from exchange.auth import SystemAccess, system_access
from exchange.db import SessionDep
from exchange.pagination import decode_cursor, encode_cursor
from exchange.timeutil import query_time

router = APIRouter(prefix="/v1/audit", tags=["audit"])

ReadAudit = Annotated[SystemAccess, system_access("audit", "read")]


class EntryPublic(BaseModel):
    index: int
    entry: dict[str, Any]
    leaf_hash: str
    chain_hash: str


class EntryList(BaseModel):
    entries: list[EntryPublic]
    next_cursor: str | None


@router.get("/entries", response_model=EntryList)
def entries(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    actor: str | None = None,
    organization: str | None = None,
    product: str | None = None,
    action: str | None = None,
    decision: Annotated[str | None, Query(pattern="^(allow|deny)$")] = None,
    purpose: str | None = None,
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryList:
    """Entries matching every given filter, oldest first, each with the exact
    hashed body and its hashes. The query itself is audited."""
    query = select(AuditEntry).order_by(AuditEntry.index).limit(limit + 1)
    equal = {
        AuditEntry.actor: actor,
        AuditEntry.organization: organization,
        AuditEntry.product: product,
        AuditEntry.action: action,
        AuditEntry.decision: decision,
        AuditEntry.purpose: purpose,
    }
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(AuditEntry.index > after)
    if (start := query_time(since, "from")) is not None:
        query = query.where(AuditEntry.recorded_at >= start)
    if (end := query_time(until, "to")) is not None:
        query = query.where(AuditEntry.recorded_at < end)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    filters = {k.key: v for k, v in equal.items() if v is not None} | {"from": since, "to": until}
    record(
        session,
        request,
        access.caller.actor,
        action="audit.read",
        allowed=True,
        reason=access.decision.reason,
        decision=access.decision,
        record_count=len(rows),
        details={"filters": {k: v for k, v in filters.items() if v is not None}},
    )
    return EntryList(
        entries=[
            EntryPublic(
                index=r.index,
                entry=json.loads(r.body),
                leaf_hash=r.leaf_hash,
                chain_hash=r.chain_hash,
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].index) if more else None,
    )
