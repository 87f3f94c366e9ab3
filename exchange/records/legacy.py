"""Sealing records stored before encryption at rest existed (migration 0004).

Such rows hold every field in the clear and an unkeyed content hash. The
`exchange` commands that migrate (`db upgrade`, `serve`, `demo`) seal them right
after the migration, under each product's data key, with one audit entry per
product; afterwards every record reads the same way. On a database that never
had such rows this finds nothing.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.auditing.trail import Origin, record
from exchange.catalog.models import Definition, Product, ProductVersion
from exchange.keyring.service import Keyring
from exchange.records.models import Record
from exchange.records.sealed import Layout, seal


def seal_unsealed(session: Session, keyring: Keyring, where: Origin) -> dict[str, int]:
    """Records sealed now, by product slug (the caller commits)."""
    sealed: dict[str, int] = {}
    pending = select(Record.product_id).where(Record.sealed.is_(None)).distinct()  # type: ignore[union-attr]
    for product_id in session.scalars(pending).all():
        product, stored = session.execute(
            select(Product, ProductVersion.definition)
            .join(ProductVersion, ProductVersion.product_id == Product.id)
            .where(Product.id == product_id, ProductVersion.version == Product.current_version)
        ).one()
        layout = Layout.of(Definition.model_validate(stored))
        key = keyring.for_writing(session, product_id)
        rows = session.scalars(
            select(Record).where(Record.product_id == product_id, Record.sealed.is_(None))  # type: ignore[union-attr]
        ).all()
        for row in rows:
            content = dict(row.content)
            at_rest = seal(layout, key, row.record_id, content)
            row.content, row.sealed, row.blind = at_rest.content, at_rest.sealed, at_rest.blind
            row.content_hash = key.content_hash(content)
        record(
            session,
            where,
            None,
            action="records.seal",
            allowed=True,
            reason="records stored before encryption at rest, sealed after the migration",
            product=product.slug,
            seqs=[row.seq for row in rows],
        )
        sealed[product.slug] = len(rows)
    session.flush()
    return sealed
