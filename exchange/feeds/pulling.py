"""Pull subscriptions: events after a cursor, waiting a while for new ones.

The cursor is an event number. Passing one acknowledges every event up to it
(the subscription's lag counts from there), and any retained earlier point can be
passed again to replay. While waiting the request holds no transaction, so it
blocks no writer; it wakes when a publish in this process queues events, or
polls.
"""

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exchange.catalog.access import ProductAccess
from exchange.feeds import reading
from exchange.feeds.models import FeedEvent, Subscription
from exchange.timeutil import utcnow

_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Pulled:
    header: dict[str, Any]
    events: list[dict[str, Any]]
    last: int


def _after(session: Session, row: Subscription, after: int, limit: int) -> list[FeedEvent]:
    return list(
        session.scalars(
            select(FeedEvent)
            .where(
                FeedEvent.subscription_id == row.id,
                FeedEvent.seq > after,
                FeedEvent.state != "withheld",
            )
            .order_by(FeedEvent.seq)
            .limit(limit)
        )
    )


def pull(
    session: Session,
    request: Request,
    access: ProductAccess,
    row: Subscription,
    *,
    after: int | None,
    wait: float,
    limit: int,
) -> Pulled:
    state = request.app.state
    start = after or 0
    if after is not None:
        session.execute(
            update(FeedEvent)
            .where(
                FeedEvent.subscription_id == row.id,
                FeedEvent.seq <= after,
                FeedEvent.state == "pending",
            )
            .values(state="delivered", delivered_at=utcnow())
        )
    deadline = time.monotonic() + wait
    events = _after(session, row, start, limit)
    while not events and time.monotonic() < deadline:
        session.commit()  # the acknowledgement stays; no lock is held while waiting
        state.doorbell.wait(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        events = _after(session, row, start, limit)
    details = {"subscription": row.id, "events": [events[0].seq, events[-1].seq] if events else []}
    shown = reading.shown(
        session, request, state, access, row, events, action="pull", details=details
    )
    if shown.outside_scope:
        session.execute(
            update(FeedEvent).where(FeedEvent.id.in_(shown.outside_scope)).values(state="withheld")
        )
    return Pulled(shown.header, shown.events, events[-1].seq if events else start)
