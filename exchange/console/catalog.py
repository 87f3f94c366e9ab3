"""The catalog, for everyone signed in: search, a product's page with what *you*
would get per field and purpose (the API's decision explanation), and a request
for access where the product is regulated."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from exchange.catalog import router as catalog_api
from exchange.catalog.models import Tier
from exchange.console.pages import ConsoleRoute, page, parsed, redirect
from exchange.console.session import ConsoleCaller, FormDep
from exchange.db import SessionDep
from exchange.grants import router as grants_api
from exchange.grants.service import AccessRequestCreate
from exchange.policy import decisions as decisions_api

router = APIRouter(prefix="/console/catalog", route_class=ConsoleRoute, tags=["console"])
PAGE_SIZE = 25


@router.get("", include_in_schema=False)
def catalog(
    request: Request,
    session: SessionDep,
    caller: ConsoleCaller,
    q: Annotated[str | None, Query(max_length=200)] = None,
    tier: Tier | None = None,
    cursor: str | None = None,
) -> Response:
    listing = catalog_api.search(
        request,
        session,
        caller,
        q=q or None,
        tier=tier,
        tag=None,
        publisher=None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    return page(request, "catalog.html", listing=listing, q=q or "", tier=tier, tiers=list(Tier))


@router.get("/{product}", include_in_schema=False)
def product(
    request: Request,
    session: SessionDep,
    caller: ConsoleCaller,
    product: str,
    requested: int | None = None,
) -> Response:
    """The product's schema and, for each declared purpose, the decision and the
    treatment each field would get if the viewer read it for that purpose."""
    described = catalog_api.details(request, session, caller, product, version=None)
    explained = {
        purpose: decisions_api.explain(
            request,
            session,
            caller,
            decisions_api.DecisionQuery(product=product, action="read", purpose=purpose),
        )
        for purpose in described.purposes
    }
    notice = f"Access request #{requested} sent; a steward will decide." if requested else None
    return page(request, "product.html", product=described, explained=explained, notice=notice)


@router.post("/{product}/access-requests", include_in_schema=False)
def request_access(
    request: Request, session: SessionDep, caller: ConsoleCaller, form: FormDep, product: str
) -> Response:
    """The API's POST /v1/access-requests, from the product page's form."""
    data = parsed(
        AccessRequestCreate,
        product=product,
        purpose=form.get("purpose"),
        justification=form.get("justification"),
        days=form.get("days"),
    )
    created = grants_api.create_request(request, session, caller, data)
    return redirect(f"/console/catalog/{product}?requested={created.id}")
