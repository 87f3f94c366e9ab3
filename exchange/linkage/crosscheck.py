"""Registry cross-checks: two government products compared on their subject key,
returning only the matches and the counts the purpose needs.

The question is the one no single registry can answer ("which homes are also
registered as company addresses?"), so neither product is handed over: the exchange
compares them itself, and the caller gets the matched records of each side (in
the decided view), how many records each side has and how many matched, and
optionally the matches counted by one field. It is its own action, `cross_check`,
decided on both products for the stated purpose with the grants that name both
(`partner`); a grant to read one of them does not count. Each cross-check is one
audit entry, naming both products and every matched record — all of them, not only
those returned, since the counts (and a count by a field) tell of every one.

The smaller side is opened whole and its keys looked up, as keyed digests, in the
larger side's subject-key index, so only matching rows of the larger one are
opened at all.
"""

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.auditing.trail import record_allowed, seq_runs
from exchange.auth import Caller, decide_with
from exchange.catalog import service as catalog
from exchange.catalog.access import ProductAccess, refusals_logged, refused_before_deciding
from exchange.catalog.models import PURPOSE
from exchange.catalog.service import Described
from exchange.errors import BadRequest, FieldError, NotFound
from exchange.grants import service as grants
from exchange.linkage.keys import normalised
from exchange.records import sealed
from exchange.records.models import Record
from exchange.records.service import Shaper, field_treatments
from policies import PolicyEngine

MAX_MATCHES = 1000
_LOOKUP_CHUNK = 500


class CountBy(BaseModel):
    product: str = Field(description="One of the two products.")
    field: str = Field(description="A field of it, shown raw to the caller.")


class CrossCheckRequest(BaseModel):
    left: str = Field(description="One product, e.g. business-registrations.")
    right: str = Field(description="The other, e.g. residential-addresses.")
    purpose: str = Field(pattern=PURPOSE, description="Both products must declare it.")
    count_by: CountBy | None = Field(
        default=None, description="Also count the matched records of one side by a field."
    )
    limit: int = Field(
        default=100, ge=0, le=MAX_MATCHES, description="Most matched keys returned with records."
    )


class Match(BaseModel):
    key: str = Field(description="The normalised subject key both sides share.")
    left: list[dict[str, Any]]
    right: list[dict[str, Any]]


class Counts(BaseModel):
    left_records: int
    right_records: int
    matched_keys: int
    left_matched: int
    right_matched: int


class CountedBy(BaseModel):
    product: str
    field: str
    counts: dict[str, int] = Field(description="Value → matched records, most first.")


class CrossCheck(BaseModel):
    check: str = Field(description="This cross-check's id, in its audit entry.")
    left: str
    right: str
    kind: str
    purpose: str
    grant: int | None
    views: dict[str, str] = Field(description="Product → the view its records are shown in.")
    counts: Counts
    counted_by: CountedBy | None
    matches: list[Match]
    truncated: bool = Field(description="More keys matched than `limit` returned.")
    audit_index: int


@dataclass
class _Side:
    access: ProductAccess
    rows: dict[str, list[tuple[Record, dict[str, Any]]]]
    """Normalised key → the matching rows, opened."""


def comparable(
    session: Session, policy: PolicyEngine, caller: Caller, slugs: list[str], names: list[str]
) -> tuple[Described, Described, str]:
    """Two products a cross-check can compare, and their shared kind of subject key:
    two products the caller may see, each declaring a subject key, of one kind.
    Raises BadRequest (naming the input by `names`) or NotFound."""
    if slugs[0] == slugs[1]:
        raise BadRequest(
            "a cross-check compares two products",
            errors=[FieldError(f"the same product as {names[0]}", names[1])],
        )
    pair = []
    for slug, name in zip(slugs, names, strict=True):
        described = catalog.describe(session, slug)
        if not policy.decide(caller.subject, described.resource, "discover").allowed:
            raise NotFound(f"no product {slug!r}")  # as the catalog says
        if described.definition.subject_kind is None:
            raise BadRequest(
                f"{slug} declares no subject key to cross-check on",
                errors=[FieldError("no subject_kind", name)],
            )
        pair.append(described)
    kinds = [described.definition.subject_kind or "" for described in pair]
    if kinds[0] != kinds[1]:
        raise BadRequest(
            f"{slugs[0]}'s subject key is a {kinds[0]}, {slugs[1]}'s a {kinds[1]}",
            errors=[FieldError("another kind of subject key", names[1])],
        )
    return pair[0], pair[1], kinds[0]


