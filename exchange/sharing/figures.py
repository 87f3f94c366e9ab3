"""Sharing performance figures, per product and per publishing organisation.

What a city can publish about each department's handling of shared data, over a
window of time, computed on each call from the facts themselves — never from
counters that could drift from them:

- access requests (the request records): received in the window, answered,
  answered by their due time, overdue (answered late, or still pending past it),
  the median time to a reply, and the stewards' refusals with their reasons;
- refused accesses (the audit log's deny entries on the product), by reason;
  and the reads the product answered (allowed read entries) and records shared;
- feed delivery (the delivery attempts and the outbox): the share of webhook
  attempts that succeeded, and the lag from a record's publication to its
  delivery (or, pulled, its acknowledgement);
- freshness (the records): how many were published in the window, and for those
  with a time of their own (a capture's), the time from it to publication.

Reads answered are direct reads (the records API, linkage parts); what feeds
delivered is in the delivery figures, since a webhook batch retried would count
its records again.

An organisation's figures pool the raw values of the products it publishes, so
its medians are medians of the pooled values, not of the products' medians.
Retention deletes records and their feed events, so a window older than a
product's retention shows no freshness or lag for it.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.store import AuditEntry
from exchange.catalog.models import Product
from exchange.feeds.models import DeliveryAttempt, FeedEvent, Subscription
from exchange.grants.models import AccessRequest
from exchange.identity.models import Organization
from exchange.records.models import Record
from exchange.timeutil import as_utc, to_rfc3339

REASONS_SHOWN = 10


class Reason(BaseModel):
    source: str = Field(description="access_request (a steward's refusal) or policy.")
    reason: str
    count: int


class Figures(BaseModel):
    requests_received: int
    requests_answered: int
    answered_within_deadline: int
    overdue: int
    pending: int
    median_reply_hours: float | None
    requests_refused: int
    accesses_refused: int
    refusal_reasons: list[Reason] = Field(description=f"The {REASONS_SHOWN} most frequent.")
    reads_answered: int
    records_shared: int
    delivery_attempts: int
    deliveries_succeeded: int
    delivery_success_rate: float | None
    events_delivered: int
    median_delivery_lag_seconds: float | None
    max_delivery_lag_seconds: float | None
    records_published: int
    median_freshness_seconds: float | None
    max_freshness_seconds: float | None


class ProductFigures(Figures):
    product: str
    organization: str


class OrganizationFigures(Figures):
    organization: str
    products: list[str]


class SharingReport(BaseModel):
    window: dict[str, str | None] = Field(description="from (inclusive) and to (exclusive).")
    as_of: str = Field(description="The moment pending requests were judged overdue at.")
    products: list[ProductFigures]
    organizations: list[OrganizationFigures]


@dataclass
class _Facts:
    """The raw values behind one product's (or organisation's) figures."""

    received: int = 0
    pending: int = 0
    overdue: int = 0
    on_time: int = 0
    replies: list[float] = field(default_factory=list)
    refused_requests: int = 0
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused_accesses: int = 0
    reads: int = 0
    shared: int = 0
    attempts: int = 0
    succeeded: int = 0
    lags: list[float] = field(default_factory=list)
    published: int = 0
    freshness: list[float] = field(default_factory=list)

    def add(self, other: "_Facts") -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, Counter):
                mine.update(value)
            elif isinstance(mine, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)

    def figures(self) -> dict[str, Any]:
        return {
            "requests_received": self.received,
            "requests_answered": len(self.replies),
            "answered_within_deadline": self.on_time,
            "overdue": self.overdue,
            "pending": self.pending,
            "median_reply_hours": _median(hours for hours in self.replies),
            "requests_refused": self.refused_requests,
            "accesses_refused": self.refused_accesses,
            "refusal_reasons": [
                Reason(source=source, reason=reason, count=count)
                for (source, reason), count in sorted(
                    self.reasons.items(), key=lambda item: (-item[1], item[0])
                )[:REASONS_SHOWN]
            ],
            "reads_answered": self.reads,
            "records_shared": self.shared,
            "delivery_attempts": self.attempts,
            "deliveries_succeeded": self.succeeded,
            "delivery_success_rate": round(self.succeeded / self.attempts, 4)
            if self.attempts
            else None,
            "events_delivered": len(self.lags),
            "median_delivery_lag_seconds": _median(self.lags),
            "max_delivery_lag_seconds": round(max(self.lags), 3) if self.lags else None,
            "records_published": self.published,
            "median_freshness_seconds": _median(self.freshness),
            "max_freshness_seconds": round(max(self.freshness), 3) if self.freshness else None,
        }


def _median(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(median(values), 3) if values else None


def _seconds(later: datetime, earlier: datetime) -> float:
    return (as_utc(later) - as_utc(earlier)).total_seconds()


def _within(column: Any, since: datetime | None, until: datetime) -> list[Any]:
    return [column < until, *([column >= since] if since is not None else [])]


def _requests(
    session: Session, facts: dict[str, _Facts], since: datetime | None, until: datetime
) -> None:
    """Requests received in the window, judged at `until`: a request for a
    cross-check counts for both of its products."""
    rows = session.scalars(
        select(AccessRequest).where(*_within(AccessRequest.created_at, since, until))
    )
    for row in rows:
        due = as_utc(row.due_at)
        decided = as_utc(row.decided_at) if row.decided_at else None
        if decided is not None and decided >= until:
            decided = None  # answered after the window: pending as of its end
        for product in filter(None, (row.product, row.partner)):
            if product not in facts:
                continue
            fact = facts[product]
            fact.received += 1
            if decided is None:
                fact.pending += 1
                fact.overdue += due < until
                continue
            fact.replies.append(_seconds(decided, row.created_at) / 3600)
            if decided <= due:
                fact.on_time += 1
            else:
                fact.overdue += 1
            if row.status == "denied":
                fact.refused_requests += 1
                fact.reasons[("access_request", row.decision_reason or "")] += 1


def _audited(
    session: Session, facts: dict[str, _Facts], since: datetime | None, until: datetime
) -> None:
    """Reads answered and accesses refused, from the audit log."""
    window = _within(AuditEntry.recorded_at, since, until)
    reads = session.execute(
        select(
            AuditEntry.product, func.count(), func.coalesce(func.sum(AuditEntry.record_count), 0)
        )
        .where(AuditEntry.action == "read", AuditEntry.decision == "allow", *window)
        .group_by(AuditEntry.product)
    )
    for product, count, records in reads:
        if product in facts:
            facts[product].reads += count
            facts[product].shared += int(records)
    refusals = session.execute(
        select(AuditEntry.product, AuditEntry.reason, func.count())
        .where(AuditEntry.decision == "deny", AuditEntry.product.is_not(None), *window)
        .group_by(AuditEntry.product, AuditEntry.reason)
    )
    for product, reason, count in refusals:
        if product in facts:
            facts[product].refused_accesses += count
            facts[product].reasons[("policy", reason)] += count


def _feeds(
    session: Session, facts: dict[str, _Facts], since: datetime | None, until: datetime
) -> None:
    """Webhook attempts and their outcomes; each event's lag from its record's
    publication to its delivery (or acknowledgement)."""
    attempts = session.execute(
        select(Subscription.product, DeliveryAttempt.outcome, func.count())
        .join(Subscription, Subscription.id == DeliveryAttempt.subscription_id)
        .where(
            DeliveryAttempt.outcome != "denied", *_within(DeliveryAttempt.started_at, since, until)
        )
        .group_by(Subscription.product, DeliveryAttempt.outcome)
    )
    for product, outcome, count in attempts:
        if product in facts:
            facts[product].attempts += count
            facts[product].succeeded += count if outcome == "delivered" else 0
    lags = session.execute(
        select(Subscription.product, FeedEvent.delivered_at, Record.published_at)
        .join(Subscription, Subscription.id == FeedEvent.subscription_id)
        .join(
            Record,
            (Record.product_id == FeedEvent.product_id) & (Record.seq == FeedEvent.record_seq),
        )
        .where(FeedEvent.state == "delivered", *_within(FeedEvent.delivered_at, since, until))
    )
    for product, delivered, published in lags:
        if product in facts:
            facts[product].lags.append(_seconds(delivered, published))


def _freshness(
    session: Session,
    facts: dict[str, _Facts],
    slugs: dict[int, str],
    since: datetime | None,
    until: datetime,
) -> None:
    rows = session.execute(
        select(Record.product_id, Record.published_at, Record.event_time).where(
            *_within(Record.published_at, since, until)
        )
    )
    for product_id, published, event_time in rows:
        fact = facts[slugs[product_id]]
        fact.published += 1
        if event_time is not None:
            fact.freshness.append(_seconds(published, event_time))


def report(session: Session, since: datetime | None, until: datetime) -> SharingReport:
    """The figures of every product and publishing organisation for [since, until)."""
    products = session.execute(
        select(Product.id, Product.slug, Organization.slug)
        .join(Organization, Organization.id == Product.owner_id)
        .order_by(Organization.slug, Product.slug)
    ).all()
    facts = {slug: _Facts() for _, slug, _ in products}
    _requests(session, facts, since, until)
    _audited(session, facts, since, until)
    _feeds(session, facts, since, until)
    _freshness(session, facts, {pid: slug for pid, slug, _ in products}, since, until)
    by_organization: dict[str, tuple[_Facts, list[str]]] = {}
    for _, slug, organization in products:
        pooled, named = by_organization.setdefault(organization, (_Facts(), []))
        pooled.add(facts[slug])
        named.append(slug)
    return SharingReport(
        window={"from": since and to_rfc3339(since), "to": to_rfc3339(until)},
        as_of=to_rfc3339(until),
        products=[
            ProductFigures(product=slug, organization=organization, **facts[slug].figures())
            for _, slug, organization in products
        ],
        organizations=[
            OrganizationFigures(organization=organization, products=named, **pooled.figures())
            for organization, (pooled, named) in by_organization.items()
        ],
    )
