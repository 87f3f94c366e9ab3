"""Subscriptions: make, list, pause, resume, delete; rotate a webhook's secret;
pull events; see deliveries and dead letters, and redeliver.

Managing feeds is `manage` on `system:feeds` (subscribers); making one is also a
read of the product, decided for the stated purpose like any read. Each
subscription is its organisation's: others get 404.
"""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from exchange.auditing.trail import record_allowed
from exchange.auth import SystemAccess, system_access
from exchange.catalog import service as catalog
from exchange.catalog.access import (
    ProductAccess,
    access_to,
    refusals_logged,
    refused_before_deciding,
)
from exchange.db import SessionDep
from exchange.errors import AccessDenied, BadRequest, Conflict, FieldError
from exchange.feeds import pulling, reading, service
from exchange.feeds.models import Subscription
from exchange.feeds.service import SubscriptionCreate
from exchange.pagination import decode_cursor, encode_cursor
from exchange.timeutil import as_utc, to_rfc3339, utcnow

router = APIRouter(prefix="/v1/subscriptions", tags=["feeds"])

ManageFeeds = Annotated[SystemAccess, system_access("feeds", "manage")]


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=604_800,
        description="How long the old secret keeps signing next to the new one.",
    )


class Redelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, max_length=10_000, description="Dead events by number; default all."
    )


def _shown(session: Session, row: Subscription) -> dict[str, Any]:
    assert row.id is not None
    return service.public(row, service.health(session, [row.id])[row.id], utcnow())


def _audited(
    session: Session, request: Request, access: SystemAccess, row: Subscription, action: str
) -> None:
    record_allowed(
        session,
        request,
        access,
        action=f"subscription.{action}",
        product=row.product,
        purpose=row.purpose,
        details={"subscription": row.id},
    )


@router.post("", status_code=201)
def create(
    request: Request, session: SessionDep, manage: ManageFeeds, data: SubscriptionCreate
) -> JSONResponse:
    """Subscribe to a product's new records for a purpose. Decided like a read (and
    again at every delivery). A webhook's signing secret is in this answer only."""
    caller = manage.caller
    with refused_before_deciding(session, request, caller, "subscribe", data.product, data.purpose):
        described = catalog.describe(session, data.product)
    access = access_to(
        session,
        request,
        request.app.state.policy.current,
        caller,
        described,
        "read",
        data.purpose,
        logged_as="subscribe",
    )
    settings = request.app.state.settings
    with refusals_logged(session, request, access, action="subscribe"):
        service.checked(
            data,
            access,
            allow_private=settings.webhook_allow_private,
            batch_max=settings.delivery_batch_max,
        )
        row, secret = service.create(session, access, data, request.app.state.webhook_secrets)
    record_allowed(
        session,
        request,
        access,
        action="subscribe",
        product=row.product,
        purpose=row.purpose,
        grant_id=access.grant_id,
        details={"subscription": row.id, "delivery": row.delivery, "filter": row.filter},
    )
    body = _shown(session, row)
    if secret is not None:
        body["secret"] = secret
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("")
def list_own(session: SessionDep, manage: ManageFeeds) -> dict[str, Any]:
    """Your organisation's subscriptions, with their health."""
    rows = service.list_own(session, manage.caller.organization)
    health = service.health(session, [row.id for row in rows if row.id is not None])
    now = utcnow()
    return {"subscriptions": [service.public(row, health[row.id], now) for row in rows if row.id]}


@router.get("/{subscription_id}")
def get_one(session: SessionDep, manage: ManageFeeds, subscription_id: int) -> dict[str, Any]:
    """One subscription and its health: events waiting and the oldest one's age,
    dead letters, attempts, last success and last error."""
    return _shown(session, service.own(session, subscription_id, manage.caller.organization))


@router.delete("/{subscription_id}", status_code=204)
def delete(
    request: Request, session: SessionDep, manage: ManageFeeds, subscription_id: int
) -> Response:
    """Stop and forget: the subscription, its queued events and its delivery history."""
    row = service.own(session, subscription_id, manage.caller.organization)
    _audited(session, request, manage, row, "delete")
    session.delete(row)
    return Response(status_code=204)


@router.post("/{subscription_id}/pause")
def pause(
    request: Request, session: SessionDep, manage: ManageFeeds, subscription_id: int
) -> dict[str, Any]:
    """Stop delivering; events keep queueing and are delivered on resume."""
    row = service.own(session, subscription_id, manage.caller.organization)
    service.pause(row)
    _audited(session, request, manage, row, "pause")
    return _shown(session, row)


@router.post("/{subscription_id}/resume")
def resume(
    request: Request, session: SessionDep, manage: ManageFeeds, subscription_id: int
) -> dict[str, Any]:
    """Deliver again (a paused or suspended subscription), if the read is allowed now."""
    row = service.own(session, subscription_id, manage.caller.organization)
    state = request.app.state
    reading.decided(session, request, state, row, "subscription.resume", manage.caller)
    service.resume(row)
    _audited(session, request, manage, row, "resume")
    state.doorbell.ring_after_commit(session, queued=True)
    return _shown(session, row)


