"""Data products and their versions: tables and the Create / Update / Public schemas.

A product's definition (schema, tier, purposes, retention…) is stored whole in
each `ProductVersion`; `Product` keeps the current version's searchable columns.
"""

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import model_validator
from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from exchange.identity.models import SLUG
from exchange.timeutil import utcnow

NAME = r"^[a-z_][a-z0-9_]{0,62}$"
PURPOSE = r"^[a-z][a-z0-9_]{1,62}$"
TAG = r"^[a-z0-9][a-z0-9_-]{0,40}$"
RESERVED_FIELDS = frozenset({"id", "seq", "published_at"})


class Tier(StrEnum):
    government_only = "government_only"
    open = "open"
    regulated = "regulated"


class FieldType(StrEnum):
    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    timestamp = "timestamp"
    geo_point = "geo_point"
    image_ref = "image_ref"


class Sensitivity(StrEnum):
    none = "none"
    personal = "personal"
    sensitive = "sensitive"
    location = "location"
    image = "image"


# Defaults protect: a point is always location data, an image always an image.
_FORCED_SENSITIVITY = {
    FieldType.geo_point: Sensitivity.location,
    FieldType.image_ref: Sensitivity.image,
}


class FieldSpec(SQLModel):
    name: str = Field(max_length=63, schema_extra={"pattern": NAME})
    type: FieldType
    sensitivity: Sensitivity = Sensitivity.none
    required: bool = True
    description: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.name in RESERVED_FIELDS:
            raise ValueError(f"field name {self.name!r} is reserved")
        forced = _FORCED_SENSITIVITY.get(self.type)
        if forced and self.sensitivity not in (forced, Sensitivity.sensitive):
            raise ValueError(f"a {self.type} field has sensitivity {forced} (or sensitive)")
        return self


class Definition(SQLModel):
    """Everything a version fixes about a product."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    tier: Tier
    purposes: list[str] = Field(min_length=1, max_length=20)
    retention_days: int = Field(ge=1, le=36_500)
    fields: list[FieldSpec] = Field(min_length=1, max_length=200)
    subject_field: str | None = Field(
        default=None,
        description="A string field naming the person or vehicle a record is about (a plate); "
        "auditors can then list every read that returned records about one subject.",
    )
    time_field: str | None = Field(
        default=None, description="The timestamp field time-range reads use; default: the first."
    )
    pseudonym_epoch_days: int = Field(
        default=30,
        ge=1,
        le=366,
        description="A consumer's pseudonyms stay the same this long, then all change, "
        "so nobody can follow one plate for longer.",
    )
    grid_resolution: int = Field(
        default=8,
        ge=4,
        le=10,
        description="H3 resolution of generalised locations (7 ≈ 5 km², 8 ≈ 0.7 km², "
        "9 ≈ 0.1 km² cells).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        for tag in self.tags:
            if not re.match(TAG, tag):
                raise ValueError(f"tag {tag!r} must match {TAG}")
        for purpose in self.purposes:
            if not re.match(PURPOSE, purpose):
                raise ValueError(f"purpose {purpose!r} must match {PURPOSE}")
        names = [field.name for field in self.fields]
        if duplicated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"duplicate field names: {', '.join(duplicated)}")
        timestamps = [f.name for f in self.fields if f.type == FieldType.timestamp]
        if self.time_field is None and timestamps:
            self.time_field = timestamps[0]
        elif self.time_field is not None and self.time_field not in timestamps:
            raise ValueError(f"time_field {self.time_field!r} is not a timestamp field")
        if self.subject_field is not None and not any(
            f.name == self.subject_field and f.type == FieldType.string for f in self.fields
        ):
            raise ValueError(f"subject_field {self.subject_field!r} is not a string field")
        self.tags = sorted(set(self.tags))
        self.purposes = sorted(set(self.purposes))
        return self


class ProductCreate(Definition):
    slug: str = Field(
        max_length=64,
        schema_extra={"pattern": SLUG},
        description="The product's name in paths, e.g. `violation-captures`.",
    )


class ProductUpdate(SQLModel):
    """Any subset of the definition; the result is validated whole as a new version."""

    title: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    tier: Tier | None = None
    purposes: list[str] | None = None
    retention_days: int | None = None
    fields: list[FieldSpec] | None = None
    time_field: str | None = None
    subject_field: str | None = None
    pseudonym_epoch_days: int | None = None
    grid_resolution: int | None = None


class Product(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    owner_id: int = Field(foreign_key="organization.id", index=True)
    current_version: int = 1
    tier: str = Field(index=True, max_length=20)
    title: str = Field(max_length=200)
    description: str = ""
    tags_index: str = Field(default="", description="',a,b,' for tag search")
    record_seq: int = Field(
        default=0, sa_type=BigInteger, description="Last record sequence number assigned."
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProductVersion(SQLModel, table=True):
    __tablename__ = "product_version"
    __table_args__ = (UniqueConstraint("product_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id")
    version: int
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ProductPublic(Definition):
    slug: str
    version: int
    publisher: str
    record_count: int
    created_at: datetime
    updated_at: datetime
