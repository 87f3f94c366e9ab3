"""`exchange demo`: the organisations, principals, products and records of the day.

Idempotent: organisations and products that exist are kept, a principal is made
only for a role whose credentials are not on file yet, and a product that already
has records is not published to again. Credentials go to
`$EXCHANGE_DATA_DIR/demo/credentials.json` (mode 0600) — demo secrets on the
demo machine, never anything else's.
"""

import json
import os
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from connectors.fleet import pedestrian_near_misses, scene, violation_captures
from exchange.auditing.trail import Origin, record
from exchange.auth import Caller
from exchange.catalog import service as catalog
from exchange.catalog.access import ProductAccess
from exchange.catalog.models import ProductCreate
from exchange.demo.data import hotline_tickets
from exchange.demo.parking import illegal_parking_reports
from exchange.demo.products import (
    BUSINESS_REGISTRATIONS,
    HOTLINE_TICKETS,
    ILLEGAL_PARKING_REPORTS,
    PEDESTRIAN_NEAR_MISSES,
    RESIDENTIAL_ADDRESSES,
    VIOLATION_CAPTURES,
)
from exchange.demo.registries import DEMO_HOMES, business_registrations, residential_addresses
from exchange.errors import NotFound
from exchange.identity import service as identity
from exchange.identity.models import OrganizationCreate, OrgKind, Principal, PrincipalCreate, Role
from exchange.images import service as images
from exchange.keyring.service import Keyring
from exchange.records import publishing as records
from policies import PolicyEngine


@dataclass(frozen=True)
class Member:
    key: str
    org: str
    org_name: str
    kind: OrgKind
    name: str
    roles: tuple[Role, ...]


MEMBERS = (
    Member(
        "fleet",
        "pearl-robotaxi",
        "Pearl River Robotaxi",
        OrgKind.enterprise,
        "fleet uplink",
        (Role.publisher,),
    ),
    Member(
        "hotline",
        "gz-12345",
        "Guangzhou 12345 Hotline Centre",
        OrgKind.government,
        "ticket export",
        (Role.publisher,),
    ),
    Member(
        "police",
        "gz-traffic-police",
        "Guangzhou Traffic Police",
        OrgKind.government,
        "violations desk",
        (Role.subscriber,),
    ),
    Member(
        "mapco",
        "lingnan-maps",
        "Lingnan Maps",
        OrgKind.enterprise,
        "road safety layer",
        (Role.subscriber,),
    ),
    Member(
        "lab",
        "scut-mobility-lab",
        "University Mobility Lab",
        OrgKind.research,
        "near-miss study",
        (Role.subscriber,),
    ),
    Member(
        "market",
        "gz-market-regulation",
        "Guangzhou Market Regulation Administration",
        OrgKind.government,
        "business registry",
        (Role.publisher, Role.subscriber),
    ),
    Member(
        "housing",
        "gz-housing-bureau",
        "Guangzhou Housing and Urban-Rural Development Bureau",
        OrgKind.government,
        "housing registry",
        (Role.publisher,),
    ),
    Member(
        "steward",
        "gz-data-bureau",
        "Guangzhou Data Bureau",
        OrgKind.government,
        "data steward",
        (Role.steward,),
    ),
    Member(
        "auditor",
        "gz-audit-office",
        "Guangzhou Audit Office",
        OrgKind.government,
        "auditor",
        (Role.auditor,),
    ),
    Member(
        "admin",
        "exchange-operator",
        "Exchange Operator",
        OrgKind.government,
        "operator",
        (Role.admin,),
    ),
)

PRODUCTS: tuple[tuple[str, ProductCreate, Any, int], ...] = (
    ("fleet", VIOLATION_CAPTURES, violation_captures, 3000),
    ("fleet", PEDESTRIAN_NEAR_MISSES, pedestrian_near_misses, 300),
    ("hotline", HOTLINE_TICKETS, hotline_tickets, 500),
    ("hotline", ILLEGAL_PARKING_REPORTS, illegal_parking_reports, 500),
    ("market", BUSINESS_REGISTRATIONS, business_registrations, 400),
    ("housing", RESIDENTIAL_ADDRESSES, residential_addresses, DEMO_HOMES),
)

CLI_ORIGIN = Origin(request_id=None, client_address="cli:demo")
_CHUNK = 500


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "demo" / "credentials.json"


def _load(path: Path) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text()) if path.exists() else {}


def profiles_path(data_dir: Path) -> Path:
    return data_dir / "demo" / "profiles.toml"


def _save(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds secrets), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    temporary.replace(path)


