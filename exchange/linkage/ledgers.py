"""Linked ledgers: every record about one subject, across the products a government
subscriber may read, in one call.

A linkage is a set of reads, one per product whose subject field is of the kind
asked for, and each is what a read of that product alone would be: decided for
the stated purpose (with the organisation's grants), limited to a grant's scope,
shaped by the decided view and written to the audit log as its own `read` entry
(with the linkage's id in its details). A product the policy refuses, or whose
subject field the caller would not see raw, is a refused part — audited as a
refused read — and the others still answer. Linking itself is `link` on
`system:linkage`, which the default policy gives government subscribers only.
"""

import uuid
from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from sqlalchemy.orm import Session

from exchange.auditing.trail import record, record_allowed
from exchange.auth import Caller, SystemAccess
from exchange.catalog import service as catalog
from exchange.catalog.access import ProductAccess, with_grants
from exchange.catalog.models import PURPOSE
from exchange.catalog.service import Described
from exchange.errors import BadRequest, ExchangeError, FieldError
from exchange.linkage.keys import KINDS, normalised
from exchange.pagination import decode_cursor, encode_cursor
from exchange.privacy.sealing import SealError
from exchange.records import service as records
from exchange.timeutil import to_rfc3339
from policies import Decision, PolicyEngine

MAX_LIMIT = 1000


class LinkageRequest(BaseModel):
    kind: str = Field(description=f"The kind of subject key: {', '.join(KINDS)}.")
    value: str = Field(min_length=1, max_length=500, description="The subject, e.g. a plate.")
    purpose: str = Field(pattern=PURPOSE, description="Why; each product must declare it.")
    products: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Only these products; default: every product with this kind of key.",
    )
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT, description="Most records per product.")
    cursors: dict[str, str] = Field(
        default_factory=dict,
        description="Product → the `next_cursor` of its part in an earlier answer, to go on.",
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        return kind

    @field_validator("value")
    @classmethod
    def _something_to_match(cls, value: str, info: ValidationInfo) -> str:
        """A value that normalises to nothing ("·-·" as a plate) would match every
        record whose subject is written as nothing."""
        kind = info.data.get("kind")
        if kind is not None and not normalised(kind, value):
            raise ValueError(f"nothing in it is part of a {kind}")
        return value


class LinkedPart(BaseModel):
    """One product's records about the subject, as a read of it would give them."""

    product: str
    version: int
    view: str
    label: str
    fields: dict[str, str]
    pseudonyms_until: str | None
    grant: int | None
    audit_index: int = Field(description="The audit entry of this part's read.")
    records: list[dict[str, Any]]
    next_cursor: str | None


class RefusedPart(BaseModel):
    product: str
    reason: str
    hint: str | None = None


class Linkage(BaseModel):
    linkage: str = Field(description="This linkage's id; each part's audit entry names it.")
    kind: str
    purpose: str
    parts: list[LinkedPart]
    refused: list[RefusedPart]


def _candidates(
    session: Session, policy: PolicyEngine, caller: Caller, data: LinkageRequest
) -> list[Described]:
    """The products to link: those the caller may discover that declare a subject
    key of the kind; named ones must be such products (BadRequest otherwise, at
    their position, with the same answer for a product hidden from the caller as
    for one that does not exist)."""
    keyed = [
        described
        for described in catalog.with_subject_kind(session, data.kind)
        if policy.decide(caller.subject, described.resource, "discover").allowed
    ]
    if data.products is None:
        return keyed
    by_slug = {described.product.slug: described for described in keyed}
    errors = [
        FieldError(f"no product {slug!r} with a {data.kind} subject key", "products", index)
        for index, slug in enumerate(data.products)
        if slug not in by_slug
    ]
    errors += [
        FieldError(f"{slug!r} is not one of the products linked", f"cursors.{slug}")
        for slug in data.cursors
        if slug not in data.products
    ]
    if errors:
        raise BadRequest("the linkage names products it cannot link", errors=errors)
    return [by_slug[slug] for slug in dict.fromkeys(data.products)]


def link(session: Session, request: Request, access: SystemAccess, data: LinkageRequest) -> Linkage:
    """Read each candidate product's records about the subject; the caller commits."""
    policy: PolicyEngine = request.app.state.policy.current
    caller = access.caller
    products = _candidates(session, policy, caller, data)
    after = {
        slug: decode_cursor(cursor, f"cursors.{slug}") for slug, cursor in data.cursors.items()
    }
    linkage = Linkage(
        linkage=uuid.uuid4().hex, kind=data.kind, purpose=data.purpose, parts=[], refused=[]
    )
    for described in products:
        start = after.get(described.product.slug)
        part = _part(session, request, policy, caller, described, data, start, linkage.linkage)
        (linkage.parts if isinstance(part, LinkedPart) else linkage.refused).append(part)
    record_allowed(
        session,
        request,
        access,
        action="linkage.link",
        purpose=data.purpose,
        record_count=sum(len(part.records) for part in linkage.parts),
        details={
            "linkage": linkage.linkage,
            "kind": data.kind,
            "parts": {part.product: part.audit_index for part in linkage.parts},
            "refused": [part.product for part in linkage.refused],
        },
    )
    return linkage


def _part(
    session: Session,
    request: Request,
    policy: PolicyEngine,
    caller: Caller,
    described: Described,
    data: LinkageRequest,
    start: int | None,
    linkage: str,
) -> LinkedPart | RefusedPart:
    """One product's read: decided, shaped and audited; or its audited refusal."""
    slug = described.product.slug
    resource, held = with_grants(session, caller, described, data.purpose)
    decision = policy.decide(caller.subject, resource, "read", data.purpose)
    details = {"linkage": linkage, "kind": data.kind}
    if not decision.allowed:
        _refused(session, request, caller, slug, data.purpose, decision.reason, details, decision)
        return RefusedPart(product=slug, reason=decision.reason, hint=decision.hint)
    grant = held.get(data.purpose) if decision.under_grant else None
    access = ProductAccess(caller, described, "read", data.purpose, decision, grant)
    try:
        with session.begin_nested():
            page = records.read_about(
                session,
                request,
                access,
                data.value,
                after=start,
                limit=data.limit,
                details=details,
            )
    except (ExchangeError, SealError) as error:
        reason = error.detail if isinstance(error, ExchangeError) else f"integrity: {error}"
        if isinstance(error, ExchangeError) and error.errors:
            reason = f"{reason}: {error.errors[0].reason}"
        _refused(session, request, caller, slug, data.purpose, reason, details, decision)
        return RefusedPart(product=slug, reason=reason)
    until = page.pseudonyms_until
    assert page.audit_index is not None
    return LinkedPart(
        product=slug,
        version=described.version,
        view=page.view,
        label=page.label,
        fields=page.treatments,
        pseudonyms_until=to_rfc3339(until) if until else None,
        grant=grant.id if grant else None,
        audit_index=page.audit_index,
        records=page.records,
        next_cursor=encode_cursor(page.next_after) if page.next_after is not None else None,
    )


def _refused(
    session: Session,
    request: Request,
    caller: Caller,
    product: str,
    purpose: str,
    reason: str,
    details: dict[str, Any],
    decision: Decision,
) -> None:
    """The refused part's audit entry, as a refused read of that product."""
    record(
        session,
        request,
        caller.actor,
        action="read",
        allowed=False,
        reason=reason,
        decision=decision,
        product=product,
        purpose=purpose,
        details=details,
    )
