"""Delivery workers: claim a subscription with due events, send its next batch as
one signed webhook, record how it went.

Claiming takes the subscription row (`SELECT … FOR UPDATE SKIP LOCKED` on
PostgreSQL, so workers on several machines pass over each other's rows; SQLite
serialises writers anyway) and writes a lease: the worker's name and a deadline.
Only the lease holder sends for a subscription, so its events go out in order
and one batch at a time; a worker killed mid-send holds nothing but a lease that
runs out, and the next claim resends the same batch under the same webhook id.
Delivery is at least once: a receiver deduplicates on `webhook-id`.

Each send is prepared in its own transaction, which decides, views and writes
the audit entry, and commits before a byte leaves (fail closed). Timeouts,
connection errors, 408, 429 and 5xx are retried with exponential backoff and
jitter (429/503 `Retry-After` honoured) up to `delivery_max_attempts`; then the
batch's events are dead letters and the subscription moves on. Other answers
(a 4xx, a redirect, which is never followed) make the batch dead at once. A
refused decision suspends the subscription with its reason.
"""

import json
import logging
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import Engine, exists, select, update
from sqlalchemy.orm import Session
from starlette.datastructures import State

from exchange.auditing.trail import Origin
from exchange.catalog.access import refusals_logged
from exchange.db import sqlite_reader
from exchange.errors import ExchangeError
from exchange.feeds import reading, service, signing, targets
from exchange.feeds.doorbell import Doorbell
from exchange.feeds.models import DeliveryAttempt, FeedEvent, Subscription
from exchange.feeds.secretbox import SecretBox
from exchange.privacy.sealing import SealError
from exchange.settings import Settings
from exchange.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

_RETRIED = frozenset({408, 429})
_SECONDS = re.compile(r"[0-9]{1,9}")
_QUEUED = (
    "SELECT 1 FROM subscription AS s WHERE s.delivery = 'webhook' AND s.status = 'active' "
    "AND EXISTS (SELECT 1 FROM feed_event AS e WHERE e.subscription_id = s.id "
    "AND e.state = 'pending') LIMIT 1"
)
EVENT_TYPE = "records.published"


