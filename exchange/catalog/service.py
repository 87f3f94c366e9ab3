"""Registering, changing, finding and describing data products. Services only flush."""

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from exchange.catalog.models import (
    Definition,
    Product,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
    ProductVersion,
)
from exchange.errors import Conflict, FieldError, NotFound, ValidationFailed
from exchange.identity.models import Organization
from exchange.timeutil import utcnow
from policies import Resource


@dataclass(frozen=True)
class Described:
    """A product with one version's definition and its publisher's slug."""

    product: Product
    version: int
    definition: Definition
    publisher: str

    @property
    def resource(self) -> Resource:
        return Resource(
            name=self.product.slug,
            tier=self.definition.tier.value,
            owner=self.publisher,
            purposes=frozenset(self.definition.purposes),
        )

    def public(self) -> ProductPublic:
        return ProductPublic(
            **self.definition.model_dump(),
            slug=self.product.slug,
            version=self.version,
            publisher=self.publisher,
            record_count=self.product.record_seq,
            created_at=self.product.created_at,
            updated_at=self.product.updated_at,
        )


def _apply_current(product: Product, definition: Definition) -> None:
    product.tier = definition.tier.value
    product.title = definition.title
    product.description = definition.description
    product.tags_index = "," + ",".join(definition.tags) + "," if definition.tags else ""


def register(session: Session, owner: Organization, data: ProductCreate, author: str) -> Described:
    """Raises Conflict if the slug is taken."""
    if session.scalar(select(Product.id).where(Product.slug == data.slug)):
        raise Conflict(f"product {data.slug!r} already exists")
    definition = Definition.model_validate(data.model_dump(exclude={"slug"}))
    product = Product(slug=data.slug, owner_id=owner.id, current_version=1, tier="", title="")
    _apply_current(product, definition)
    session.add(product)
    session.flush()
    session.add(
        ProductVersion(
            product_id=product.id,
            version=1,
            definition=definition.model_dump(mode="json"),
            created_by=author,
        )
    )
    session.flush()
    return Described(product, 1, definition, owner.slug)


def update(session: Session, described: Described, data: ProductUpdate, author: str) -> Described:
    """A new version from the current one and the given changes; older versions stay.

    Raises ValidationFailed if the changed definition is not valid as a whole.
    """
    changes = data.model_dump(exclude_unset=True, mode="json")
    merged = {**described.definition.model_dump(mode="json"), **changes}
    if "fields" in changes and "time_field" not in changes:
        merged["time_field"] = None
    try:
        definition = Definition.model_validate(merged)
    except ValidationError as error:
        raise ValidationFailed(
            "the changed product is not valid",
            errors=[
                FieldError(reason=e["msg"], field=".".join(str(p) for p in e["loc"]) or None)
                for e in error.errors()
            ],
        ) from error
    product = session.scalar(
        select(Product).where(Product.id == described.product.id).with_for_update()
    )
    assert product is not None
    product.current_version += 1
    product.updated_at = utcnow()
    _apply_current(product, definition)
    session.add(
        ProductVersion(
            product_id=product.id,
            version=product.current_version,
            definition=definition.model_dump(mode="json"),
            created_by=author,
        )
    )
    session.flush()
    return Described(product, product.current_version, definition, described.publisher)


def describe(session: Session, slug: str, version: int | None = None) -> Described:
    """The product at `version` (default: current). Raises NotFound."""
    row = session.execute(
        select(Product, Organization.slug)
        .join(Organization, Organization.id == Product.owner_id)
        .where(Product.slug == slug)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no product {slug!r}")
    product, publisher = row
    wanted = version or product.current_version
    stored = session.scalar(
        select(ProductVersion.definition).where(
            ProductVersion.product_id == product.id, ProductVersion.version == wanted
        )
    )
    if stored is None:
        raise NotFound(f"product {slug!r} has no version {wanted}")
    return Described(product, wanted, Definition.model_validate(stored), publisher)


def _current() -> Any:
    """Products with their publisher and current definition, in registration order."""
    return (
        select(Product, Organization.slug, ProductVersion.definition)
        .join(Organization, Organization.id == Product.owner_id)
        .join(
            ProductVersion,
            (ProductVersion.product_id == Product.id)
            & (ProductVersion.version == Product.current_version),
        )
        .order_by(Product.id)
    )


def search(
    session: Session,
    *,
    q: str | None,
    tier: str | None,
    tag: str | None,
    publisher: str | None,
    after: int | None,
    limit: int,
) -> list[Described]:
    """Products matching every given filter, in registration order."""
    query = _current().limit(limit)
    if after is not None:
        query = query.where(Product.id > after)
    if q:
        text = q.lower()
        query = query.where(
            or_(
                func.lower(column).contains(text, autoescape=True)
                for column in (Product.slug, Product.title, Product.description)
            )
        )
    if tier:
        query = query.where(Product.tier == tier)
    if tag:
        query = query.where(Product.tags_index.contains(f",{tag},", autoescape=True))
    if publisher:
        query = query.where(Organization.slug == publisher)
    return [
        Described(product, product.current_version, Definition.model_validate(definition), org)
        for product, org, definition in session.execute(query)
    ]


def with_subject_kind(session: Session, kind: str) -> list[Described]:
    """The products whose current definition declares a subject key of `kind`, in
    registration order. The catalog is small (products, not records), so the
    definitions are read whole rather than indexed."""
    found = []
    for product, org, stored in session.execute(_current()):
        if stored.get("subject_kind") == kind:
            definition = Definition.model_validate(stored)
            found.append(Described(product, product.current_version, definition, org))
    return found
