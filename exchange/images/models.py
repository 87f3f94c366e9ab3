"""The one image a record may have, stored sealed with its product's data key."""

from datetime import datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from exchange.timeutil import utcnow


class RecordImage(SQLModel, table=True):
    """Only the encrypted bytes and what serving them needs; no hash of the
    original is kept in the clear (it is computed, for the receipt, from the
    opened bytes)."""

    __tablename__ = "record_image"
    __table_args__ = (UniqueConstraint("product_id", "record_id"),)

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id")
    record_id: str = Field(max_length=200)
    media_type: str = Field(max_length=32)
    width: int
    height: int
    size: int = Field(description="Bytes of the original image.")
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_at: datetime = Field(default_factory=utcnow)
    uploaded_by: str = Field(max_length=64)
