"""Organisations and principals: tables and their Create / Public schemas."""

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from exchange.identity.kinds import OrgKind, Role
from exchange.timeutil import utcnow

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class Organization(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class OrganizationCreate(SQLModel):
    slug: str = Field(
        max_length=64,
        schema_extra={"pattern": SLUG},
        description="Short stable name, e.g. `gz-traffic-police`.",
    )
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind


class OrganizationPublic(SQLModel):
    slug: str
    name: str
    kind: OrgKind
    created_at: datetime


class Principal(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(unique=True, max_length=64)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    name: str = Field(max_length=200)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret_hash: str = Field(max_length=256)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class PrincipalCreate(SQLModel):
    name: str = Field(min_length=1, max_length=200, description="A person or a service.")
    roles: list[Role] = Field(min_length=1, max_length=5)


class PrincipalPublic(SQLModel):
    client_id: str
    name: str
    organization: str
    roles: list[Role]
    active: bool
    created_at: datetime


class PrincipalCreated(PrincipalPublic):
    client_secret: str = Field(description="Shown once; the exchange keeps only a slow hash.")
