"""Asking for regulated access, deciding on it, and the grants that result.

A grant is consulted on every request (`active`): whether it is in force is a
question of its row now — not expired, not revoked, quota not used up — so no
worker needs telling and no job needs running for a change to take effect.
Services only flush; the route's session commits with the audit entry.
"""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from exchange.catalog.models import FieldType, Sensitivity
from exchange.catalog.service import Described
from exchange.errors import Conflict, FieldError, NotFound, ValidationFailed
from exchange.grants.models import AccessRequest, Grant
from exchange.records.models import Record
from exchange.timeutil import as_utc, to_rfc3339, utcnow

MAX_DAYS = 366


class Scope(BaseModel):
    """How far a grant reaches inside the product. Empty: the whole product."""

    fields: list[str] | None = Field(
        default=None, description="Only these fields; the others are withheld."
    )
    where: dict[str, list[str]] = Field(
        default={},
        description="Only records whose field has one of these values, "
        'e.g. {"district": ["Tianhe", "Yuexiu"]}.',
    )

    def problems(self, described: Described) -> list[FieldError]:
        specs = {spec.name: spec for spec in described.definition.fields}
        errors = [
            FieldError(f"no field {name!r} in {described.product.slug}", "scope.fields", i)
            for i, name in enumerate(self.fields or [])
            if name not in specs
        ]
        for name, values in self.where.items():
            spec = specs.get(name)
            if spec is None:
                errors.append(FieldError(f"no field {name!r}", f"scope.where.{name}"))
            elif spec.type != FieldType.string or spec.sensitivity != Sensitivity.none:
                reason = "only plain (non-sensitive) text fields can limit a grant"
                errors.append(FieldError(reason, f"scope.where.{name}"))
            elif not values:
                errors.append(FieldError("give at least one value", f"scope.where.{name}"))
        return errors


class AccessRequestCreate(BaseModel):
    product: str
    partner: str | None = Field(
        default=None,
        description="A second product: asks to cross-check the two on their subject key "
        "(POST /v1/cross-checks), not to read either.",
    )
    purpose: str
    justification: str = Field(
        min_length=20, max_length=4000, description="Why the purpose needs this data."
    )
    days: int = Field(ge=1, le=MAX_DAYS, description="How long the access is wanted.")
    scope: Scope = Field(default_factory=Scope)


class Approval(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)
    days: int | None = Field(
        default=None, ge=1, le=MAX_DAYS, description="Default: the days requested."
    )
    quota: int | None = Field(default=None, ge=1, description="Most records readable under it.")
    scope: Scope | None = Field(default=None, description="Default: the scope requested.")


