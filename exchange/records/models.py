"""Published records: one row per (product, publisher's id); protected fields sealed."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from exchange.timeutil import utcnow

# SQLite only auto-assigns an INTEGER PRIMARY KEY (the rowid), which is 64-bit anyway.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class Record(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("product_id", "record_id"),
        UniqueConstraint("product_id", "seq"),
        Index("ix_record_product_id_event_time", "product_id", "event_time"),
        Index("ix_record_product_id_subject_key", "product_id", "subject_key"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    product_id: int = Field(foreign_key="product.id")
    seq: int = Field(sa_type=BigInteger, description="Per-product, dense, from 1.")
    record_id: str = Field(max_length=200, description="The publisher's own id.")
    product_version: int
    content: dict[str, Any] = Field(
        sa_column=Column(JSON, nullable=False), description="The fields stored in the clear."
    )
    sealed: bytes | None = Field(
        default=None,
        sa_column=Column(LargeBinary, nullable=True),
        description="The protected fields, encrypted with the product's data key.",
    )
    blind: dict[str, str] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="Keyed digests of the sealed fields that filters can match.",
    )
    content_hash: str = Field(max_length=64, description="Keyed digest of the whole record.")
    subject_key: str | None = Field(
        default=None,
        max_length=32,
        description="Keyed digest of the normalised subject key, if the product declares "
        "a subject kind and the record has a subject.",
    )
    event_time: datetime | None = None
    published_at: datetime = Field(default_factory=utcnow)
