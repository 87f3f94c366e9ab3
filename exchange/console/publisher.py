"""The publisher's pages: my products and what was published per day, who used my
data and for what, and my records' images next to what companies see of them.

Every page is the publisher's own decision: `register` on `system:catalog` (the
publisher role) for products and images, `read` on `system:usage` for usage, each
logged when refused. Images are served by the API's image route for the
publisher's own read decision (`read` on the product, logged), so the raw photo
is only for whom the policy gives the raw view (the owner).

The redaction preview shows the publisher its image as a company would get it.
What is simulated (asked of the policy, never logged as a request of its own): a
principal with the `subscriber` role of an `enterprise` organisation that no
policy line names (so no `org:` line and never `@own` applies), reading the
product for the chosen purpose; for a regulated product its organisation holds
an active, unscoped grant for that purpose (companies read regulated products
only under a grant), for any other tier it holds none. The image is served by
the image service under the publisher's own read decision, in the more
protective of that and the company's treatment, so the preview never shows more
than either decision allows; it is audited as `image.preview` with the
publisher's real decision and view, and the company's decision in its details
(a policy dry-run does not replay previews).
"""

from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from exchange.auditing import usage as usage_api
from exchange.auth import Caller, SystemAccess, engine
from exchange.catalog import router as catalog_api
from exchange.catalog import service as catalog
from exchange.catalog.access import decide_access, refusals_logged
from exchange.catalog.models import FieldType, ProductPublic, Tier
from exchange.catalog.service import Described
from exchange.console.pages import ConsoleRoute, page
from exchange.console.sections import section_entry
from exchange.console.session import ConsoleCaller, console_access
from exchange.db import SessionDep
from exchange.errors import AccessDenied, NotFound
from exchange.images import router as images_api
from exchange.images.service import PREVIEW, Preview
from exchange.records import daily
from exchange.records import service as records
from exchange.timeutil import utcnow
from policies import PolicyEngine, Subject

router = APIRouter(prefix="/console/publisher", route_class=ConsoleRoute, tags=["console"])

DAYS = 14
PAGE_SIZE = 25
MOST_PRODUCTS = 200  # the catalog's largest page: the images page's choice of product
RECENT = 6  # records shown with their images; each image shown is an audited read
# Whom the preview shows the image as (see the module's docstring).
COMPANY = Subject("console:company-preview", "", "enterprise", frozenset({"subscriber"}))

Publishing = Annotated[SystemAccess, console_access("catalog", "register")]
ReadUsage = Annotated[SystemAccess, console_access("usage", "read")]
Purpose = Annotated[str | None, Query(max_length=64)]


@router.get("", include_in_schema=False)
def entry(request: Request, session: SessionDep, caller: ConsoleCaller) -> Response:
    return section_entry(request, session, caller, "/console/publisher")


def _mine(
    request: Request, session: Session, access: SystemAccess, cursor: str | None, limit: int
) -> catalog_api.ProductList:
    """The catalog's own search for the viewer's organisation's products."""
    return catalog_api.search(
        request,
        session,
        access.caller,
        q=None,
        tier=None,
        tag=None,
        publisher=access.caller.organization,
        cursor=cursor,
        limit=limit,
    )


@router.get("/products", include_in_schema=False)
def products(
    request: Request, session: SessionDep, access: Publishing, cursor: str | None = None
) -> Response:
    """My products, with records published per UTC day over the last DAYS days,
    counted only for products the policy lets the viewer publish to (its own)."""
    listing = _mine(request, session, access, cursor, PAGE_SIZE)
    policy = engine(request)
    owned = [
        product.slug
        for product in listing.products
        if policy.decide(
            access.caller.subject, catalog.describe(session, product.slug).resource, "publish"
        ).allowed
    ]
    today = utcnow().date()
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    counts = daily.published_per_day(session, owned, since=days[0])
    per_day = {slug: [counts.get(slug, {}).get(day, 0) for day in days] for slug in owned}
    return page(
        request,
        "publisher_products.html",
        listing=listing,
        days=days,
        per_day=per_day,
    )


class UsageLine:
    """One consumer organisation's reads of one product for one purpose."""

    def __init__(self, organization: str | None, purpose: str | None) -> None:
        self.organization = organization
        self.purpose = purpose
        self.allowed = 0
        self.records = 0
        self.denied = 0


def _by_product(rows: list[usage_api.UsageRow]) -> dict[str, list[UsageLine]]:
    """The API's rows (one per decision) folded into one line per organisation and
    purpose, allowed and denied side by side."""
    grouped: dict[str, dict[tuple[str | None, str | None], UsageLine]] = {}
    for row in rows:
        lines = grouped.setdefault(row.product, {})
        line = lines.setdefault(
            (row.organization, row.purpose), UsageLine(row.organization, row.purpose)
        )
        if row.decision == "allow":
            line.allowed += row.requests
            line.records += row.records
        else:
            line.denied += row.requests
    return {product: list(lines.values()) for product, lines in grouped.items()}