class Refusal(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


def working_days_after(start: datetime, days: int, zone: str) -> datetime:
    """`days` working days (Monday to Friday in `zone`, where the stewards work)
    after `start`, at the same local time of day; in UTC."""
    moment = start.astimezone(ZoneInfo(zone))
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment.astimezone(UTC)


def _in_force(now: datetime) -> Any:
    return and_(
        Grant.revoked_at.is_(None),
        Grant.expires_at > now,
        or_(Grant.quota.is_(None), Grant.used < Grant.quota),
    )


def active(session: Session, organization: str, product: str) -> dict[str, Grant]:
    """Purpose → the grant in force for it (the one ending last, if several)."""
    rows = session.scalars(
        select(Grant)
        .where(
            Grant.organization == organization,
            Grant.product == product,
            Grant.partner.is_(None),  # type: ignore[union-attr]
            _in_force(utcnow()),
        )
        .order_by(Grant.expires_at)
    )
    return {grant.purpose: grant for grant in rows}


def active_pair(session: Session, organization: str, first: str, second: str) -> dict[str, Grant]:
    """Purpose → the cross-check grant in force naming both products (in either order)."""
    rows = session.scalars(
        select(Grant)
        .where(
            Grant.organization == organization,
            or_(
                and_(Grant.product == first, Grant.partner == second),
                and_(Grant.product == second, Grant.partner == first),
            ),
            _in_force(utcnow()),
        )
        .order_by(Grant.expires_at)
    )
    return {grant.purpose: grant for grant in rows}


def lapsed_hint(session: Session, organization: str, product: str, purpose: str) -> str | None:
    """What to tell an organisation whose grant for the purpose is no longer in force:
    which grant, why it ended, and how to ask again; None if it never had one."""
    grant = session.scalar(
        select(Grant)
        .where(
            Grant.organization == organization,
            Grant.product == product,
            Grant.partner.is_(None),  # type: ignore[union-attr]
            Grant.purpose == purpose,
        )
        .order_by(Grant.id.desc())
        .limit(1)
    )
    if grant is None:
        return None
    ended = state(grant, utcnow())
    if ended == "expired":
        why = f"expired at {to_rfc3339(as_utc(grant.expires_at))}"
    elif ended == "revoked":
        why = f"was revoked: {grant.revoke_reason}"
    elif ended == "exhausted":
        why = f"has used its quota of {grant.quota} records"
    else:
        return None
    return f"grant {grant.id} for {purpose} {why}; request access again (POST /v1/access-requests)"


def create_request(
    session: Session,
    requester: str,
    organization: str,
    data: AccessRequestCreate,
    due: tuple[int, str],
) -> AccessRequest:
    """A pending request, due `due[0]` working days later in the zone `due[1]`;
    Conflict if the same one (a cross-check's pair in either order) is pending."""
    same = (
        or_(
            and_(AccessRequest.product == data.product, AccessRequest.partner == data.partner),
            and_(AccessRequest.product == data.partner, AccessRequest.partner == data.product),
        )
        if data.partner
        else and_(
            AccessRequest.product == data.product,
            AccessRequest.partner.is_(None),  # type: ignore[union-attr]
        )
    )
    pending = session.scalar(
        select(AccessRequest.id).where(
            AccessRequest.organization == organization,
            same,
            AccessRequest.purpose == data.purpose,
            AccessRequest.status == "pending",
        )
    )
    if pending is not None:
        raise Conflict(
            f"access request {pending} for the same product and purpose is still pending",
            request_id=pending,
        )
    now = utcnow()
    row = AccessRequest(
        organization=organization,
        requester=requester,
        product=data.product,
        partner=data.partner,
        purpose=data.purpose,
        justification=data.justification,
        requested_days=data.days,
        scope=data.scope.model_dump(exclude_defaults=True),
        created_at=now,
        due_at=working_days_after(now, *due),
    )
    session.add(row)
    session.flush()
    return row


def get_request(session: Session, request_id: int, organization: str | None) -> AccessRequest:
    """The request; NotFound also when it belongs to another organisation."""
    row = session.get(AccessRequest, request_id)
    if row is None or (organization is not None and row.organization != organization):
        raise NotFound(f"no access request {request_id}")
    return row


def _pending(row: AccessRequest) -> None:
    if row.status != "pending":
        raise Conflict(f"access request {row.id} was already {row.status}")


def approve(
    session: Session, row: AccessRequest, steward: str, approval: Approval, described: Described
) -> Grant:
    _pending(row)
    if row.partner is not None and (approval.scope is not None or approval.quota is not None):
        raise ValidationFailed(
            "a cross-check grant takes no scope or quota: it returns only the matches",
            errors=[
                FieldError("not for a cross-check", name)
                for name in ("scope", "quota")
                if getattr(approval, name) is not None
            ],
        )
    scope = approval.scope if approval.scope is not None else Scope.model_validate(row.scope)
    if errors := scope.problems(described):
        raise ValidationFailed("the scope does not fit the product", errors=errors)
    now = utcnow()
    grant = Grant(
        organization=row.organization,
        product=row.product,
        partner=row.partner,
        purpose=row.purpose,
        scope=scope.model_dump(exclude_defaults=True),
        created_at=now,
        expires_at=now + timedelta(days=approval.days or row.requested_days),
        quota=approval.quota,
        request_id=row.id,
        approved_by=steward,
    )
    session.add(grant)
    session.flush()
    _decided(row, "approved", steward, approval.reason, now)
    row.grant_id = grant.id
    return grant


def refuse(session: Session, row: AccessRequest, steward: str, reason: str) -> None:
    _pending(row)
    _decided(row, "denied", steward, reason, utcnow())
    session.flush()


def _decided(row: AccessRequest, status: str, steward: str, reason: str, now: datetime) -> None:
    row.status = status
    row.decided_by = steward
    row.decision_reason = reason
    row.decided_at = now


def list_requests(
    session: Session, organization: str | None, status: str | None, offset: int, limit: int
) -> list[AccessRequest]:
    """Pending first, the most overdue (earliest due) first; then the decided, newest first."""
    query = select(AccessRequest).order_by(
        case((AccessRequest.status == "pending", 0), else_=1),
        case((AccessRequest.status == "pending", AccessRequest.due_at), else_=None),
        AccessRequest.id.desc(),
    )
    if organization is not None:
        query = query.where(AccessRequest.organization == organization)
    if status is not None:
        query = query.where(AccessRequest.status == status)
    return list(session.scalars(query.offset(offset).limit(limit)))


def get_grant(session: Session, grant_id: int, organization: str | None) -> Grant:
    row = session.get(Grant, grant_id)
    if row is None or (organization is not None and row.organization != organization):
        raise NotFound(f"no grant {grant_id}")
    return row


def list_grants(
    session: Session, organization: str | None, in_force: bool, after: int | None, limit: int
) -> list[Grant]:
    query = select(Grant).order_by(Grant.id).limit(limit)
    if organization is not None:
        query = query.where(Grant.organization == organization)
    if in_force:
        query = query.where(_in_force(utcnow()))
    if after is not None:
        query = query.where(Grant.id > after)
    return list(session.scalars(query))


def revoke(session: Session, grant: Grant, steward: str, reason: str) -> None:
    if grant.revoked_at is not None:
        raise Conflict(f"grant {grant.id} was already revoked")
    grant.revoked_at = utcnow()
    grant.revoked_by = steward
    grant.revoke_reason = reason
    session.flush()


def consume(session: Session, grant: Grant, records: int) -> None:
    """Count records read under a grant with a quota; Conflict if a concurrent read
    used up the rest first (the read then rolls back)."""
    if grant.quota is None or records == 0:
        return
    done = session.execute(
        update(Grant)
        .where(Grant.id == grant.id, Grant.used + records <= Grant.quota)
        .values(used=Grant.used + records)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"grant {grant.id} has fewer than {records} records of its quota left")


def within_scope(treatment_of: dict[str, str], grant: Grant | None) -> dict[str, str]:
    """Under a grant limited to some fields, every other field withheld."""
    return {name: t if visible(grant, name) else "withheld" for name, t in treatment_of.items()}


def scope_clauses(grant: Grant | None) -> list[Any]:
    """Under a grant limited to some values of a field (districts), only those records."""
    where = grant.scope.get("where", {}) if grant is not None else {}
    return [Record.content[name].as_string().in_(values) for name, values in where.items()]


def visible(grant: Grant | None, field: str) -> bool:
    """Whether a grant's scope lets the field be shown (or used to select or group)."""
    scoped = grant.scope.get("fields") if grant is not None else None
    return scoped is None or field in scoped


def remaining(grant: Grant) -> int | None:
    return None if grant.quota is None else max(grant.quota - grant.used, 0)


def state(grant: Grant, now: datetime) -> str:
    if grant.revoked_at is not None:
        return "revoked"
    if as_utc(grant.expires_at) <= now:
        return "expired"
    if grant.quota is not None and grant.used >= grant.quota:
        return "exhausted"
    return "active"
