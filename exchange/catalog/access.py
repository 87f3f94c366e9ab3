"""The dependency every product route goes through: find the product, decide, or deny.

A route that touches a product's data declares `ProductAccess` for its action; it
gets the decision (with its view) only if the policy allows, and a denial has
already been logged. Services that return data take a `ProductAccess`, so there is
no way to reach them without a decision.

The grants the caller's organisation holds on the product are looked up for every
request and passed to the decision; when it was a grant that allowed the read,
the access carries that grant (its scope and quota then apply, and the audit
entry names it).
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from exchange.auditing.trail import Origin
from exchange.auth import Caller, CallerDep, decide_with, log_refusal
from exchange.catalog import service
from exchange.catalog.models import PURPOSE, Tier
from exchange.catalog.service import Described
from exchange.db import SessionDep
from exchange.errors import BadRequest, ExchangeError, FieldError, PurposeRequired
from exchange.grants import service as grants
from exchange.grants.models import Grant
from exchange.privacy.sealing import SealError
from policies import Decision, PolicyEngine, Resource


@dataclass(frozen=True)
class ProductAccess:
    caller: Caller
    described: Described
    action: str
    purpose: str
    decision: Decision
    grant: Grant | None = None

    @property
    def grant_id(self) -> str | None:
        return str(self.grant.id) if self.grant else None


def _checked_purpose(purpose: str | None, required: bool) -> str:
    if not required:
        return ""
    if not purpose:
        raise PurposeRequired(
            "every data read states its purpose; no purpose, no data",
            errors=[FieldError(reason="missing", field="purpose")],
        )
    if not re.match(PURPOSE, purpose):
        raise BadRequest(
            "purpose is not a purpose name",
            errors=[FieldError(reason=f"must match {PURPOSE}", field="purpose")],
        )
    return purpose


def product_access(action: str, *, purpose_required: bool):
    def dependency(
        request: Request,
        session: SessionDep,
        caller: CallerDep,
        product: Annotated[str, Path(description="The product's slug.")],
        purpose: Annotated[
            str | None, Query(description="Why the data is wanted, e.g. law_enforcement.")
        ] = None,
    ) -> ProductAccess:
        return decide_access(
            session, request, caller, product, purpose, action, purpose_required=purpose_required
        )

    return Depends(dependency)


def decide_access(
    session: Session,
    request: Request,
    caller: Caller,
    product: str,
    purpose: str | None,
    action: str,
    *,
    purpose_required: bool,
) -> ProductAccess:
    """What `product_access` decides, for a caller known otherwise (the console's):
    bad input and unknown products are logged refusals, and so is a denial."""
    with refused_before_deciding(session, request, caller, action, product, purpose):
        stated = _checked_purpose(purpose, purpose_required)
        described = service.describe(session, product)
    return access_to(
        session, request, request.app.state.policy.current, caller, described, action, stated
    )


@contextmanager
def refused_before_deciding(
    session: Session,
    where: Request | Origin,
    caller: Caller,
    action: str,
    product: str,
    purpose: str | None,
) -> Iterator[None]:
    """Bad input or an unknown product, found before there is a decision: the
    refusal is audited (as `action`) before the error goes back."""
    try:
        yield
    except ExchangeError as error:
        log_refusal(
            session,
            where,
            caller,
            action=action,
            reason=error.detail,
            product=product,
            purpose=purpose,
        )
        raise


def with_grants(
    session: Session, caller: Caller, described: Described, purpose: str
) -> tuple[Resource, dict[str, Grant]]:
    """The product as the policy sees it for this caller: with the purposes its
    organisation holds grants for now; and those grants, by purpose."""
    held = grants.active(session, caller.organization, described.product.slug) if purpose else {}
    return replace(described.resource, granted=frozenset(held)), held


def access_to(
    session: Session,
    where: Request | Origin,
    policy: PolicyEngine,
    caller: Caller,
    described: Described,
    action: str,
    purpose: str,
    logged_as: str | None = None,
) -> ProductAccess:
    """The decision on the product with the grants the caller's organisation holds
    now; a logged AccessDenied (as `logged_as`, default the action) if the policy
    says no."""
    product = described.product.slug
    resource, held = with_grants(session, caller, described, purpose)
    lapsed = (
        grants.lapsed_hint(session, caller.organization, product, purpose)
        if purpose and purpose not in held and described.definition.tier == Tier.regulated
        else None
    )
    decision = decide_with(
        policy, session, where, caller, resource, action, purpose, logged_as=logged_as, hint=lapsed
    )
    grant = held.get(purpose) if decision.under_grant else None
    return ProductAccess(caller, described, action, purpose, decision, grant)


ReadAccess = Annotated[ProductAccess, product_access("read", purpose_required=True)]
AggregateAccess = Annotated[ProductAccess, product_access("aggregate", purpose_required=True)]
ReidentifyAccess = Annotated[ProductAccess, product_access("reidentify", purpose_required=True)]
PublishAccess = Annotated[ProductAccess, product_access("publish", purpose_required=False)]
UpdateAccess = Annotated[ProductAccess, product_access("update", purpose_required=False)]


@contextmanager
def refusals_logged(
    session: Session,
    where: Request | Origin,
    access: ProductAccess,
    *,
    action: str | None = None,
) -> Iterator[None]:
    """For an action the policy allowed that then fails — bad input, a spent budget,
    a view that withholds images, an erased product, data that does not decrypt:
    the refusal is audited as a denial (as `action`, default the access's),
    durably, before the error goes back."""
    try:
        yield
    except (ExchangeError, SealError) as refused:
        reason = (
            refused.detail
            if isinstance(refused, ExchangeError)
            else f"stored data failed its integrity check: {refused}"
        )
        log_refusal(
            session,
            where,
            access.caller,
            action=action or access.action,
            reason=reason,
            decision=access.decision,
            product=access.described.product.slug,
            purpose=access.purpose or None,
        )
        raise
