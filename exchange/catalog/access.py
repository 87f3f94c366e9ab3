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

from exchange.auth import Caller, CallerDep, decide, log_refusal
from exchange.catalog import service
from exchange.catalog.models import PURPOSE, Tier
from exchange.catalog.service import Described
from exchange.db import SessionDep
from exchange.errors import BadRequest, ExchangeError, FieldError, NotFound, PurposeRequired
from exchange.grants import service as grants
from exchange.grants.models import Grant
from exchange.privacy.sealing import SealError
from policies import Decision


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
        try:
            stated = _checked_purpose(purpose, purpose_required)
            described = service.describe(session, product)
        except (BadRequest, NotFound) as error:
            log_refusal(
                session,
                request,
                caller,
                action=action,
                reason=error.detail,
                product=product,
                purpose=purpose,
            )
            raise
        held = grants.active(session, caller.organization, product) if stated else {}
        resource = replace(described.resource, granted=frozenset(held))
        lapsed = (
            grants.lapsed_hint(session, caller.organization, product, stated)
            if stated and stated not in held and described.definition.tier == Tier.regulated
            else None
        )
        decision = decide(session, request, caller, resource, action, stated, hint=lapsed)
        grant = held.get(stated) if decision.under_grant else None
        return ProductAccess(caller, described, action, stated, decision, grant)

    return Depends(dependency)


ReadAccess = Annotated[ProductAccess, product_access("read", purpose_required=True)]
AggregateAccess = Annotated[ProductAccess, product_access("aggregate", purpose_required=True)]
ReidentifyAccess = Annotated[ProductAccess, product_access("reidentify", purpose_required=True)]
PublishAccess = Annotated[ProductAccess, product_access("publish", purpose_required=False)]
UpdateAccess = Annotated[ProductAccess, product_access("update", purpose_required=False)]


@contextmanager
def refusals_logged(
    session: Session, request: Request, access: ProductAccess, *, action: str | None = None
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
            request,
            access.caller,
            action=action or access.action,
            reason=reason,
            decision=access.decision,
            product=access.described.product.slug,
            purpose=access.purpose or None,
        )
        raise
