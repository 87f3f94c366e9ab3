"""`POST /v1/linkage` (linked ledgers) and `POST /v1/cross-checks` (registry cross-checks)."""

from typing import Annotated

from fastapi import APIRouter, Request

from exchange.auth import CallerDep, SystemAccess, system_access
from exchange.db import SessionDep
from exchange.linkage import crosscheck, ledgers
from exchange.linkage.crosscheck import CrossCheck, CrossCheckRequest
from exchange.linkage.ledgers import Linkage, LinkageRequest

router = APIRouter(tags=["linkage"])

Link = Annotated[SystemAccess, system_access("linkage", "link")]


@router.post("/v1/linkage", response_model=Linkage)
def link(request: Request, session: SessionDep, access: Link, data: LinkageRequest) -> Linkage:
    """Every record about one subject (a plate, a phone number, an address) in each
    product that declares that kind of subject key, grouped by product. Each part is
    decided, shaped and audited as a read of that product for the purpose; a part
    the policy refuses is listed under `refused`, and the other parts still answer."""
    return ledgers.link(session, request, access, data)


@router.post("/v1/cross-checks", response_model=CrossCheck)
def cross_check(
    request: Request, session: SessionDep, caller: CallerDep, data: CrossCheckRequest
) -> CrossCheck:
    """Compare two products on their shared kind of subject key (normalised
    addresses, say) and return only what matched, with counts: never either product
    in full. `cross_check` is decided on both products for the purpose; the default
    policy needs an approved grant naming both (an access request with `partner`)."""
    return crosscheck.cross_check(session, request, caller, data)
