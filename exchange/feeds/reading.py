"""A subscription's events as its subscriber may see them now: decided, viewed
and audited at the moment they leave — webhook batch or pull page alike — so a
grant revoked or a policy changed after publication applies to events still
queued."""

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import State

from exchange.auditing.trail import Actor, Origin, record
from exchange.auth import Caller, caller_of
from exchange.catalog import service as catalog
from exchange.catalog.access import ProductAccess, access_to, refusals_logged
from exchange.errors import AccessDenied, BadRequest
from exchange.feeds import filters
from exchange.feeds.filters import FeedFilter
from exchange.feeds.models import FeedEvent, Subscription
from exchange.grants import service as grants
from exchange.records import sealed
from exchange.records.models import Record
from exchange.records.service import Shaper, audit_read, field_treatments
from exchange.timeutil import to_rfc3339

_ALWAYS = ("id", "seq", "published_at")


@dataclass(frozen=True)
class Shown:
    """Events about to leave: what the subscriber gets, and the audit entry's index."""

    header: dict[str, Any]
    events: list[dict[str, Any]]
    audit_index: int
    outside_scope: list[int]


def decided(
    session: Session,
    where: Request | Origin,
    state: State,
    row: Subscription,
    logged_as: str,
    caller: Caller | None = None,
) -> ProductAccess:
    """The read decided anew, as `caller` (the one pulling) or else the principal that
    made the subscription, as it is now. A principal deleted or disabled since is
    refused; so is a filter on a field the view no longer shows raw. Raises
    AccessDenied or BadRequest; the refusal is logged."""
    caller = caller or caller_of(session, row.principal)
    if caller is None:
        reason = f"the principal {row.principal} that made the subscription is disabled or gone"
        session.rollback()
        record(
            session,
            where,
            Actor(row.principal, row.organization),
            action=logged_as,
            allowed=False,
            reason=reason,
            product=row.product,
            purpose=row.purpose,
        )
        session.commit()
        raise AccessDenied(reason)
    described = catalog.describe(session, row.product)
    access = access_to(
        session, where, state.policy.current, caller, described, "read", row.purpose, logged_as
    )
    unshown = filters.unshown(
        FeedFilter.model_validate(row.filter),
        field_treatments(access),
        described.definition.time_field,
    )
    if unshown:
        names = ", ".join(sorted({e.field.rsplit(".", 1)[-1] for e in unshown if e.field}))
        with refusals_logged(session, where, access, action=logged_as):
            raise BadRequest(
                f"the filter names fields this view no longer shows raw: {names}", errors=unshown
            )
    return access


def shown(
    session: Session,
    where: Request | Origin,
    state: State,
    access: ProductAccess,
    row: Subscription,
    events: list[FeedEvent],
    *,
    action: str,
    details: dict[str, Any],
    count_against_grant: bool = True,
) -> Shown:
    """The events' records opened, viewed, cut to the wanted fields, and audited
    (as `action`, in this transaction). Events whose records a grant's scope does
    not cover are left out and listed. A retry of a batch already sent once is not
    counted against a grant's quota again (`count_against_grant`)."""
    product_id = access.described.product.id
    assert product_id is not None
    key = state.keyring.for_reading(session, product_id)
    by_seq = {
        stored.seq: stored
        for stored in session.scalars(
            select(Record).where(
                Record.product_id == product_id,
                Record.seq.in_([event.record_seq for event in events]),
                *grants.scope_clauses(access.grant),
            )
        )
    }
    kept = [event for event in events if event.record_seq in by_seq]
    rows = [by_seq[event.record_seq] for event in kept]
    contents = [sealed.opened(key, stored) for stored in rows]
    page = Shaper.of(state.pseudonyms, access).page(access, rows, contents, None)
    wanted = set(row.fields) if row.fields else None
    treatments = {
        name: t for name, t in page.treatments.items() if wanted is None or name in wanted
    }
    records = [
        {k: v for k, v in shown.items() if wanted is None or k in wanted or k in _ALWAYS}
        for shown in page.records
    ]
    index = audit_read(
        session,
        where,
        state.subjects,
        access,
        rows,
        contents,
        details,
        action=action,
        count_against_grant=count_against_grant,
    )
    until = page.pseudonyms_until
    header = {
        "subscription": row.id,
        "product": row.product,
        "version": access.described.version,
        "purpose": row.purpose,
        "view": page.view,
        "label": page.label,
        "fields": treatments,
        "pseudonyms_until": to_rfc3339(until) if until else None,
        "grant": access.grant.id if access.grant else None,
    }
    return Shown(
        header,
        [{"event": e.seq, "record": r} for e, r in zip(kept, records, strict=True)],
        index,
        [event.id for event in events if event.record_seq not in by_seq and event.id],
    )
