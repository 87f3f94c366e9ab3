"""Each product's data key, stored only wrapped under a master key."""

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from exchange.timeutil import utcnow


class DataKeyRow(SQLModel, table=True):
    """`wrapped` and `master_key_id` are cleared when the key is destroyed
    (crypto-shredding); the row stays as the record that it was."""

    __tablename__ = "data_key"

    product_id: int = Field(foreign_key="product.id", primary_key=True)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    master_key_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    rewrapped_at: datetime | None = None
    destroyed_at: datetime | None = None
    destroyed_reason: str | None = Field(default=None, max_length=500)


class KeyHead(SQLModel, table=True):
    """One row: the master key new data keys are wrapped under. Making a data key
    and rotating both lock it, so no key is ever wrapped under a retiring master."""

    __tablename__ = "key_head"

    id: int = Field(default=1, primary_key=True)
    current_master_id: str | None = Field(default=None, max_length=32)
