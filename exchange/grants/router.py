"""Access requests and grants: subscribers ask and see their own; stewards decide and revoke.

Who sees what is itself a decision: `manage` on `system:grants` (stewards) sees
every organisation's requests and grants; `read` (subscribers) sees its own
organisation's; anyone else is refused and the refusal logged.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from exchange.auditing.trail import record, record_allowed
from exchange.auth import (
    Caller,
    CallerDep,
    SystemAccess,
    decide,
    engine,
    system_access,
)
from exchange.catalog import service as catalog
from exchange.catalog.access import refused_before_deciding
from exchange.catalog.service import Described
from exchange.db import SessionDep
from exchange.errors import BadRequest, Conflict, FieldError, NotFound, ValidationFailed
from exchange.grants import service
from exchange.grants.models import AccessRequest, Grant
from exchange.grants.service import AccessRequestCreate, Approval, Refusal
from exchange.linkage.crosscheck import comparable
from exchange.pagination import decode_cursor, encode_cursor
from exchange.timeutil import as_utc, to_rfc3339, utcnow
from policies import Resource

router = APIRouter(tags=["access requests and grants"])

ManageGrants = Annotated[SystemAccess, system_access("grants", "manage")]
GRANTS = Resource.system("grants")


def _time(moment: datetime | None) -> str | None:
    return to_rfc3339(as_utc(moment)) if moment else None


class AccessRequestPublic(BaseModel):
    id: int
    organization: str
    requester: str
    product: str
    partner: str | None
    purpose: str
    justification: str
    days: int
    scope: dict[str, Any]
    status: str
    created_at: str
    age_hours: float
    due_at: str
    overdue: bool
    decided_at: str | None
    decided_by: str | None
    decision_reason: str | None
    grant_id: int | None

    @classmethod
    def of(cls, row: AccessRequest) -> "AccessRequestPublic":
        now = utcnow()
        created = as_utc(row.created_at)
        return cls(
            id=row.id or 0,
            organization=row.organization,
            requester=row.requester,
            product=row.product,
            partner=row.partner,
            purpose=row.purpose,
            justification=row.justification,
            days=row.requested_days,
            scope=row.scope,
            status=row.status,
            created_at=to_rfc3339(created),
            age_hours=round((now - created).total_seconds() / 3600, 1),
            due_at=to_rfc3339(as_utc(row.due_at)),
            overdue=row.status == "pending" and as_utc(row.due_at) < now,
            decided_at=_time(row.decided_at),
            decided_by=row.decided_by,
            decision_reason=row.decision_reason,
            grant_id=row.grant_id,
        )


class GrantPublic(BaseModel):
    id: int
    organization: str
    product: str
    partner: str | None
    purpose: str
    scope: dict[str, Any]
    state: str
    created_at: str
    expires_at: str
    quota: int | None
    used: int
    remaining: int | None
    request_id: int | None
    approved_by: str
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None

    @classmethod
    def of(cls, grant: Grant) -> "GrantPublic":
        return cls(
            id=grant.id or 0,
            organization=grant.organization,
            product=grant.product,
            partner=grant.partner,
            purpose=grant.purpose,
            scope=grant.scope,
            state=service.state(grant, utcnow()),
            created_at=to_rfc3339(as_utc(grant.created_at)),
            expires_at=to_rfc3339(as_utc(grant.expires_at)),
            quota=grant.quota,
            used=grant.used,
            remaining=service.remaining(grant),
            request_id=grant.request_id,
            approved_by=grant.approved_by,
            revoked_at=_time(grant.revoked_at),
            revoked_by=grant.revoked_by,
            revoke_reason=grant.revoke_reason,
        )


class AccessRequestList(BaseModel):
    requests: list[AccessRequestPublic]
    next_cursor: str | None


class GrantList(BaseModel):
    grants: list[GrantPublic]
    next_cursor: str | None


class Approved(BaseModel):
    request: AccessRequestPublic
    grant: GrantPublic


def _visible_to(session: Session, request: Request, caller: Caller) -> str | None:
    """None for those who see every organisation's; else the caller's organisation.
    Raises (logged) AccessDenied for those who may see none."""
    if engine(request).decide(caller.subject, GRANTS, "manage").allowed:
        return None
    decide(session, request, caller, GRANTS, "read")
    return caller.organization


def _declares(described: Described, purpose: str) -> None:
    """BadRequest unless the product declares the purpose."""
    if purpose not in described.definition.purposes:
        declared = ", ".join(described.definition.purposes)
        raise BadRequest(
            f"{described.product.slug} does not declare the purpose {purpose!r} "
            f"(declared: {declared})",
            errors=[FieldError("not a declared purpose", "purpose")],
        )


def _requestable(
    session: Session, request: Request, caller: Caller, data: AccessRequestCreate
) -> Described:
    """The product, if an access request for it makes sense; a logged refusal otherwise."""
    with refused_before_deciding(
        session, request, caller, "access_request.create", data.product, data.purpose
    ):
        described = catalog.describe(session, data.product)
        if not engine(request).decide(caller.subject, described.resource, "discover").allowed:
            raise NotFound(f"no product {data.product!r}")  # as the catalog says
        _declares(described, data.purpose)
        if described.definition.tier.value != "regulated":
            raise Conflict(
                f"{data.product} is {described.definition.tier.value}, not regulated: access "
                "requests are for regulated products; read it directly if the policy allows"
            )
        if errors := data.scope.problems(described):
            raise ValidationFailed("the scope does not fit the product", errors=errors)
    return described


def _pairable(
    session: Session, request: Request, caller: Caller, data: AccessRequestCreate, partner: str
) -> tuple[Described, Described]:
    """Both products, if a cross-check of the two makes sense (`crosscheck.comparable`),
    both declaring the purpose, and no scope (a cross-check returns only matches
    anyway). A logged refusal otherwise."""
    with refused_before_deciding(
        session, request, caller, "cross_check_request.create", data.product, data.purpose
    ):
        first, second, _ = comparable(
            session, engine(request), caller, [data.product, partner], ["product", "partner"]
        )
        for described in (first, second):
            _declares(described, data.purpose)
        if data.scope.fields is not None or data.scope.where:
            raise BadRequest(
                "a cross-check request takes no scope: it returns only the matches",
                errors=[FieldError("not for a cross-check", "scope")],
            )
    return first, second


@router.post("/v1/access-requests", status_code=201, response_model=AccessRequestPublic)
def create_request(
    request: Request, session: SessionDep, caller: CallerDep, data: AccessRequestCreate
) -> AccessRequestPublic:
    """Ask for access to a regulated product for one purpose, or (with `partner`)
    for cross-checks of two products; a steward decides."""
    if data.partner is None:
        products = [_requestable(session, request, caller, data)]
        action, logged_as = "request_access", "access_request.create"
    else:
        products = list(_pairable(session, request, caller, data, data.partner))
        action, logged_as = "request_cross_check", "cross_check_request.create"
    decisions = [
        decide(
            session,
            request,
            caller,
            described.resource,
            action,
            data.purpose,
            logged_as=logged_as,
        )
        for described in products
    ]
    settings = request.app.state.settings
    row = service.create_request(
        session,
        caller.client_id,
        caller.organization,
        data,
        (settings.access_request_due_working_days, settings.working_days_zone),
    )
    record(
        session,
        request,
        caller.actor,
        action=logged_as,
        allowed=True,
        reason=decisions[-1].reason,
        decision=decisions[-1],
        product=row.product,
        purpose=row.purpose,
        details={
            "request": row.id,
            "days": row.requested_days,
            "scope": row.scope,
            **({"partner": row.partner} if row.partner else {}),
        },
    )
    return AccessRequestPublic.of(row)


@router.get("/v1/access-requests", response_model=AccessRequestList)
def list_requests(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    status: Annotated[str | None, Query(pattern="^(pending|approved|denied)$")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccessRequestList:
    """Pending requests first, the most overdue first; stewards see every organisation's."""
    organization = _visible_to(session, request, caller)
    offset = decode_cursor(cursor) or 0
    rows = service.list_requests(session, organization, status, offset, limit + 1)
    more = len(rows) > limit
    return AccessRequestList(
        requests=[AccessRequestPublic.of(row) for row in rows[:limit]],
        next_cursor=encode_cursor(offset + limit) if more else None,
    )