def _profiles(url: str, credentials: dict[str, dict[str, str]]) -> str:
    """The parties as connector profiles (docs/connectors.md): `--profile police`."""
    sections = [
        f"[{key}]\nurl = {json.dumps(url)}\nclient_id = {json.dumps(known['client_id'])}\n"
        f"client_secret = {json.dumps(known['client_secret'])}\n"
        for key, known in credentials.items()
    ]
    return "\n".join(sections)


def _ensure_member(
    session: Session, member: Member, known: dict[str, str] | None
) -> dict[str, str] | None:
    """Credentials for a new principal, or None if the known ones still work."""
    try:
        organization = identity.get_organization(session, member.org)
    except NotFound:
        organization = identity.create_organization(
            session, OrganizationCreate(slug=member.org, name=member.org_name, kind=member.kind)
        )
        record(
            session,
            CLI_ORIGIN,
            None,
            action="organization.create",
            allowed=True,
            reason="demo set-up",
            details={"organization": member.org, "kind": member.kind.value},
        )
    if known and session.scalar(
        select(Principal.id).where(Principal.client_id == known["client_id"])
    ):
        return None
    created = identity.create_principal(
        session, organization.slug, PrincipalCreate(name=member.name, roles=list(member.roles))
    )
    record(
        session,
        CLI_ORIGIN,
        None,
        action="principal.create",
        allowed=True,
        reason="demo set-up",
        details={"organization": member.org, "client_id": created.client_id},
    )
    return {
        "client_id": created.client_id,
        "client_secret": created.client_secret,
        "organization": organization.slug,
    }


def _caller(session: Session, client_id: str) -> Caller:
    found = identity.find_active(session, client_id)
    assert found is not None
    principal, organization = found
    return Caller(
        principal.client_id,
        principal.name,
        organization.slug,
        organization.kind,
        frozenset(principal.roles),
    )


def _ensure_product(
    session: Session,
    policy: PolicyEngine,
    caller: Caller,
    definition: ProductCreate,
    generate: Any,
    count: int,
    now: datetime,
    keyring: Keyring,
) -> int:
    """Register the product if absent and publish its records if it has none; the
    number of records published."""
    try:
        described = catalog.describe(session, definition.slug)
    except NotFound:
        owner = identity.get_organization(session, caller.organization)
        described = catalog.register(session, owner, definition, caller.client_id)
        record(
            session,
            CLI_ORIGIN,
            caller.actor,
            action="product.register",
            allowed=True,
            reason="demo set-up",
            product=definition.slug,
            details={"version": 1},
        )
    if described.product.record_seq > 0:
        return 0
    decision = policy.decide(caller.subject, described.resource, "publish")
    if not decision.allowed:
        raise RuntimeError(f"the policy refuses the demo's publish: {decision.reason}")
    access = ProductAccess(caller, described, "publish", "", decision)
    accepted = 0
    items = generate(count, now=now)
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        photos = _photographed(chunk)
        result = records.publish(session, CLI_ORIGIN, access, chunk, atomic=True, keyring=keyring)
        if photos:
            images.upload(session, CLI_ORIGIN, access, keyring, photos)
        accepted += result.accepted
    return accepted


def _photographed(items: list[dict[str, Any]]) -> dict[str, bytes]:
    """Draw each record's photo, put its plate and face boxes in the record's photo
    field, and return the photos by record id."""
    photos = {}
    for number, item in enumerate(items):
        if "photo" not in item:
            continue
        seed = zlib.crc32(item["id"].encode()) + number
        photo, boxes = scene(seed, str(item.get("plate", "")), width=480, height=270)
        item["photo"] = {"ref": item["photo"], "boxes": [box.as_dict() for box in boxes]}
        photos[item["id"]] = photo
    return photos


def seed(
    session: Session, data_dir: Path, policy: PolicyEngine, keyring: Keyring, url: str
) -> dict[str, Any]:
    """Set up the day; returns what was created. The caller commits. The parties'
    credentials are written as JSON and as connector profiles for the exchange at
    `url`."""
    path = credentials_path(data_dir)
    credentials = _load(path)
    created = []
    for member in MEMBERS:
        fresh = _ensure_member(session, member, credentials.get(member.key))
        if fresh:
            credentials[member.key] = fresh
            created.append(member.key)
    session.flush()
    now = datetime.now(UTC).replace(microsecond=0)
    published = {}
    for key, definition, generate, count in PRODUCTS:
        caller = _caller(session, credentials[key]["client_id"])
        published[definition.slug] = _ensure_product(
            session, policy, caller, definition, generate, count, now, keyring
        )
    _save(path, json.dumps(credentials, indent=2))
    _save(profiles_path(data_dir), _profiles(url, credentials))
    return {
        "principals_created": created,
        "records_published": published,
        "credentials": str(path),
        "profiles": str(profiles_path(data_dir)),
    }
