"""Data products and their versions: tables and the Create / Update / Public schemas.

A product's definition (schema, tier, purposes, retention…) is stored whole in
each `ProductVersion`; `Product` keeps the current version's searchable columns.
"""

import re
from datetime import datetime
from enum import StrEnum
from itertools import pairwise
from typing import Any, Literal, Self

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    FiniteFloat,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from exchange.identity.models import SLUG
from exchange.linkage.keys import KINDS
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


TimeBucket = Literal["minute", "hour", "day"]
MAX_BANDS = 50
MAX_MAGNITUDE = 1e15  # edges and steps; larger ones overflow the arithmetic of a read
MIN_STEP = 1e-9
_Finite = int | FiniteFloat


class Generalization(BaseModel):
    """How a field is shown when the policy gives it `generalized`: exactly one of

    - `time_bucket` (timestamps): the UTC minute, hour or day holding the time;
    - `round_to` (numbers, integers): the nearest multiple, halves rounded up;
    - `bands` (numbers, integers): the band between two ascending edges that holds
      the value, open below the first edge and above the last;
    - `resolution` (geo points): the H3 resolution, instead of the product's
      `grid_resolution`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_bucket: TimeBucket | None = None
    round_to: _Finite | None = pydantic.Field(default=None, gt=0)
    bands: tuple[_Finite, ...] | None = pydantic.Field(default=None, max_length=MAX_BANDS)
    resolution: int | None = pydantic.Field(default=None, ge=4, le=10)

    @field_validator("round_to", "bands", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, bool) for item in values):
            raise ValueError("expected numbers, not true or false")
        return value

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of time_bucket, round_to, bands, resolution")
        numbers = [*(self.bands or ()), *([self.round_to] if self.round_to is not None else [])]
        if any(abs(n) > MAX_MAGNITUDE for n in numbers):
            raise ValueError(f"edges and steps are at most {MAX_MAGNITUDE:.0e} in size")
        if self.round_to is not None and self.round_to < MIN_STEP:
            raise ValueError(f"round_to is at least {MIN_STEP:g}")
        if self.bands is not None:
            if not self.bands:
                raise ValueError("bands needs at least one edge")
            if any(low >= high for low, high in pairwise(self.bands)):
                raise ValueError("band edges must be strictly ascending")
        return self

    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`{"bands": [0, 30, 60]}`, not four keys of which three are null."""
        return {name: value for name, value in handler(self).items() if value is not None}

    @property
    def kind(self) -> str:
        return next(name for name, value in self if value is not None)


_GENERALIZES = {
    "time_bucket": (FieldType.timestamp,),
    "round_to": (FieldType.number, FieldType.integer),
    "bands": (FieldType.number, FieldType.integer),
    "resolution": (FieldType.geo_point,),
}


class FieldSpec(SQLModel):
    name: str = Field(max_length=63, schema_extra={"pattern": NAME})
    type: FieldType
    sensitivity: Sensitivity = Sensitivity.none
    required: bool = True
    description: str = Field(default="", max_length=500)
    generalization: Generalization | None = Field(
        default=None,
        description='How the field is shown generalized: {"time_bucket": "hour"} (timestamp), '
        '{"round_to": 5} or {"bands": [0, 30, 60]} (number, integer), {"resolution": 7} '
        "(geo_point). Used only when the policy gives the field's sensitivity `generalized`.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.name in RESERVED_FIELDS:
            raise ValueError(f"field name {self.name!r} is reserved")
        forced = _FORCED_SENSITIVITY.get(self.type)
        if forced and self.sensitivity not in (forced, Sensitivity.sensitive):
            raise ValueError(f"a {self.type} field has sensitivity {forced} (or sensitive)")
        if self.generalization is not None:
            kind = self.generalization.kind
            fits = _GENERALIZES[kind]
            if self.type not in fits:
                raise ValueError(
                    f"field {self.name!r}: {kind} generalizes {' or '.join(fits)} fields, "
                    f"not a {self.type} field"
                )
            step = self.generalization.round_to
            if self.type == FieldType.integer and step is not None and step != int(step):
                raise ValueError(
                    f"field {self.name!r}: an integer field rounds to a whole number, not {step}"
                )
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
    subject_kind: str | None = Field(
        default=None,
        description="What the subject field holds: "
        + ", ".join(KINDS)
        + ". Records of products whose subject fields are of one kind can be linked "
        "(POST /v1/linkage) and cross-checked (POST /v1/cross-checks) on it.",
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
        if self.subject_kind is not None:
            if self.subject_kind not in KINDS:
                raise ValueError(f"subject_kind must be one of {', '.join(KINDS)}")
            if self.subject_field is None:
                raise ValueError("subject_kind needs a subject_field")
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
    subject_kind: str | None = None
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
