"""Access requests for regulated products, and the grants approval creates."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel

from exchange.timeutil import utcnow


def _time(nullable: bool = False) -> Any:
    """A zoned time column; the non-nullable ones are always set by the service."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class AccessRequest(SQLModel, table=True):
    __tablename__ = "access_request"
    id: int | None = Field(default=None, primary_key=True)
    organization: str = Field(index=True, max_length=64)
    requester: str = Field(max_length=64)
    product: str = Field(max_length=64)
    partner: str | None = Field(
        default=None, max_length=64, description="The second product, for a cross-check."
    )
    purpose: str = Field(max_length=64)
    justification: str = Field(max_length=4000)
    requested_days: int
    scope: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", index=True, max_length=16)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    due_at: datetime = _time()
    decided_at: datetime | None = _time(nullable=True)
    decided_by: str | None = Field(default=None, max_length=64)
    decision_reason: str | None = Field(default=None, max_length=2000)
    grant_id: int | None = None


class Grant(SQLModel, table=True):
    """Regulated access for one organisation, product and purpose, until it expires,
    is revoked or has used its record quota — whichever comes first. A grant with a
    `partner` allows only cross-checks of its two products, never a read of either."""

    __tablename__ = "access_grant"
    __table_args__ = (Index("ix_access_grant_holder", "organization", "product"),)
    id: int | None = Field(default=None, primary_key=True)
    organization: str = Field(max_length=64)
    product: str = Field(max_length=64)
    partner: str | None = Field(default=None, max_length=64)
    purpose: str = Field(max_length=64)
    scope: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = _time()
    quota: int | None = None
    used: int = 0
    request_id: int | None = None
    approved_by: str = Field(max_length=64)
    revoked_at: datetime | None = _time(nullable=True)
    revoked_by: str | None = Field(default=None, max_length=64)
    revoke_reason: str | None = Field(default=None, max_length=2000)
