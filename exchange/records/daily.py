"""How many records each product received per UTC day of publication, and where
its newest records begin.

Read-only, counts and sequence numbers only: no record's content, sealed or
clear, is touched, so it needs no data key and reveals nothing a record holds.
Callers decide first who may see a product's publishing activity (its owner:
`publish` on the product), and read the records themselves through the records
service, under a read decision.

The day is the UTC calendar day of `published_at`. PostgreSQL stores it with its
zone and is asked for the day in UTC; SQLite keeps the UTC time without a zone,
so its date is the UTC day already.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.orm import Session

from exchange.catalog.models import Product
from exchange.records.models import Record


def published_per_day(
    session: Session, products: Sequence[str], *, since: date
) -> dict[str, dict[date, int]]:
    """Product slug → {UTC day: records published that day}, from `since` (inclusive)
    on; days without records are absent, and so are unknown slugs."""
    if not products:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        day = cast(func.timezone(literal_column("'UTC'"), Record.published_at), Date)
    else:
        day = func.date(Record.published_at)
    query = (
        select(Product.slug, day, func.count())
        .join(Product, Product.id == Record.product_id)
        .where(
            Product.slug.in_(products),
            Record.published_at >= datetime.combine(since, time.min, tzinfo=UTC),
        )
        .group_by(Product.slug, day)
    )
    counts: dict[str, dict[date, int]] = {}
    for slug, when, count in session.execute(query):
        moment = when if isinstance(when, date) else date.fromisoformat(when)
        counts.setdefault(slug, {})[moment] = count
    return counts


def newest_after(session: Session, product_id: int, count: int) -> int | None:
    """The read cursor (`after`, a seq) from which the product's `count` newest
    records follow; None where it holds no more than `count` (read from the start).
    Taken from the records there are, so erased or expired ones leave no gap."""
    nth = session.scalar(
        select(Record.seq)
        .where(Record.product_id == product_id)
        .order_by(Record.seq.desc())
        .offset(count - 1)
        .limit(1)
    )
    return None if nth is None else nth - 1