def cross_check(
    session: Session, request: Request, caller: Caller, data: CrossCheckRequest
) -> CrossCheck:
    """Decide on both products, compare them, audit the check; the caller commits."""
    policy: PolicyEngine = request.app.state.policy.current
    with refused_before_deciding(session, request, caller, "cross_check", data.left, data.purpose):
        left, right, kind = comparable(
            session, policy, caller, [data.left, data.right], ["left", "right"]
        )
    held = grants.active_pair(session, caller.organization, data.left, data.right)
    accesses = []
    for described in (left, right):
        resource = replace(described.resource, granted=frozenset(held))
        decision = decide_with(
            policy, session, request, caller, resource, "cross_check", data.purpose
        )
        grant = held.get(data.purpose) if decision.under_grant else None
        accesses.append(
            ProductAccess(caller, described, "cross_check", data.purpose, decision, grant)
        )
    with refusals_logged(session, request, accesses[0]):
        counted = _counted_field(data, accesses)
        sides = _compare(session, request, kind, accesses)
    return _answer(session, request, data, kind, sides, counted)


def _counted_field(
    data: CrossCheckRequest, accesses: list[ProductAccess]
) -> tuple[int, str] | None:
    """(side, field) to count the matches by: a field the caller sees raw, since a
    count by a field it may not see would show its values."""
    if data.count_by is None:
        return None
    slugs = [access.described.product.slug for access in accesses]
    if data.count_by.product not in slugs:
        raise BadRequest(
            "matches are counted by a field of one of the two products",
            errors=[FieldError(f"not {slugs[0]} or {slugs[1]}", "count_by.product")],
        )
    side = slugs.index(data.count_by.product)
    shown = field_treatments(accesses[side]).get(data.count_by.field)
    if shown != "raw":
        reason = f"no field {data.count_by.field!r}" if shown is None else f"shown {shown}"
        raise BadRequest(
            "matches are counted by a field the caller sees raw",
            errors=[FieldError(reason, "count_by.field")],
        )
    return side, data.count_by.field


def _opened_rows(
    session: Session, request: Request, access: ProductAccess, *clauses: Any
) -> list[tuple[Record, dict[str, Any]]]:
    product_id = access.described.product.id
    key = request.app.state.keyring.for_reading(session, product_id)
    rows = session.scalars(
        select(Record)
        .where(Record.product_id == product_id, *clauses)
        .order_by(Record.seq)
        .execution_options(yield_per=1000)
    )
    return [(row, sealed.opened(key, row)) for row in rows]


def _keyed(
    kind: str, access: ProductAccess, opened: list[tuple[Record, dict[str, Any]]]
) -> dict[str, list[tuple[Record, dict[str, Any]]]]:
    """The rows by their normalised subject key; rows without a subject left out."""
    field = access.described.definition.subject_field or ""
    by_key: dict[str, list[tuple[Record, dict[str, Any]]]] = defaultdict(list)
    for row, content in opened:
        value = content.get(field)
        if isinstance(value, str):
            by_key[normalised(kind, value)].append((row, content))
    return by_key


def _record_count(session: Session, access: ProductAccess) -> int:
    product_id = access.described.product.id
    return session.scalar(select(func.count()).where(Record.product_id == product_id)) or 0


