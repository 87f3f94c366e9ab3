"""Reading pages of records through the decided view.

Reads take a `ProductAccess`, which exists only for an allowed decision, and
append their audit entry in the same transaction as what they return.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import BigInteger, cast, select
from sqlalchemy.orm import Session

from audit import store as log
from exchange.auditing.subjects import SubjectIndex, indexed_value
from exchange.auditing.trail import Origin, record_allowed
from exchange.catalog.access import ProductAccess
from exchange.catalog.models import FieldType, Sensitivity
from exchange.errors import BadRequest, FieldError
from exchange.grants import service as grants
from exchange.linkage.keys import normalised
from exchange.privacy import views
from exchange.privacy.pseudonyms import Epoch, PseudonymKeys
from exchange.privacy.sealing import DataKey
from exchange.records import sealed
from exchange.records.models import Record
from exchange.timeutil import to_rfc3339, utcnow

_INTEGER = re.compile(r"-?[0-9]+")
_FILTERABLE = frozenset({FieldType.string, FieldType.integer, FieldType.boolean})


@dataclass(frozen=True)
class Page:
    view: str
    treatments: dict[str, str]
    records: list[dict[str, Any]]
    next_after: int | None
    pseudonyms_until: datetime | None = None
    audit_index: int | None = None

    @property
    def label(self) -> str:
        return views.label(self.treatments)


@dataclass(frozen=True)
class Shaper:
    """One read's view: which treatment per field, and what the treatments need."""

    treatment_of: dict[str, str]
    shaping: views.Shaping
    pseudonyms_until: datetime | None
    time_field: str | None

    @classmethod
    def of(cls, pseudonyms: PseudonymKeys, access: ProductAccess) -> "Shaper":
        """Pseudonyms in the caller organisation's own domain for this product and epoch."""
        treatment_of = field_treatments(access)
        definition = access.described.definition
        resolution = definition.grid_resolution
        time_field = definition.time_field
        if "pseudonymized" not in treatment_of.values():
            shaping = views.Shaping.of(definition.fields, resolution=resolution)
            return cls(treatment_of, shaping, None, time_field)
        epoch = Epoch.at(utcnow(), definition.pseudonym_epoch_days)
        domain = pseudonyms.domain(access.caller.organization, access.described.product.slug, epoch)
        shaping = views.Shaping.of(definition.fields, resolution=resolution, pseudonymize=domain)
        return cls(treatment_of, shaping, epoch.end, time_field)

    def page(
        self,
        access: ProductAccess,
        rows: list[Record],
        contents: list[dict[str, Any]],
        next_after: int | None,
    ) -> Page:
        return Page(
            view=access.decision.view,
            treatments=self.treatment_of,
            records=[
                self._shown(row, content) for row, content in zip(rows, contents, strict=True)
            ],
            next_after=next_after,
            pseudonyms_until=self.pseudonyms_until,
        )

    def _shown(self, row: Record, content: dict[str, Any]) -> dict[str, Any]:
        shown = {"id": row.record_id, "seq": row.seq}
        published = self._published(row.published_at)
        if published is not None:
            shown["published_at"] = published
        return {**shown, **views.apply(self.treatment_of, content, self.shaping)}

    def _published(self, moment: datetime) -> Any:
        """The publication time, no more precise than the record's own time is shown:
        a capture is published seconds after it is taken, so an exact publication
        time would undo an hour bucket. None: withheld with the time field."""
        treatment = self.treatment_of.get(self.time_field or "", "raw")
        if treatment == "raw":
            return to_rfc3339(moment)
        if treatment == "generalized" and self.time_field is not None:
            return self.shaping.generalizers[self.time_field](to_rfc3339(moment))
        return None


def _filter_problem(treatment_of: dict[str, str], name: str, spec: Any, value: str) -> str | None:
    if spec is None:
        return "expected field=value with a field of this product"
    if spec.type not in _FILTERABLE:
        return f"{spec.type} fields cannot be filtered on"
    if treatment_of.get(name) != "raw":
        shown = treatment_of.get(name, "withheld")
        return f"{name} is {spec.sensitivity}, shown {shown}; filtering on it needs the raw view"
    if spec.type == FieldType.integer and not (
        _INTEGER.fullmatch(value) and -(2**63) <= int(value) < 2**63
    ):
        return "not a 64-bit integer"
    if spec.type == FieldType.boolean and value not in ("true", "false"):
        return "expected true or false"
    return None


