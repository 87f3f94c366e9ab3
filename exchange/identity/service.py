"""Creating and finding organisations and principals. Services only flush."""

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.errors import Conflict, NotFound
from exchange.identity import secrets
from exchange.identity.models import (
    SLUG,
    Organization,
    OrganizationCreate,
    Principal,
    PrincipalCreate,
    PrincipalCreated,
    PrincipalPublic,
)


def create_organization(session: Session, data: OrganizationCreate) -> Organization:
    """Raises Conflict if the slug is taken."""
    if session.scalar(select(Organization.id).where(Organization.slug == data.slug)):
        raise Conflict(f"organization {data.slug!r} already exists")
    organization = Organization(slug=data.slug, name=data.name, kind=data.kind.value)
    session.add(organization)
    session.flush()
    return organization


def get_organization(session: Session, slug: str) -> Organization:
    """Raises NotFound (also for text that cannot be a slug)."""
    if not re.fullmatch(SLUG, slug):
        raise NotFound(f"no organization {slug!r}")
    organization = session.scalar(select(Organization).where(Organization.slug == slug))
    if organization is None:
        raise NotFound(f"no organization {slug!r}")
    return organization


def list_organizations(session: Session, *, after: int | None, limit: int) -> list[Organization]:
    query = select(Organization).order_by(Organization.id).limit(limit)
    if after is not None:
        query = query.where(Organization.id > after)
    return list(session.scalars(query))


def public(principal: Principal, organization: Organization) -> PrincipalPublic:
    return PrincipalPublic(
        client_id=principal.client_id,
        name=principal.name,
        organization=organization.slug,
        roles=principal.roles,
        active=principal.active,
        created_at=principal.created_at,
    )


def create_principal(session: Session, org_slug: str, data: PrincipalCreate) -> PrincipalCreated:
    """A new principal and its secret, which is returned here and never again."""
    organization = get_organization(session, org_slug)
    secret = secrets.new_client_secret()
    principal = Principal(
        client_id=secrets.new_client_id(),
        organization_id=organization.id,
        name=data.name,
        roles=sorted({role.value for role in data.roles}),
        secret_hash=secrets.hash_secret(secret),
    )
    session.add(principal)
    session.flush()
    return PrincipalCreated(**public(principal, organization).model_dump(), client_secret=secret)


def list_principals(
    session: Session, org_slug: str, *, after: int | None, limit: int
) -> list[tuple[int, PrincipalPublic]]:
    organization = get_organization(session, org_slug)
    query = (
        select(Principal)
        .where(Principal.organization_id == organization.id)
        .order_by(Principal.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Principal.id > after)
    return [(p.id or 0, public(p, organization)) for p in session.scalars(query)]


def find_active(session: Session, client_id: str) -> tuple[Principal, Organization] | None:
    if not client_id.isprintable():  # PostgreSQL refuses NUL in text; no id has one
        return None
    row = session.execute(
        select(Principal, Organization)
        .join(Organization, Organization.id == Principal.organization_id)
        .where(Principal.client_id == client_id, Principal.active)
    ).one_or_none()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class Authenticated:
    client_id: str
    organization: str


def authenticate(session: Session, client_id: str, client_secret: str) -> Authenticated | None:
    """Who the client is if the secret is right; None otherwise, taking as long either way.

    The lookup's transaction ends before the deliberately slow hash: on SQLite every
    transaction holds the single write lock, which must never wait on scrypt.
    """
    found = find_active(session, client_id)
    stored = found[0].secret_hash if found else secrets.DUMMY_HASH
    who = Authenticated(found[0].client_id, found[1].slug) if found else None
    session.rollback()
    if secrets.verify_secret(client_secret, stored) and who:
        return who
    return None
