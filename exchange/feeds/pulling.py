"""Pull subscriptions: events after a cursor, waiting a while for new ones.

The cursor is an event number. Passing one acknowledges every event up to it
(the subscription's lag counts from there), and any retained earlier point can be
passed again to replay. While waiting the request holds no transaction, so it
blocks no writer, and no thread: the wait is on the event loop, for the
doorbell (rung by publishes that queue events) or a quarter second, so a thousand waiting pulls do
not starve the thread pool that every other request needs.
"""

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from exchange.catalog.access import ProductAccess, refusals_logged
from exchange.db import sqlite_reader
from exchange.feeds import reading
from exchange.feeds.models import FeedEvent, Subscription
from exchange.timeutil import utcnow

_RECHECK_SECONDS = 0.25  # for events queued by another process on SQLite


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


def _acknowledge(session: Session, row: Subscription, after: int) -> None:
    session.execute(
        update(FeedEvent)
        .where(
            FeedEvent.subscription_id == row.id,
            FeedEvent.seq <= after,
            FeedEvent.state == "pending",
        )
        .values(state="delivered", delivered_at=utcnow())
    )


def _waiting(session: Session, row: Subscription, after: int, limit: int) -> list[FeedEvent]:
    """The events after the cursor; with none, the transaction ends (no lock held)."""
    events = _after(session, row, after, limit)
    if not events:
        session.commit()
    return events


_PEEK = (
    "SELECT 1 FROM feed_event WHERE subscription_id = ? AND seq > ? AND state != 'withheld' LIMIT 1"
)


def _any_after(session: Session, row: Subscription, after: int) -> bool:
    """Whether events arrived, asked without a write lock: on SQLite every session
    transaction takes the write lock (`db.py`), so a waiting pull looks through a
    read-only connection, as a WAL reader that blocks nobody."""
    engine = session.get_bind()
    if engine.dialect.name != "sqlite":
        found = _after(session, row, after, 1)
        session.commit()
        return bool(found)
    with sqlite_reader(engine) as reader:
        return reader.execute(_PEEK, (row.id, after)).fetchone() is not None


def _shown(
    session: Session,
    request: Request,
    access: ProductAccess,
    row: Subscription,
    events: list[FeedEvent],
    start: int,
) -> Pulled:
    details = {"subscription": row.id, "events": [events[0].seq, events[-1].seq] if events else []}
    with refusals_logged(session, request, access, action="pull"):
        shown = reading.shown(
            session, request, request.app.state, access, row, events, action="pull", details=details
        )
    if shown.outside_scope:
        session.execute(
            update(FeedEvent).where(FeedEvent.id.in_(shown.outside_scope)).values(state="withheld")
        )
    return Pulled(shown.header, shown.events, events[-1].seq if events else start)


async def pull(
    session: Session,
    request: Request,
    access: ProductAccess,
    row: Subscription,
    *,
    after: int | None,
    wait: float,
    limit: int,
) -> Pulled:
    """Events after the cursor, waiting up to `wait` seconds for some; viewed and audited."""
    start = after or 0
    if after is not None:
        await run_in_threadpool(_acknowledge, session, row, after)
    doorbell = request.app.state.doorbell
    deadline = time.monotonic() + wait
    events = await run_in_threadpool(_waiting, session, row, start, limit)
    while not events and (left := deadline - time.monotonic()) > 0:
        await doorbell.wait_async(min(left, _RECHECK_SECONDS))
        if await run_in_threadpool(_any_after, session, row, start):
            events = await run_in_threadpool(_waiting, session, row, start, limit)
    return await run_in_threadpool(_shown, session, request, access, row, events, start)