def _filter_clauses(access: ProductAccess, filters: list[str], key: DataKey | None) -> list[Any]:
    """`field=value` conditions on fields the caller sees raw. Filtering on a field
    it sees masked, generalised or not at all (a sensitive field in a protected
    view, a field outside its grant's scope) would let it probe values it may not
    see. A sealed field is matched by its blind index. Raises BadRequest naming the
    filter's position."""
    specs = {spec.name: spec for spec in access.described.definition.fields}
    treatment_of = field_treatments(access)
    clauses = []
    for position, text in enumerate(filters):
        name, _, value = text.partition("=")
        spec = specs.get(name) if "=" in text else None
        if problem := _filter_problem(treatment_of, name, spec, value):
            raise BadRequest(
                "a filter cannot be applied", errors=[FieldError(problem, "filter", position)]
            )
        typed = _typed(spec.type, value)
        if spec.sensitivity != Sensitivity.none:
            if name not in sealed.Layout.of(access.described.definition).blind:
                reason = f"{name} is stored sealed with no index; it cannot be filtered on"
                raise BadRequest(
                    "a filter cannot be applied", errors=[FieldError(reason, "filter", position)]
                )
            digest = key.blind(name, typed) if key else ""
            clauses.append(Record.blind[name].as_string() == digest)
            continue
        element = Record.content[name]
        if spec.type == FieldType.integer:
            # as_integer() casts to a 32-bit INTEGER on PostgreSQL; values are 64-bit.
            clauses.append(cast(element.as_string(), BigInteger) == int(value))
        elif spec.type == FieldType.boolean:
            clauses.append(element.as_boolean() == (value == "true"))
        else:
            clauses.append(element.as_string() == value)
    return clauses


def _typed(field_type: FieldType, value: str) -> Any:
    if field_type == FieldType.integer:
        return int(value)
    if field_type == FieldType.boolean:
        return value == "true"
    return value


def _time_window_allowed(
    access: ProductAccess, since: datetime | None, until: datetime | None
) -> None:
    """A time window filters on the product's time field, so it needs that field raw,
    or generalized to time buckets with both bounds on bucket starts: the window then
    selects whole buckets and cannot probe a time finer than the reader is shown.
    Raises BadRequest naming the bound (`from`, `to`) that is not allowed."""
    definition = access.described.definition
    time_field = definition.time_field
    if time_field is None:
        return
    shown = field_treatments(access).get(time_field, "withheld")
    if shown == "raw":
        return
    spec = next(spec for spec in definition.fields if spec.name == time_field)
    bucket = spec.generalization.time_bucket if spec.generalization is not None else None
    if shown != "generalized" or bucket is None:
        raise BadRequest(
            "a time window cannot be applied",
            errors=[FieldError(f"{time_field} is shown {shown}; the window needs it raw", "from")],
        )
    errors = [
        FieldError(
            f"{to_rfc3339(bound)} is not the start of a UTC {bucket}; {time_field} is shown "
            f"by the {bucket}, so a window starts and ends on whole {bucket}s",
            name,
        )
        for name, bound in (("from", since), ("to", until))
        if bound is not None and views.bucket_start(bound, bucket) != bound
    ]
    if errors:
        raise BadRequest("a time window cannot be applied", errors=errors)


def read_page(
    session: Session,
    request: Request,
    access: ProductAccess,
    *,
    after: int | None,
    since: datetime | None,
    until: datetime | None,
    filters: list[str],
    limit: int,
) -> Page:
    """Records after the cursor, oldest first, shaped by the decision's view; under a
    grant, only within its scope and no more than its quota has left."""
    key = request.app.state.keyring.for_reading(session, access.described.product.id)
    clauses = []
    if since is not None or until is not None:
        _time_window_allowed(access, since, until)
    if since is not None:
        clauses.append(Record.event_time >= since)
    if until is not None:
        clauses.append(Record.event_time < until)
    clauses += _filter_clauses(access, filters, key)
    details = {
        "filters": _logged_filters(request, access, filters),
        "from": since and to_rfc3339(since),
        "until": until and to_rfc3339(until),
    }
    return _page(session, request, access, key, clauses, after, limit, details)


def read_about(
    session: Session,
    request: Request,
    access: ProductAccess,
    subject: str,
    *,
    after: int | None,
    limit: int,
    details: dict[str, Any],
) -> Page:
    """The records about one subject: those whose subject key is `subject`'s, in
    the product's declared kind (`linkage.keys`), oldest first, read as `read_page`
    reads. The subject field must be shown raw (as a filter on it needs), else
    BadRequest. Each row's own subject is checked again once opened, so a subject
    key altered in the database cannot bring in another subject's records."""
    definition = access.described.definition
    field, kind = definition.subject_field, definition.subject_kind
    assert field is not None and kind is not None
    spec = next(spec for spec in definition.fields if spec.name == field)
    if problem := _filter_problem(field_treatments(access), field, spec, subject):
        raise BadRequest(
            f"records cannot be found by {field}", errors=[FieldError(problem, "value")]
        )
    key = request.app.state.keyring.for_reading(session, access.described.product.id)
    wanted = normalised(kind, subject)
    digest = key.subject_key(kind, wanted) if key else ""
    details = {
        **details,
        "subject": "keyed:" + request.app.state.subjects.key(access.described.product.slug, wanted),
    }
    return _page(
        session,
        request,
        access,
        key,
        [Record.subject_key == digest],
        after,
        limit,
        details,
        keep=lambda content: normalised(kind, str(content.get(field, ""))) == wanted,
    )


