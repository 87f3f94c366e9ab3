"""How many records each product received per UTC day of publication.

Read-only, and counts only: no record's content, sealed or clear, is touched, so
it needs no data key and reveals nothing a record holds. Callers decide first who
may see a product's publishing activity (its owner: `publish` on the product).

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