def _compare(
    session: Session, request: Request, kind: str, accesses: list[ProductAccess]
) -> list[tuple[_Side, int]]:
    """Each side's matched rows (by key) and record count, left first."""
    totals = [_record_count(session, access) for access in accesses]
    small = 0 if totals[0] <= totals[1] else 1
    large = 1 - small
    probe = _keyed(kind, accesses[small], _opened_rows(session, request, accesses[small]))
    large_key = request.app.state.keyring.for_reading(session, accesses[large].described.product.id)
    digests = sorted(large_key.subject_key(kind, key) for key in probe) if large_key else []
    found: list[tuple[Record, dict[str, Any]]] = []
    for start in range(0, len(digests), _LOOKUP_CHUNK):
        chunk = digests[start : start + _LOOKUP_CHUNK]
        found += _opened_rows(session, request, accesses[large], Record.subject_key.in_(chunk))
    # A subject key altered in the database cannot bring in another subject's row:
    # the key is taken from each row's own opened content.
    hits = {key: rows for key, rows in _keyed(kind, accesses[large], found).items() if key in probe}
    matched = {large: hits, small: {key: probe[key] for key in hits}}
    return [(_Side(accesses[side], matched[side]), totals[side]) for side in (0, 1)]


def _seqs(side: _Side) -> list[int]:
    return [row.seq for rows in side.rows.values() for row, _ in rows]


def _answer(
    session: Session,
    request: Request,
    data: CrossCheckRequest,
    kind: str,
    sides: list[tuple[_Side, int]],
    counted: tuple[int, str] | None,
) -> CrossCheck:
    """The matches (the first `limit` keys, in key order) shaped by each side's
    view, the counts, and the check's audit entry, which names every matched record."""
    (left, left_total), (right, right_total) = sides
    keys = sorted(left.rows)
    shown = keys[: data.limit]
    shapers = [Shaper.of(request.app.state.pseudonyms, side.access) for side in (left, right)]
    matches = []
    for key in shown:
        shaped = []
        for number, side in enumerate((left, right)):
            rows = [row for row, _ in side.rows[key]]
            contents = [content for _, content in side.rows[key]]
            page = shapers[number].page(side.access, rows, contents, None)
            shaped.append(page.records)
        matches.append(Match(key=key, left=shaped[0], right=shaped[1]))
    counts = Counts(
        left_records=left_total,
        right_records=right_total,
        matched_keys=len(keys),
        left_matched=sum(len(rows) for rows in left.rows.values()),
        right_matched=sum(len(rows) for rows in right.rows.values()),
    )
    counted_by = None
    if counted is not None:
        side, field = counted
        values = Counter(
            str(content.get(field))
            for rows in (left, right)[side].rows.values()
            for _, content in rows
        )
        counted_by = CountedBy(
            product=(left, right)[side].access.described.product.slug,
            field=field,
            counts=dict(values.most_common()),
        )
    check = uuid.uuid4().hex
    grant = left.access.grant
    index = record_allowed(
        session,
        request,
        left.access,
        action="cross_check",
        product=data.left,
        purpose=data.purpose,
        seqs=_seqs(left),
        record_count=counts.left_matched + counts.right_matched,
        grant_id=left.access.grant_id,
        details={
            "check": check,
            "partner": data.right,
            "partner_records": seq_runs(_seqs(right)),
            "kind": kind,
            "counts": counts.model_dump(),
            "count_by": data.count_by.model_dump() if data.count_by else None,
            "returned_keys": len(shown),
        },
    )
    return CrossCheck(
        check=check,
        left=data.left,
        right=data.right,
        kind=kind,
        purpose=data.purpose,
        grant=grant.id if grant else None,
        views={
            side.access.described.product.slug: side.access.decision.view for side in (left, right)
        },
        counts=counts,
        counted_by=counted_by,
        matches=matches,
        truncated=len(keys) > len(shown),
        audit_index=index,
    )
