"""Subscriptions, their outbox of events, and the delivery attempts made for them.

An event is one record for one subscription, numbered densely per subscription
(`seq`, the pull cursor). It is written in the publishing transaction (the
outbox), so a record and its events commit together, and it goes when its
record goes (retention, erasure): a foreign key cascades.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from exchange.records.models import ROW_ID
from exchange.timeutil import utcnow


def _time(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Subscription(SQLModel, table=True):
    """A principal's standing read of a product for a purpose, filtered, delivered
    as webhooks (`url`, signed with a secret kept only sealed) or pulled."""

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=32, unique=True, description="Random; names webhook messages.")
    organization: str = Field(index=True, max_length=64)
    principal: str = Field(max_length=64, description="The client id deliveries are decided as.")
    product_id: int = Field(foreign_key="product.id")
    product: str = Field(max_length=64)
    purpose: str = Field(max_length=64)
    filter: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fields: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    delivery: str = Field(max_length=8)
    url: str | None = Field(default=None, max_length=2000)
    secret: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    previous_secret: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    previous_secret_until: datetime | None = _time()
    batch_size: int = 100
    status: str = Field(default="active", max_length=16)
    status_reason: str | None = Field(default=None, max_length=2000)
    event_seq: int = Field(default=0, sa_type=BigInteger, description="The last event's number.")
    batch_seq: int = Field(
        default=0, sa_type=BigInteger, description="The last batch's number (its webhook id)."
    )
    attempts: int = Field(default=0, description="Failed attempts at the batch at the head.")
    next_attempt_at: datetime | None = _time()
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _time()
    last_success_at: datetime | None = _time()
    last_error: str | None = Field(default=None, max_length=2000)
    last_error_at: datetime | None = _time()
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class FeedEvent(SQLModel, table=True):
    """One record queued for one subscription: pending, delivered, or dead (out of
    retries, until redelivered). `batch` fixes which events travel together, so a
    retry is the same message under the same webhook id."""

    __tablename__ = "feed_event"
    __table_args__ = (
        UniqueConstraint("subscription_id", "seq"),
        Index("ix_feed_event_subscription_id_state_seq", "subscription_id", "state", "seq"),
        Index("ix_feed_event_product_id_record_seq", "product_id", "record_seq"),
        ForeignKeyConstraint(
            ["product_id", "record_seq"], ["record.product_id", "record.seq"], ondelete="CASCADE"
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    subscription_id: int = Field(
        sa_column=Column(Integer, ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False)
    )
    seq: int = Field(sa_type=BigInteger)
    product_id: int
    record_seq: int = Field(sa_type=BigInteger)
    state: str = Field(default="pending", max_length=16)
    batch: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    delivered_at: datetime | None = _time()


class DeliveryAttempt(SQLModel, table=True):
    """One webhook request: which events, how it went."""

    __tablename__ = "delivery_attempt"
    __table_args__ = (Index("ix_delivery_attempt_subscription_id_id", "subscription_id", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    subscription_id: int = Field(
        sa_column=Column(Integer, ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False)
    )
    webhook_id: str = Field(max_length=80)
    first_event: int = Field(sa_type=BigInteger)
    last_event: int = Field(sa_type=BigInteger)
    count: int
    attempt: int
    outcome: str = Field(max_length=16, description="delivered, retry, dead, or denied.")
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=2000)
    duration_ms: int | None = None
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