@router.post("/{subscription_id}/secret")
def rotate_secret(
    request: Request,
    session: SessionDep,
    manage: ManageFeeds,
    subscription_id: int,
    data: SecretRotation | None = None,
) -> JSONResponse:
    """A new signing secret, shown once; the old one signs alongside it for the overlap."""
    row = service.own(session, subscription_id, manage.caller.organization)
    overlap = timedelta(seconds=(data or SecretRotation()).overlap_seconds)
    secret = service.rotate_secret(row, request.app.state.webhook_secrets, overlap)
    _audited(session, request, manage, row, "rotate_secret")
    until = row.previous_secret_until
    return JSONResponse(
        {
            "secret": secret,
            "previous_secret_valid_until": to_rfc3339(as_utc(until)) if until else None,
        },
        headers={"Cache-Control": "no-store"},
    )


def _pull_access(
    request: Request,
    session: Session,
    manage: SystemAccess,
    subscription_id: int,
    wait: float,
    after: int | None,
) -> tuple[Subscription, ProductAccess]:
    row = service.own(session, subscription_id, manage.caller.organization)
    if row.delivery != "pull":
        raise Conflict(f"subscription {row.id} is delivered by webhook, not pulled")
    if row.status != "active":
        raise Conflict(f"subscription {row.id} is {row.status}: {row.status_reason or 'paused'}")
    most = request.app.state.settings.pull_wait_max_seconds
    if wait > most:
        raise BadRequest(
            f"wait is at most {most:g} seconds on this exchange",
            errors=[FieldError(f"at most {most:g}", "wait")],
        )
    try:
        access = reading.decided(session, request, request.app.state, row, "pull", manage.caller)
    except (AccessDenied, BadRequest) as refused:
        service.suspend(session, subscription_id, refused.detail)
        session.commit()
        raise
    if after is not None and after > row.event_seq:
        with refusals_logged(session, request, access, action="pull"):
            raise BadRequest(
                f"the cursor is past this subscription's last event ({row.event_seq})",
                errors=[FieldError("not a cursor of this subscription", "cursor")],
            )
    return row, access


@router.get("/{subscription_id}/events")
async def events(
    request: Request,
    session: SessionDep,
    manage: ManageFeeds,
    subscription_id: int,
    cursor: Annotated[
        str | None, Query(description="Events after this point; it also acknowledges them.")
    ] = None,
    wait: Annotated[
        float, Query(ge=0, description="Seconds to wait for events if there are none.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A pull subscription's events after the cursor (from the oldest retained one
    without), decided and viewed now and audited; `next_cursor` continues. Any
    earlier cursor replays."""
    after = decode_cursor(cursor)
    row, access = await run_in_threadpool(
        _pull_access, request, session, manage, subscription_id, wait, after
    )
    pulled = await pulling.pull(session, request, access, row, after=after, wait=wait, limit=limit)
    return {**pulled.header, "events": pulled.events, "next_cursor": encode_cursor(pulled.last)}


@router.get("/{subscription_id}/deliveries")
def deliveries(
    session: SessionDep,
    manage: ManageFeeds,
    subscription_id: int,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Delivery attempts, newest first (paged), and the dead letters waiting for
    redelivery."""
    row = service.own(session, subscription_id, manage.caller.organization)
    assert row.id is not None
    before = decode_cursor(cursor)
    attempts = service.attempts(session, row.id, before, limit + 1)
    more = len(attempts) > limit
    attempts = attempts[:limit]
    return {
        "attempts": [
            {
                "webhook_id": a.webhook_id,
                "events": [a.first_event, a.last_event],
                "count": a.count,
                "attempt": a.attempt,
                "outcome": a.outcome,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
                "at": to_rfc3339(as_utc(a.started_at)),
            }
            for a in attempts
        ],
        "next_cursor": encode_cursor(attempts[-1].id) if more and attempts[-1].id else None,
        "dead_letters": [
            {"event": e.seq, "record_seq": e.record_seq, "webhook_id": f"msg_{row.uid}_{e.batch}"}
            for e in service.dead_letters(session, row.id, 1000)
        ],
    }


@router.post("/{subscription_id}/redeliver")
def redeliver(
    request: Request,
    session: SessionDep,
    manage: ManageFeeds,
    subscription_id: int,
    data: Redelivery | None = None,
) -> dict[str, Any]:
    """Send dead letters again (all, or the events listed), next in line."""
    row = service.own(session, subscription_id, manage.caller.organization)
    if row.delivery != "webhook":
        raise Conflict(f"subscription {row.id} is pulled; replay it with an earlier cursor")
    count = service.redeliver(session, row, (data or Redelivery()).events)
    _audited(session, request, manage, row, "redeliver")
    request.app.state.doorbell.ring_after_commit(session, queued=True)
    return {"requeued": count}