@dataclass(frozen=True)
class Batch:
    """One webhook request, ready to send; its audit entry is already committed."""

    subscription_id: int
    webhook_id: str
    events: list[int]
    first: int
    last: int
    attempt: int
    target: targets.Target
    body: bytes
    signing_secrets: list[str]


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    error: str | None
    retry_after: float | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        code = self.status_code
        return code is None or code in _RETRIED or code >= 500


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    if _SECONDS.fullmatch(value.strip()):
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max((as_utc(moment) - now).total_seconds(), 0.0)


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential with jitter: a random point in the upper half of base·2^(n-1), capped."""
    ceiling = min(cap, base * 2 ** (attempts - 1))
    return rng.uniform(ceiling / 2, ceiling)


class Deliverer:
    """Webhook delivery for one process: `threads` workers sharing a name."""

    def __init__(
        self, state: State, engine: Engine, settings: Settings, doorbell: Doorbell, threads: int
    ) -> None:
        self._state, self._engine, self._settings = state, engine, settings
        self._doorbell = doorbell
        self._box: SecretBox = state.webhook_secrets
        self.name = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"[:60]
        self._local = threading.local()
        self._origin = Origin(request_id=None, client_address=f"worker:{self.name}"[:64])
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"delivery-{n}", daemon=True)
            for n in range(threads)
        ]
        self._rng = random.Random()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._doorbell.ring()
        for thread in self._threads:
            thread.join(timeout=self._settings.delivery_timeout_seconds + 5)

    @property
    def _owner(self) -> str:
        """The lease holder's name: this process and thread, so two threads of one
        worker are as distinct as two machines."""
        return getattr(self._local, "owner", self.name)

    def _run(self) -> None:
        self._local.owner = f"{self.name}/{threading.current_thread().name.rsplit('-', 1)[-1]}"
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    worked = self.deliver_one(client)
                except Exception:  # keep delivering; the lease lets another worker retry
                    log.exception("delivery failed")
                    worked = False
                if not worked:
                    self._doorbell.wait(self._settings.delivery_poll_seconds, self._stop)

    def deliver_one(self, client: httpx.Client) -> bool:
        """Claim one subscription with due events and send one batch; False if none."""
        subscription_id = self._claim()
        if subscription_id is None:
            return False
        batch = self._prepare(subscription_id)
        if batch is None:
            return True
        self._finish(batch, self._send(client, batch))
        return True

    def _claim(self) -> int | None:
        if not self._anything_queued():
            return None
        now = utcnow()
        due = (
            select(Subscription.id)
            .where(
                Subscription.delivery == "webhook",
                Subscription.status == "active",
                Subscription.next_attempt_at <= now,
                (Subscription.lease_until.is_(None)) | (Subscription.lease_until < now),
                exists().where(
                    FeedEvent.subscription_id == Subscription.id, FeedEvent.state == "pending"
                ),
            )
            .order_by(Subscription.next_attempt_at, Subscription.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=Subscription)
        )
        with Session(self._engine) as session, session.begin():
            subscription_id = session.scalar(due)
            if subscription_id is None:
                return None
            # now, not before: on SQLite the select may have waited for the write lock
            lease = utcnow() + timedelta(seconds=self._settings.delivery_lease_seconds)
            session.execute(
                update(Subscription)
                .where(Subscription.id == subscription_id)
                .values(lease_owner=self._owner, lease_until=lease)
            )
            return subscription_id

    def _anything_queued(self) -> bool:
        """On SQLite, whether any webhook subscription has pending events, asked
        through a read-only connection: an idle worker then takes no write lock,
        which every request would otherwise queue behind. (PostgreSQL's claim
        locks only the row it takes.)"""
        if self._engine.dialect.name != "sqlite":
            return True
        with sqlite_reader(self._engine) as reader:
            return reader.execute(_QUEUED).fetchone() is not None

    def _head(self, session: Session, row: Subscription) -> list[FeedEvent]:
        """The batch at the head of the queue: the first pending event's batch if it
        has one (a retry or a redelivery), else the next pending events, numbered."""
        first = session.scalar(
            select(FeedEvent)
            .where(FeedEvent.subscription_id == row.id, FeedEvent.state == "pending")
            .order_by(FeedEvent.seq)
            .limit(1)
        )
        if first is None:
            return []
        if first.batch is not None:
            return list(
                session.scalars(
                    select(FeedEvent)
                    .where(
                        FeedEvent.subscription_id == row.id,
                        FeedEvent.state == "pending",
                        FeedEvent.batch == first.batch,
                    )
                    .order_by(FeedEvent.seq)
                )
            )
        size = min(row.batch_size, self._settings.delivery_batch_max)
        events = list(
            session.scalars(
                select(FeedEvent)
                .where(
                    FeedEvent.subscription_id == row.id,
                    FeedEvent.state == "pending",
                    FeedEvent.batch.is_(None),
                )
                .order_by(FeedEvent.seq)
                .limit(size)
            )
        )
        if events:
            row.batch_seq += 1
            for event in events:
                event.batch = row.batch_seq
        return events

    def _prepare(self, subscription_id: int) -> Batch | None:
        """Decide, view, audit and commit one batch; None if there is nothing to
        send (the subscription was refused and suspended, or lost its lease)."""
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.get(Subscription, subscription_id)
            if row is None or row.lease_owner != self._owner:
                return None
            try:
                access = reading.decided(session, self._origin, self._state, row, "deliver")
            except ExchangeError as refused:
                self._suspended(session, subscription_id, refused.detail)
                return None
            events = self._head(session, row)
            if not events:
                self._release(session, subscription_id)
                return None
            batch = events[0].batch
            webhook_id = f"msg_{row.uid}_{batch}"
            attempt = row.attempts + 1
            try:
                with refusals_logged(session, self._origin, access, action="deliver"):
                    target = self._target(row)
                    shown = reading.shown(
                        session,
                        self._origin,
                        self._state,
                        access,
                        row,
                        events,
                        action="deliver",
                        count_against_grant=attempt == 1,
                        details={
                            "subscription": row.id,
                            "events": [events[0].seq, events[-1].seq],
                            "webhook_id": webhook_id,
                            "attempt": attempt,
                        },
                    )
            except (ExchangeError, SealError) as refused:
                reason = refused.detail if isinstance(refused, ExchangeError) else str(refused)
                self._suspended(session, subscription_id, reason)
                return None
            if shown.outside_scope:
                session.execute(
                    update(FeedEvent)
                    .where(FeedEvent.id.in_(shown.outside_scope))
                    .values(state="withheld")
                )
            signing_secrets = service.secrets_in_force(row, self._box, utcnow())
            session.commit()
        if not shown.events:
            with Session(self._engine) as session:
                self._release(session, subscription_id)
            return None
        body = json.dumps(
            {
                "type": EVENT_TYPE,
                "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
                "data": {**shown.header, "events": shown.events},
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        return Batch(
            subscription_id,
            webhook_id,
            [event.id for event in events if event.id is not None],
            events[0].seq,
            events[-1].seq,
            attempt,
            target,
            body,
            signing_secrets,
        )

    def _target(self, row: Subscription) -> targets.Target:
        assert row.url is not None
        try:
            return targets.checked(row.url, allow_private=self._settings.webhook_allow_private)
        except targets.Refused as refused:
            raise _Unreachable(f"the webhook URL is refused at delivery: {refused}") from None

    def _send(self, client: httpx.Client, batch: Batch) -> Sent:
        started = time.monotonic()
        timestamp = int(time.time())
        headers = {
            **signing.headers(batch.signing_secrets, batch.webhook_id, timestamp, batch.body),
            "content-type": "application/json",
            "host": batch.target.host_header,
            "user-agent": "exchange-webhooks/1",
        }
        extensions: dict[str, Any] = {}
        if batch.target.scheme == "https":
            extensions["sni_hostname"] = batch.target.host
        request = client.build_request(
            "POST",
            batch.target.pinned_url,
            content=batch.body,
            headers=headers,
            timeout=self._settings.delivery_timeout_seconds,
            extensions=extensions,
        )
        try:
            # The status and headers are the answer; the body is not read, so a
            # receiver cannot hold the worker by trickling one.
            response = client.send(request, stream=True)
            response.close()
        except httpx.HTTPError as error:
            elapsed = int((time.monotonic() - started) * 1000)
            return Sent(None, f"{type(error).__name__}: {error}"[:500], None, elapsed)
        elapsed = int((time.monotonic() - started) * 1000)
        code = response.status_code
        problem = None if 200 <= code < 300 else f"the receiver answered {code}"
        wait = retry_after(response.headers.get("retry-after"), utcnow())
        return Sent(code, problem, wait, elapsed)

    def _finish(self, batch: Batch, sent: Sent) -> None:
        settings = self._settings
        now = utcnow()
        with Session(self._engine) as session, session.begin():
            row = session.get(Subscription, batch.subscription_id)
            if row is None:  # deleted while we sent
                return
            held = row.lease_owner == self._owner
            if sent.delivered:
                outcome = "delivered"
                self._mark(session, batch, "delivered", now)
                row.last_success_at = now
                if held:
                    row.attempts, row.next_attempt_at = 0, now
            elif not held:
                # The lease ran out while we sent and another worker has the
                # subscription: the attempt is recorded, its schedule is theirs.
                outcome = "retry"
            elif sent.retryable and batch.attempt < settings.delivery_max_attempts:
                outcome = "retry"
                delay = backoff(
                    batch.attempt,
                    settings.delivery_retry_base_seconds,
                    settings.delivery_retry_max_seconds,
                    self._rng,
                )
                if sent.retry_after is not None:
                    delay = min(max(delay, sent.retry_after), settings.delivery_retry_max_seconds)
                row.attempts, row.next_attempt_at = batch.attempt, now + timedelta(seconds=delay)
            else:
                outcome = "dead"
                self._mark(session, batch, "dead", None)
                row.attempts, row.next_attempt_at = 0, now
            if sent.error:
                row.last_error, row.last_error_at = sent.error, now
            if held:
                row.lease_owner, row.lease_until = None, None
            session.add(
                DeliveryAttempt(
                    subscription_id=batch.subscription_id,
                    webhook_id=batch.webhook_id,
                    first_event=batch.first,
                    last_event=batch.last,
                    count=len(batch.events),
                    attempt=batch.attempt,
                    outcome=outcome,
                    status_code=sent.status_code,
                    error=sent.error,
                    duration_ms=sent.duration_ms,
                    started_at=now,
                )
            )

    @staticmethod
    def _mark(session: Session, batch: Batch, state: str, now: datetime | None) -> None:
        session.execute(
            update(FeedEvent)
            .where(FeedEvent.id.in_(batch.events), FeedEvent.state == "pending")
            .values(state=state, delivered_at=now)
        )

    def _release(self, session: Session, subscription_id: int) -> None:
        session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.lease_owner == self._owner)
            .values(lease_owner=None, lease_until=None)
        )
        session.commit()

    def _suspended(self, session: Session, subscription_id: int, reason: str) -> None:
        """The refusal is already logged; the subscription waits for its owner to resume it."""
        session.rollback()
        service.suspend(session, subscription_id, reason)
        session.commit()
        log.warning("subscription %s suspended: %s", subscription_id, reason)


class _Unreachable(ExchangeError):
    status, code, title = 403, "webhook_refused", "Webhook URL refused"
