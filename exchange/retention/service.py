"""Removing data: records past their product's retention, and whole products.

Retention is counted from a record's event time (when it was captured), or its
publication time if it has none. A sweep deletes the rows and their images and
writes one audit entry per product that lost records, saying how many and up to
when. Erasing a product destroys its data key and rotates the master key that
wrapped it — once the old master's file is deleted, no copy of the product's
sealed fields and images anywhere (backups, replicas, old disk blocks) can be
opened — then deletes its rows. Its catalog entry and its
audit history stay, as the record that it existed and was erased.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from exchange.auditing.trail import Actor, Origin, record
from exchange.catalog import service as catalog
from exchange.catalog.models import Product
from exchange.errors import Gone
from exchange.images.models import RecordImage
from exchange.keyring.master import MasterKeys
from exchange.keyring.service import destroy, rotate
from exchange.records.models import Record
from exchange.timeutil import to_rfc3339, utcnow

_CHUNK = 500
SERVER = Origin(request_id=None, client_address="server")


@dataclass(frozen=True)
class Removed:
    product: str
    records: int
    images: int
    cutoff: datetime | None


def _delete(session: Session, product_id: int, rows: list[tuple[int, str]]) -> int:
    """Delete these records and their images; how many images went."""
    images = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        ids = [record_id for _, record_id in chunk]
        images += session.execute(
            delete(RecordImage).where(
                RecordImage.product_id == product_id, RecordImage.record_id.in_(ids)
            )
        ).rowcount
        session.execute(delete(Record).where(Record.id.in_([row_id for row_id, _ in chunk])))
    return images


def sweep(session: Session, where: Origin, now: datetime) -> list[Removed]:
    """Delete every product's records older than its retention (caller commits)."""
    removed = []
    for slug in session.scalars(select(Product.slug).order_by(Product.id)).all():
        described = catalog.describe(session, slug)
        days = described.definition.retention_days
        cutoff = now - timedelta(days=days)
        product_id = described.product.id
        assert product_id is not None
        # Sweeps in several workers queue on the product row; the later one finds nothing.
        session.execute(select(Product.id).where(Product.id == product_id).with_for_update())
        old = session.execute(
            select(Record.id, Record.record_id, Record.seq).where(
                Record.product_id == product_id,
                func.coalesce(Record.event_time, Record.published_at) < cutoff,
            )
        ).all()
        if not old:
            continue
        images = _delete(session, product_id, [(row_id, record_id) for row_id, record_id, _ in old])
        record(
            session,
            where,
            None,
            action="retention",
            allowed=True,
            reason=f"older than the product's retention of {days} days",
            product=slug,
            seqs=[seq for _, _, seq in old],
            details={"cutoff": to_rfc3339(cutoff), "records": len(old), "images": images},
        )
        removed.append(Removed(slug, len(old), images, cutoff))
    return removed


def sweep_in(engine: Engine) -> None:
    """The server's own sweep (every EXCHANGE_RETENTION_INTERVAL_SECONDS)."""
    with Session(engine) as session:
        sweep(session, SERVER, utcnow())
        session.commit()


def erase(
    session: Session,
    where: Origin,
    actor: Actor | None,
    slug: str,
    reason: str,
    masters: MasterKeys,
) -> Removed:
    """Crypto-shred a product: destroy its data key, move every other product's key
    to a new master key (the caller commits, then `keyring.retire` deletes the old
    master, and with it the last way to open this product's key from a backup),
    then delete its records and images. Raises NotFound, or Gone if it was
    erased already."""
    described = catalog.describe(session, slug)
    product_id = described.product.id
    assert product_id is not None
    # Publishers and image uploads hold this lock while they seal: none is half-way.
    session.execute(select(Product.id).where(Product.id == product_id).with_for_update())
    if not destroy(session, product_id, reason):
        raise Gone(f"{slug} was erased already")
    rows = session.execute(
        select(Record.id, Record.record_id).where(Record.product_id == product_id)
    ).all()
    images = _delete(session, product_id, [(row_id, record_id) for row_id, record_id in rows])
    rotated = rotate(session, masters)
    record(
        session,
        where,
        actor,
        action="product.erase",
        allowed=True,
        reason=reason,
        product=slug,
        record_count=len(rows),
        details={
            "records": len(rows),
            "images": images,
            "data_key": "destroyed",
            "master_key": {"from": rotated.previous, "to": rotated.current},
        },
    )
    return Removed(slug, len(rows), images, None)