@router.get("/v1/access-requests/{request_id}", response_model=AccessRequestPublic)
def get_request(
    request: Request, session: SessionDep, caller: CallerDep, request_id: int
) -> AccessRequestPublic:
    organization = _visible_to(session, request, caller)
    return AccessRequestPublic.of(service.get_request(session, request_id, organization))


def _decidable(session: Session, access: SystemAccess, request_id: int) -> AccessRequest:
    row = service.get_request(session, request_id, None)
    if row.organization == access.caller.organization:
        raise Conflict("a steward cannot decide a request of their own organisation")
    return row


@router.post("/v1/access-requests/{request_id}/approve", response_model=Approved)
def approve(
    request: Request, session: SessionDep, access: ManageGrants, request_id: int, data: Approval
) -> Approved:
    """Approve with a reason: creates the grant (days, quota and scope default to the request's)."""
    row = _decidable(session, access, request_id)
    grant = service.approve(
        session, row, access.caller.client_id, data, catalog.describe(session, row.product)
    )
    record_allowed(
        session,
        request,
        access,
        action="access_request.approve",
        product=row.product,
        purpose=row.purpose,
        grant_id=str(grant.id),
        details={
            "request": row.id,
            "organization": row.organization,
            "partner": row.partner,
            "reason": data.reason,
            "expires_at": to_rfc3339(as_utc(grant.expires_at)),
            "quota": grant.quota,
            "scope": grant.scope,
        },
    )
    return Approved(request=AccessRequestPublic.of(row), grant=GrantPublic.of(grant))


