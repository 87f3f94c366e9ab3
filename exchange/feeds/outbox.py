"""The transactional outbox: a published record's events are written in the
publishing transaction, under the product row's lock, so a record never commits
without its events nor an event without its record, and each subscription's
events are numbered densely in publication order."""

from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from exchange.feeds import filters
from exchange.feeds.models import FeedEvent, Subscription
from exchange.timeutil import utcnow

ENQUEUED = "feeds.enqueued"
CHANNEL = "exchange_feeds"


def enqueue(
    session: Session,
    product_id: int,
    time_field: str | None,
    published: list[tuple[int, dict[str, Any]]],
) -> int:
    """Events for every subscription of the product whose filter a new record
    (seq, validated content) passes — paused and suspended ones too, so nothing is
    missed while they wait. The caller holds the product row's lock. How many."""
    subscriptions = session.execute(
        select(Subscription.id, Subscription.event_seq, Subscription.filter).where(
            Subscription.product_id == product_id
        )
    ).all()
    now = utcnow()
    rows = []
    for subscription_id, last, stored_filter in subscriptions:
        seqs = [
            seq for seq, content in published if filters.matches(stored_filter, content, time_field)
        ]
        if not seqs:
            continue
        rows.extend(
            {
                "subscription_id": subscription_id,
                "seq": last + offset,
                "product_id": product_id,
                "record_seq": record_seq,
                "state": "pending",
                "created_at": now,
            }
            for offset, record_seq in enumerate(seqs, start=1)
        )
        session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id)
            .values(event_seq=last + len(seqs))
        )
    if rows:
        session.execute(insert(FeedEvent), rows)
        session.info[ENQUEUED] = True
        if session.get_bind().dialect.name == "postgresql":  # heard by every process at commit
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    return len(rows)
