"""Feed health as Prometheus metrics (text exposition format 0.0.4), for operators
and auditors: `read` on `system:metrics`. Computed from the outbox on each
scrape, so the figures cannot drift from what is queued."""

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from exchange.auth import SystemAccess, system_access
from exchange.db import SessionDep
from exchange.feeds import service
from exchange.feeds.models import Subscription
from exchange.timeutil import as_utc, utcnow

router = APIRouter(tags=["health"])

ReadMetrics = Annotated[SystemAccess, system_access("metrics", "read")]

_GAUGES = (
    ("exchange_feed_events_waiting", "Events queued and not yet delivered."),
    ("exchange_feed_oldest_waiting_seconds", "Age of the oldest event waiting."),
    ("exchange_feed_dead_letters", "Events out of retries, waiting for redelivery."),
    ("exchange_feed_events_delivered", "Events delivered (or pulled and acknowledged)."),
    ("exchange_feed_failed_attempts", "Failed attempts at the batch now at the head."),
    ("exchange_feed_last_success_timestamp_seconds", "When a delivery last succeeded."),
    ("exchange_feed_suspended", "1 if the subscription is suspended (a refused decision)."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(session: SessionDep, _access: ReadMetrics) -> PlainTextResponse:
    """Per subscription: lag (events waiting, oldest age), dead letters, delivered,
    failed attempts, last success, suspension."""
    rows = list(session.scalars(select(Subscription).order_by(Subscription.id)))
    health = service.health(session, [row.id for row in rows if row.id is not None])
    now = utcnow()
    values: dict[str, list[str]] = {name: [] for name, _ in _GAUGES}
    for row in rows:
        assert row.id is not None
        found = health[row.id]
        labels = (
            f'subscription="{row.id}",organization="{_label(row.organization)}",'
            f'product="{_label(row.product)}",delivery="{row.delivery}"'
        )
        oldest = found.oldest_pending_at
        success = row.last_success_at
        figures = (
            found.pending,
            (now - as_utc(oldest)).total_seconds() if oldest else 0.0,
            found.dead,
            found.delivered,
            row.attempts,
            as_utc(success).timestamp() if success else 0.0,
            1 if row.status == "suspended" else 0,
        )
        for (name, _), figure in zip(_GAUGES, figures, strict=True):
            values[name].append(f"{name}{{{labels}}} {figure}")
    lines = []
    for name, help_text in _GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *values[name]]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