def _page(
    session: Session,
    request: Request,
    access: ProductAccess,
    key: DataKey | None,
    clauses: list[Any],
    after: int | None,
    limit: int,
    details: dict[str, Any],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Page:
    """The page of rows matching `clauses` (and the grant's scope) after the cursor,
    opened, shaped and audited; rows whose content `keep` refuses are left out."""
    if access.grant is not None:
        limit = min(limit, grants.remaining(access.grant) or limit)
    query = (
        select(Record)
        .where(Record.product_id == access.described.product.id, *clauses)
        .where(*grants.scope_clauses(access.grant))
        .order_by(Record.seq)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Record.seq > after)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = rows[-1].seq if more and rows else None
    opened = [(row, sealed.opened(key, row)) for row in rows]
    if keep is not None:
        opened = [(row, content) for row, content in opened if keep(content)]
    rows, contents = [row for row, _ in opened], [content for _, content in opened]
    page = Shaper.of(request.app.state.pseudonyms, access).page(access, rows, contents, next_after)
    index = audit_read(
        session, request, request.app.state.subjects, access, rows, contents, details
    )
    return replace(page, audit_index=index)


def read_one(
    session: Session, request: Request, access: ProductAccess, record_id: str
) -> tuple[Page, bool]:
    """One record by the publisher's id; (page, found). The read is audited either way."""
    product_id = access.described.product.id
    assert product_id is not None
    key = request.app.state.keyring.for_reading(session, product_id)
    row = session.scalar(
        select(Record).where(
            Record.product_id == access.described.product.id,
            Record.record_id == record_id,
            *grants.scope_clauses(access.grant),
        )
    )
    rows = [row] if row else []
    contents = [sealed.opened(key, row) for row in rows]
    audit_read(
        session, request, request.app.state.subjects, access, rows, contents, {"id": record_id}
    )
    return Shaper.of(request.app.state.pseudonyms, access).page(
        access, rows, contents, None
    ), row is not None


def field_treatments(access: ProductAccess) -> dict[str, str]:
    """Field → treatment: the decision's view, and under a grant limited to some
    fields, every other field withheld."""
    fields = access.described.definition.fields
    treatment_of = views.treatments(access.decision.view, fields, access.decision.treatments)
    return grants.within_scope(treatment_of, access.grant)


def _logged_filters(request: Request, access: ProductAccess, filters: list[str]) -> list[str]:
    """Filters as the audit log keeps them: a value of a protected field (a plate a
    police officer searched for) only as its keyed hash, like the subject index."""
    specs = {spec.name: spec for spec in access.described.definition.fields}
    product = access.described.product.slug
    logged = []
    for text in filters:
        name, _, value = text.partition("=")
        if specs[name].sensitivity != Sensitivity.none:
            value = "keyed:" + request.app.state.subjects.key(product, value)
        logged.append(f"{name}={value}")
    return logged


def audit_read(
    session: Session,
    where: Request | Origin,
    subjects: SubjectIndex,
    access: ProductAccess,
    rows: list[Record],
    contents: list[dict[str, Any]],
    details: dict[str, Any],
    *,
    action: str = "read",
    count_against_grant: bool = True,
) -> int:
    """The read's audit entry (its index), and — if the product declares a subject
    field — the keyed subject index that lets an auditor find every read about one
    subject. Under a grant with a quota, the records are counted against it."""
    product = access.described.product.slug
    index = record_allowed(
        session,
        where,
        access,
        action=action,
        product=product,
        purpose=access.purpose,
        seqs=[row.seq for row in rows],
        grant_id=access.grant_id,
        details=details,
    )
    if access.grant is not None and count_against_grant:
        grants.consume(session, access.grant, len(rows))
    subject_field = access.described.definition.subject_field
    if subject_field:
        kind = access.described.definition.subject_kind
        values = {
            indexed_value(kind, content[subject_field])
            for content in contents
            if subject_field in content
        }
        log.index_subjects(session, index, [subjects.key(product, value) for value in values])
    return index