@router.post("/v1/access-requests/{request_id}/deny", response_model=AccessRequestPublic)
def deny(
    request: Request, session: SessionDep, access: ManageGrants, request_id: int, data: Refusal
) -> AccessRequestPublic:
    """Deny with a reason the requester will read."""
    row = _decidable(session, access, request_id)
    service.refuse(session, row, access.caller.client_id, data.reason)
    record_allowed(
        session,
        request,
        access,
        action="access_request.deny",
        product=row.product,
        purpose=row.purpose,
        details={"request": row.id, "organization": row.organization, "reason": data.reason},
    )
    return AccessRequestPublic.of(row)


@router.get("/v1/grants", response_model=GrantList)
def list_grants(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    active: Annotated[bool, Query(description="Only grants in force now.")] = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> GrantList:
    organization = _visible_to(session, request, caller)
    rows = service.list_grants(session, organization, active, decode_cursor(cursor), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return GrantList(
        grants=[GrantPublic.of(row) for row in rows],
        next_cursor=encode_cursor(rows[-1].id or 0) if more and rows else None,
    )


@router.get("/v1/grants/{grant_id}", response_model=GrantPublic)
def get_grant(
    request: Request, session: SessionDep, caller: CallerDep, grant_id: int
) -> GrantPublic:
    organization = _visible_to(session, request, caller)
    return GrantPublic.of(service.get_grant(session, grant_id, organization))


@router.delete("/v1/grants/{grant_id}", response_model=GrantPublic)
def revoke(
    request: Request,
    session: SessionDep,
    access: ManageGrants,
    grant_id: int,
    reason: Annotated[str, Query(min_length=3, max_length=2000, description="Why, for the log.")],
) -> GrantPublic:
    """Revoke at once: the next read under this grant is denied, in every worker."""
    grant = service.get_grant(session, grant_id, None)
    service.revoke(session, grant, access.caller.client_id, reason)
    record_allowed(
        session,
        request,
        access,
        action="grant.revoke",
        product=grant.product,
        purpose=grant.purpose,
        grant_id=str(grant.id),
        details={"organization": grant.organization, "reason": reason},
    )
    return GrantPublic.of(grant)