@router.get("/usage", include_in_schema=False)
def usage(
    request: Request,
    session: SessionDep,
    access: ReadUsage,
    product: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Who read my products, for which purpose, how much, and how often refused:
    the API's GET /v1/usage (audited as `usage.read`)."""
    found = usage_api.usage(
        request, session, access, product=product or None, since=None, until=None
    )
    return page(
        request,
        "publisher_usage.html",
        by_product=_by_product(found.usage),
        product=product or "",
    )


def _image_field(product: ProductPublic) -> str | None:
    return next((f.name for f in product.fields if f.type == FieldType.image_ref), None)


def _as_a_company(policy: PolicyEngine, described: Described, purpose: str) -> Preview:
    """The policy's decision for the simulated company of the module's docstring
    reading the product for the purpose (a grant for it only if the product is
    regulated). Not logged: no one made this request."""
    regulated = described.resource.tier == Tier.regulated
    granted = frozenset({purpose}) if regulated else frozenset()
    resource = replace(described.resource, granted=granted)
    return Preview(COMPANY, granted, policy.decide(COMPANY, resource, "read", purpose))


def _shows_companies(preview: Preview) -> bool:
    return preview.decision.allowed and preview.decision.view == "protected"


def _purposes(
    request: Request, session: Session, caller: Caller, product: str
) -> tuple[list[str], list[str]]:
    """The product's purposes the viewer may read it for, and of those the ones
    for which companies get a protected view (asked of the policy, not logged)."""
    described = catalog.describe(session, product)
    policy = engine(request)
    readable = [
        purpose
        for purpose in described.definition.purposes
        if policy.decide(caller.subject, described.resource, "read", purpose).allowed
    ]
    for_companies = [
        purpose
        for purpose in readable
        if _shows_companies(_as_a_company(policy, described, purpose))
    ]
    return readable, for_companies


@router.get("/images", include_in_schema=False)
def images(
    request: Request,
    session: SessionDep,
    access: Publishing,
    product: Annotated[str | None, Query(max_length=64)] = None,
    purpose: Purpose = None,
) -> Response:
    """A product of mine with an image field: its most recent records that carry an
    image reference, each shown raw and as companies would see it."""
    imaged = [
        found
        for found in _mine(request, session, access, None, MOST_PRODUCTS).products
        if _image_field(found) is not None
    ]
    chosen = next((found for found in imaged if found.slug == product), None)
    if product and chosen is None:
        raise NotFound(f"no product {product!r} of yours has images")
    context: dict[str, Any] = {"imaged": imaged, "chosen": None}
    if not imaged:
        return page(request, "publisher_images.html", **context)
    chosen = chosen or imaged[0]
    readable, for_companies = _purposes(request, session, access.caller, chosen.slug)
    context |= {"chosen": chosen, "readable": readable, "for_companies": for_companies}
    if not (purpose or readable):
        return page(request, "publisher_images.html", **context)
    purpose = purpose or (for_companies or readable)[0]
    reading = decide_access(
        session, request, access.caller, chosen.slug, purpose, "read", purpose_required=True
    )
    product_id = reading.described.product.id
    assert product_id is not None
    with refusals_logged(session, request, reading):
        found = records.read_page(
            session,
            request,
            reading,
            after=daily.newest_after(session, product_id, RECENT),
            since=None,
            until=None,
            filters=[],
            limit=RECENT,
        )
    field = _image_field(chosen)
    shown = [record for record in reversed(found.records) if record.get(field or "")]
    context |= {
        "field": field,
        "purpose": purpose,
        "preview": purpose in for_companies,
        "records": shown,
        "time_field": chosen.time_field,
    }
    return page(request, "publisher_images.html", **context)


@router.get("/images/{product}/{record_id}", include_in_schema=False)
def image(
    request: Request,
    session: SessionDep,
    access: Publishing,
    product: str,
    record_id: str,
    view: Literal["raw", "protected"],
    purpose: Purpose = None,
) -> Response:
    """The record's image from the API's image route: `raw` as the viewer's own
    decision gives it (refused, and logged, unless that is the raw view), or
    `protected` as companies would get it (an `image.preview`)."""
    reading = decide_access(
        session, request, access.caller, product, purpose, "read", purpose_required=True
    )
    if view == "raw":
        if reading.decision.view != "raw":
            with refusals_logged(session, request, reading):
                raise AccessDenied(
                    f"the raw image is only for those the policy gives the raw view of {product}",
                    hint="view=protected shows what companies get",
                )
        return images_api.read(request, session, reading, record_id)
    company = _as_a_company(engine(request), reading.described, reading.purpose)
    if not _shows_companies(company):
        with refusals_logged(session, request, reading, action=PREVIEW):
            raise NotFound(
                f"companies get no protected view of {product} for {reading.purpose}",
                hint="choose a purpose companies may read for",
            )
    return images_api.preview(request, session, reading, record_id, company)
