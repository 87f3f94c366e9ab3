"""`GET /v1/usage`: a publisher sees who used its products, for which purposes, how much."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import func, select

from audit.store import AuditEntry
from exchange.auditing.trail import record_allowed
from exchange.auth import SystemAccess, system_access
from exchange.catalog.models import Product
from exchange.db import SessionDep
from exchange.identity.service import get_organization
from exchange.timeutil import query_time

router = APIRouter(tags=["audit"])

ReadUsage = Annotated[SystemAccess, system_access("usage", "read")]


class UsageRow(BaseModel):
    product: str
    organization: str | None
    purpose: str | None
    decision: str
    requests: int
    records: int


class Usage(BaseModel):
    usage: list[UsageRow]


@router.get("/v1/usage", response_model=Usage)
def usage(
    request: Request,
    session: SessionDep,
    access: ReadUsage,
    product: str | None = None,
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
) -> Usage:
    """Reads of the caller's own products, allowed and denied, grouped by product,
    consumer organisation, purpose and decision: requests and records returned."""
    owner = get_organization(session, access.caller.organization)
    owned = select(Product.slug).where(Product.owner_id == owner.id)
    query = (
        select(
            AuditEntry.product,
            AuditEntry.organization,
            AuditEntry.purpose,
            AuditEntry.decision,
            func.count(),
            func.coalesce(func.sum(AuditEntry.record_count), 0),
        )
        .where(AuditEntry.action == "read", AuditEntry.product.in_(owned))
        .group_by(
            AuditEntry.product, AuditEntry.organization, AuditEntry.purpose, AuditEntry.decision
        )
        .order_by(
            AuditEntry.product, AuditEntry.organization, AuditEntry.purpose, AuditEntry.decision
        )
    )
    if product:
        query = query.where(AuditEntry.product == product)
    if (start := query_time(since, "from")) is not None:
        query = query.where(AuditEntry.recorded_at >= start)
    if (end := query_time(until, "to")) is not None:
        query = query.where(AuditEntry.recorded_at < end)
    rows = [
        UsageRow(product=p, organization=o, purpose=u, decision=d, requests=n, records=r)
        for p, o, u, d, n, r in session.execute(query)
    ]
    record_allowed(
        session,
        request,
        access,
        action="usage.read",
        record_count=len(rows),
        details={"product": product, "from": since, "to": until},
    )
    return Usage(usage=rows)
