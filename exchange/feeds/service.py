"""Making and managing subscriptions. Services only flush; routers audit.

A subscription belongs to the organisation of the principal that made it: its
colleagues see and manage it, nobody else does (others get 404, as if it did not
exist). Deliveries are decided as the principal that made it, as it is at the
time of delivery.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from exchange.catalog.access import ProductAccess
from exchange.catalog.models import NAME, PURPOSE
from exchange.errors import BadRequest, Conflict, FieldError, NotFound, ValidationFailed
from exchange.feeds import filters, signing, targets
from exchange.feeds.filters import FeedFilter
from exchange.feeds.models import DeliveryAttempt, FeedEvent, Subscription
from exchange.feeds.secretbox import SecretBox
from exchange.identity.models import SLUG
from exchange.records.service import field_treatments
from exchange.timeutil import as_utc, to_rfc3339, utcnow

MAX_OVERLAP = timedelta(days=7)


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(pattern=SLUG, max_length=64)
    purpose: str = Field(pattern=PURPOSE)
    filter: FeedFilter = FeedFilter()
    fields: list[Annotated[str, Field(pattern=NAME)]] | None = Field(
        default=None, min_length=1, max_length=200, description="Only these fields; default all."
    )
    delivery: Literal["webhook", "pull"]
    url: str | None = Field(default=None, max_length=targets.MAX_URL)
    batch_size: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="after")
    def _url_for_webhooks(self) -> "SubscriptionCreate":
        if self.delivery == "webhook" and not self.url:
            raise ValueError("a webhook subscription needs a url")
        if self.delivery == "pull" and self.url:
            raise ValueError("a pull subscription has no url")
        return self


@dataclass(frozen=True)
class Health:
    pending: int
    oldest_pending_at: datetime | None
    dead: int
    delivered: int

    def public(self, subscription: Subscription, now: datetime) -> dict[str, Any]:
        oldest = self.oldest_pending_at
        return {
            "events_waiting": self.pending,
            "oldest_waiting_seconds": round((now - as_utc(oldest)).total_seconds(), 3)
            if oldest
            else 0.0,
            "dead_letters": self.dead,
            "delivered": self.delivered,
            "attempts": subscription.attempts,
            "next_attempt_at": _time(subscription.next_attempt_at)
            if subscription.delivery == "webhook"
            else None,
            "last_success_at": _time(subscription.last_success_at),
            "last_error": subscription.last_error,
            "last_error_at": _time(subscription.last_error_at),
        }


def _time(moment: datetime | None) -> str | None:
    return to_rfc3339(as_utc(moment)) if moment else None


def checked(
    data: SubscriptionCreate, access: ProductAccess, *, allow_private: bool, batch_max: int
) -> targets.Target | None:
    """Refuse what does not fit the product, the view or the network rules."""
    definition = access.described.definition
    if errors := filters.problems(data.filter, data.fields, definition):
        raise ValidationFailed("the subscription does not fit the product", errors=errors)
    if errors := filters.unshown(data.filter, field_treatments(access), definition.time_field):
        raise BadRequest("the filter names fields this view does not show raw", errors=errors)
    if data.batch_size > batch_max:
        reason = f"at most {batch_max} on this exchange"
        raise ValidationFailed("batch_size is too large", errors=[FieldError(reason, "batch_size")])
    if data.url is None:
        return None
    try:
        return targets.checked(data.url, allow_private=allow_private)
    except targets.Refused as refused:
        raise ValidationFailed(
            "the webhook URL is refused", errors=[FieldError(str(refused), "url")]
        ) from None


def create(
    session: Session, access: ProductAccess, data: SubscriptionCreate, box: SecretBox
) -> tuple[Subscription, str | None]:
    """The new subscription and, for a webhook, its secret (shown this once)."""
    uid = secrets.token_hex(8)
    secret = signing.new_secret() if data.delivery == "webhook" else None
    product_id = access.described.product.id
    assert product_id is not None
    row = Subscription(
        uid=uid,
        organization=access.caller.organization,
        principal=access.caller.client_id,
        product_id=product_id,
        product=access.described.product.slug,
        purpose=access.purpose,
        filter=data.filter.stored(),
        fields=data.fields,
        delivery=data.delivery,
        url=data.url,
        secret=box.seal(uid, secret) if secret else None,
        batch_size=data.batch_size,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, secret


def own(session: Session, subscription_id: int, organization: str) -> Subscription:
    row = session.get(Subscription, subscription_id)
    if row is None or row.organization != organization:
        raise NotFound(f"no subscription {subscription_id} of yours")
    return row


def list_own(session: Session, organization: str) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.organization == organization)
            .order_by(Subscription.id)
        )
    )


def health(session: Session, ids: list[int]) -> dict[int, Health]:
    """Events waiting (and since when), dead and delivered, per subscription."""
    counts: dict[int, dict[str, Any]] = {i: {} for i in ids}
    for subscription_id, state, count, oldest in session.execute(
        select(
            FeedEvent.subscription_id,
            FeedEvent.state,
            func.count(),
            func.min(FeedEvent.created_at),
        )
        .where(FeedEvent.subscription_id.in_(ids))
        .group_by(FeedEvent.subscription_id, FeedEvent.state)
    ):
        counts[subscription_id][state] = (count, oldest)
    return {
        i: Health(
            pending=counts[i].get("pending", (0, None))[0],
            oldest_pending_at=counts[i].get("pending", (0, None))[1],
            dead=counts[i].get("dead", (0, None))[0],
            delivered=counts[i].get("delivered", (0, None))[0],
        )
        for i in ids
    }


def public(row: Subscription, health: Health, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "product": row.product,
        "purpose": row.purpose,
        "filter": row.filter,
        "fields": row.fields,
        "delivery": row.delivery,
        "url": row.url,
        "batch_size": row.batch_size,
        "status": row.status,
        "status_reason": row.status_reason,
        "created_by": row.principal,
        "created_at": _time(row.created_at),
        "secret_rotation_ends_at": _time(row.previous_secret_until)
        if row.previous_secret_until and as_utc(row.previous_secret_until) > now
        else None,
        "events": row.event_seq,
        "health": health.public(row, now),
    }


def pause(row: Subscription) -> None:
    if row.status == "suspended":
        raise Conflict(f"subscription {row.id} is suspended: {row.status_reason}; resume it")
    row.status, row.status_reason = "paused", None


def resume(row: Subscription) -> None:
    """Active again, its head batch due now. The caller has decided the read anew."""
    row.status, row.status_reason = "active", None
    row.attempts, row.next_attempt_at = 0, utcnow()


def suspend(session: Session, subscription_id: int, reason: str) -> None:
    session.execute(
        update(Subscription)
        .where(Subscription.id == subscription_id)
        .values(status="suspended", status_reason=reason[:2000], lease_owner=None, lease_until=None)
    )


def rotate_secret(row: Subscription, box: SecretBox, overlap: timedelta) -> str:
    """A new secret; the current one keeps signing alongside it for `overlap`."""
    if row.delivery != "webhook" or row.secret is None:
        raise Conflict(f"subscription {row.id} is pulled; it has no webhook secret")
    if overlap > MAX_OVERLAP or overlap < timedelta(0):
        raise BadRequest(
            "overlap is too long",
            errors=[FieldError("between 0 and 604800 seconds", "overlap_seconds")],
        )
    secret = signing.new_secret()
    row.previous_secret = row.secret if overlap else None
    row.previous_secret_until = utcnow() + overlap if overlap else None
    row.secret = box.seal(row.uid, secret)
    return secret


def secrets_in_force(row: Subscription, box: SecretBox, now: datetime) -> list[str]:
    """The current secret, and the rotated-out one while its overlap lasts."""
    assert row.secret is not None
    found = [box.open(row.uid, row.secret)]
    until = row.previous_secret_until
    if row.previous_secret is not None and until is not None and as_utc(until) > now:
        found.append(box.open(row.uid, row.previous_secret))
    return found


def attempts(
    session: Session, subscription_id: int, before: int | None, limit: int
) -> list[DeliveryAttempt]:
    """Delivery attempts, newest first."""
    query = select(DeliveryAttempt).where(DeliveryAttempt.subscription_id == subscription_id)
    if before is not None:
        query = query.where(DeliveryAttempt.id < before)
    return list(session.scalars(query.order_by(DeliveryAttempt.id.desc()).limit(limit)))


def dead_letters(session: Session, subscription_id: int, limit: int) -> list[FeedEvent]:
    return list(
        session.scalars(
            select(FeedEvent)
            .where(FeedEvent.subscription_id == subscription_id, FeedEvent.state == "dead")
            .order_by(FeedEvent.seq)
            .limit(limit)
        )
    )


def redeliver(session: Session, row: Subscription, events: list[int] | None) -> int:
    """Dead events (all, or those numbered) back in the queue, due now. How many."""
    query = update(FeedEvent).where(FeedEvent.subscription_id == row.id, FeedEvent.state == "dead")
    if events is not None:
        query = query.where(FeedEvent.seq.in_(events))
    done = session.execute(query.values(state="pending"))
    count: int = done.rowcount  # type: ignore[attr-defined]
    # Part of a batch requeued travels as a new batch: a webhook id always names
    # the same events, or a receiver deduplicating on it would drop the rest.
    split = select(FeedEvent.batch).where(
        FeedEvent.subscription_id == row.id,
        FeedEvent.state != "pending",
        FeedEvent.batch.is_not(None),
    )
    session.execute(
        update(FeedEvent)
        .where(
            FeedEvent.subscription_id == row.id,
            FeedEvent.state == "pending",
            FeedEvent.batch.in_(split),
        )
        .values(batch=None)
    )
    if count:
        row.attempts, row.next_attempt_at = 0, utcnow()
    return count
