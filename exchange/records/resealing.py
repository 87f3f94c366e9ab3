"""Storing a product's rows again when what is sealed changes.

- A product update that moves a field into or out of the clear (a sensitivity
  changed, a field added or dropped) reseals the product's rows in the same
  transaction, so no value stays in the clear that the definition now protects,
  and filters find every row. So does one that changes the subject field or its
  kind: every row's subject key is computed again.
- Records stored before encryption at rest existed (migration 0004) hold every
  field in the clear and an unkeyed content hash. The `exchange` commands that
  migrate (`db upgrade`, `serve`, `demo`) seal them right after the migration,
  with one audit entry per product. On a database that never had such rows this
  finds nothing.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.auditing.trail import Origin, record
from exchange.catalog.models import Definition, Product, ProductVersion
from exchange.keyring.service import Keyring
from exchange.records.models import Record
from exchange.records.sealed import Layout, reseal


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
        reseal(key, layout, rows, legacy=True)
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


def reseal_product(
    session: Session, keyring: Keyring, product_id: int, before: Definition, after: Definition
) -> int:
    """Reseal the product's rows if `after` keeps other fields in the clear than
    `before`, or another subject key; how many rows (0 if nothing changed). The caller commits."""
    layout = Layout.of(after)
    if layout == Layout.of(before):
        return 0
    key = keyring.for_writing(session, product_id)
    rows = session.scalars(
        select(Record).where(Record.product_id == product_id).execution_options(yield_per=1000)
    )
    count = reseal(key, layout, rows)
    session.flush()
    return count
