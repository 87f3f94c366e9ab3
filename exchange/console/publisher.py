"""The publisher's pages: my products and what was published per day, who used my
data and for what, and my records' images next to what companies see of them.

Every page is the publisher's own decision: `register` on `system:catalog` (the
publisher role) for products and images, `read` on `system:usage` for usage, each
logged when refused. Images are served by the API's image route for the
publisher's own read decision (`read` on the product, logged), so the raw photo
is only for whom the policy gives the raw view (the owner).

The redaction preview is that same route and the same redaction code, for an
access narrowed to the protected view the policy gives companies: the policy is
asked what an enterprise subscriber (of no organisation in particular, holding a
grant where the tier needs one) would get for the purpose, and each sensitivity
takes the more protective of that and the publisher's own treatment, so the
preview can never show more than the publisher's decision allows. The read is
audited as the publisher's, in the protected view, with its redaction receipt.
"""

from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from exchange.auditing import usage as usage_api
from exchange.auth import Caller, SystemAccess, engine
from exchange.catalog import router as catalog_api
from exchange.catalog import service as catalog
from exchange.catalog.access import ProductAccess, ReadAccess, refusals_logged
from exchange.catalog.models import FieldType, ProductPublic
from exchange.console.pages import ConsoleRoute, page
from exchange.console.session import ConsoleCaller, console_access, section_entry
from exchange.db import SessionDep
from exchange.errors import AccessDenied, NotFound
from exchange.images import router as images_api
from exchange.records import daily
from exchange.records import service as records
from exchange.timeutil import utcnow
from policies import Decision, Subject
from policies.decision import SENSITIVITIES, TREATMENTS_MOST_PROTECTIVE_FIRST, UNSHAPED

router = APIRouter(prefix="/console/publisher", route_class=ConsoleRoute, tags=["console"])

PAGES = (
    ("/console/publisher/products", "catalog", "register"),
    ("/console/publisher/usage", "usage", "read"),
    ("/console/publisher/images", "catalog", "register"),
)
TABS = (
    ("/console/publisher/products", "My products", "我的数据产品"),
    ("/console/publisher/usage", "Usage", "使用情况"),
    ("/console/publisher/images", "Images", "图像"),
)
DAYS = 14
PAGE_SIZE = 25
MOST_PRODUCTS = 200  # the catalog's largest page: the images page's choice of product
RECENT = 6  # records shown with their images; each image shown is an audited read
# Whom the preview shows: a company subscribing, of no organisation (so no line
# naming one, and never the owner's `@own`).
COMPANY = Subject("console:company-preview", "", "enterprise", frozenset({"subscriber"}))

Publishing = Annotated[SystemAccess, console_access("catalog", "register")]
ReadUsage = Annotated[SystemAccess, console_access("usage", "read")]
_read_access = get_args(ReadAccess)[1].dependency  # the API's own: decided, refusals logged


@router.get("", include_in_schema=False)
def entry(request: Request, session: SessionDep, caller: ConsoleCaller) -> Response:
    return section_entry(request, session, caller, PAGES)


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
        tabs=TABS,
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
        tabs=TABS,
        by_product=_by_product(found.usage),
        product=product or "",
    )


def _image_field(product: ProductPublic) -> str | None:
    return next((f.name for f in product.fields if f.type == FieldType.image_ref), None)


def _as_a_company(request: Request, access: ProductAccess) -> Decision:
    """The policy's decision for a company reading the product for the access's
    purpose, holding a grant for it where the tier asks for one."""
    described = access.described
    resource = replace(described.resource, granted=frozenset(described.definition.purposes))
    return engine(request).decide(COMPANY, resource, "read", access.purpose)


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
    granted = replace(described.resource, granted=frozenset(described.definition.purposes))
    for_companies = [
        purpose
        for purpose in readable
        if (decision := policy.decide(COMPANY, granted, "read", purpose)).allowed
        and decision.view == "protected"
    ]
    return readable, for_companies


def _narrowed(access: ProductAccess, company: Decision) -> ProductAccess:
    """The publisher's access in the protected view companies get: per sensitivity
    the more protective of the two treatments (never more than the publisher's)."""
    rank = TREATMENTS_MOST_PROTECTIVE_FIRST.index
    own = access.decision.treatments
    treatments = {
        sensitivity: min(
            own.get(sensitivity, UNSHAPED),
            company.treatments.get(sensitivity, UNSHAPED),
            key=rank,
        )
        for sensitivity in SENSITIVITIES
    }
    decision = replace(
        access.decision,
        view="protected",
        treatments=treatments,
        reason=f"{access.decision.reason}; shown as companies see it ({company.reason})",
    )
    return replace(access, decision=decision)


@router.get("/images", include_in_schema=False)
def images(
    request: Request,
    session: SessionDep,
    access: Publishing,
    product: Annotated[str | None, Query(max_length=64)] = None,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
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
    context: dict[str, Any] = {"tabs": TABS, "imaged": imaged, "chosen": None}
    if not imaged:
        return page(request, "publisher_images.html", **context)
    chosen = chosen or imaged[0]
    readable, for_companies = _purposes(request, session, access.caller, chosen.slug)
    context |= {"chosen": chosen, "readable": readable, "for_companies": for_companies}
    if not (purpose or readable):
        return page(request, "publisher_images.html", **context)
    purpose = purpose or (for_companies or readable)[0]
    reading = _read_access(request, session, access.caller, chosen.slug, purpose)
    after = max(chosen.record_count - RECENT, 0)
    with refusals_logged(session, request, reading):
        found = records.read_page(
            session,
            request,
            reading,
            after=after or None,
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
    purpose: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The record's image from the API's image route: `raw` as the viewer's own
    decision gives it (refused, and logged, unless that is the raw view), or
    `protected` as companies would get it."""
    reading = _read_access(request, session, access.caller, product, purpose)
    if view == "raw":
        if reading.decision.view != "raw":
            with refusals_logged(session, request, reading):
                raise AccessDenied(
                    f"the raw image is only for those the policy gives the raw view of {product}",
                    hint="view=protected shows what companies get",
                )
        return images_api.read(request, session, reading, record_id)
    company = _as_a_company(request, reading)
    if not company.allowed or company.view != "protected":
        with refusals_logged(session, request, reading):
            raise NotFound(
                f"companies get no protected view of {product} for {reading.purpose}",
                hint="choose a purpose companies may read for",
            )
    return images_api.read(request, session, _narrowed(reading, company), record_id)
