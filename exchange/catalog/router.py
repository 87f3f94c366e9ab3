"""Registering, finding and changing data products."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from exchange.auditing.trail import record_allowed
from exchange.auth import CallerDep, SystemAccess, engine, system_access
from exchange.catalog import service
from exchange.catalog.access import UpdateAccess
from exchange.catalog.models import ProductCreate, ProductPublic, ProductUpdate, Tier
from exchange.db import SessionDep
from exchange.errors import NotFound
from exchange.identity.service import get_organization
from exchange.pagination import decode_cursor, encode_cursor
from exchange.records.resealing import reseal_product

router = APIRouter(prefix="/v1/products", tags=["catalog"])

RegisterAccess = Annotated[SystemAccess, system_access("catalog", "register")]


class ProductList(BaseModel):
    products: list[ProductPublic]
    next_cursor: str | None


@router.post("", status_code=201, response_model=ProductPublic)
def register(
    request: Request, session: SessionDep, access: RegisterAccess, data: ProductCreate
) -> ProductPublic:
    """Register a data product owned by the caller's organisation (version 1)."""
    owner = get_organization(session, access.caller.organization)
    described = service.register(session, owner, data, access.caller.client_id)
    record_allowed(
        session,
        request,
        access,
        action="product.register",
        product=data.slug,
        details={"version": 1, "tier": data.tier.value, "purposes": described.definition.purposes},
    )
    return described.public()


@router.get("", response_model=ProductList)
def search(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in slug, title or description")
    ] = None,
    tier: Tier | None = None,
    tag: str | None = None,
    publisher: Annotated[str | None, Query(description="The publisher organisation's slug")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ProductList:
    """The catalog: products the caller may discover, filtered by text, tier, tag
    and publisher. Products the policy hides from the caller are not listed."""
    found = service.search(
        session,
        q=q,
        tier=tier.value if tier else None,
        tag=tag,
        publisher=publisher,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    more, found = len(found) > limit, found[:limit]
    policy = engine(request)
    visible = [d for d in found if policy.decide(caller.subject, d.resource, "discover").allowed]
    next_cursor = encode_cursor(found[-1].product.id or 0) if more else None
    return ProductList(products=[d.public() for d in visible], next_cursor=next_cursor)


@router.get("/{product}", response_model=ProductPublic)
def details(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    product: str,
    version: Annotated[int | None, Query(ge=1, description="Default: the current version")] = None,
) -> ProductPublic:
    """A product's definition, at its current or an older version. A product the
    caller may not discover now is reported as not found, at every version."""
    current = service.describe(session, product)
    if not engine(request).decide(caller.subject, current.resource, "discover").allowed:
        raise NotFound(f"no product {product!r}")
    described = current if version is None else service.describe(session, product, version)
    return described.public()


@router.patch("/{product}", response_model=ProductPublic)
def change(
    request: Request, session: SessionDep, access: UpdateAccess, data: ProductUpdate
) -> ProductPublic:
    """Change a product (its owner only); the result is a new version, and
    records already published keep the version they were published under. If the
    change moves a field into or out of the clear (its sensitivity), the product's
    stored records are sealed again under the new definition."""
    described = service.update(session, access.described, data, access.caller.client_id)
    assert described.product.id is not None
    resealed = reseal_product(
        session,
        request.app.state.keyring,
        described.product.id,
        access.described.definition,
        described.definition,
    )
    record_allowed(
        session,
        request,
        access,
        action="product.update",
        product=described.product.slug,
        details={
            "version": described.version,
            "changed": sorted(data.model_fields_set),
            "resealed": resealed,
        },
    )
    return described.public()
