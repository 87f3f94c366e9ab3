"""Publishing a batch of records: validated, deduplicated by the publisher's ids,
sealed, numbered densely, and audited in the same transaction.

It takes a `ProductAccess`, which exists only for an allowed decision.
"""

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from exchange.auditing.trail import Origin, record_allowed
from exchange.catalog.access import ProductAccess
from exchange.catalog.models import Definition, Product
from exchange.errors import Conflict, FieldError, ValidationFailed
from exchange.feeds import outbox
from exchange.keyring.service import Keyring
from exchange.privacy.sealing import DataKey
from exchange.records import sealed, validation
from exchange.records.models import Record
from exchange.timeutil import utcnow

_LOOKUP_CHUNK = 500


@dataclass
class PublishResult:
    accepted: int = 0
    unchanged: int = 0
    rejected: list[FieldError] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None


@dataclass(frozen=True)
class _Valid:
    index: int
    record_id: str
    content: dict[str, Any]
    digest: str


def _validate_all(
    items: list[Any], access: ProductAccess, key: DataKey
) -> tuple[list[_Valid], list[FieldError], int]:
    """Valid records (first of each id), errors by position, and how many records
    repeat an earlier one of the batch exactly."""
    definition = access.described.definition
    valid, errors, seen, repeats = [], [], {}, 0
    for index, item in enumerate(items):
        try:
            record_id, content = validation.validate(item, definition)
        except validation.Invalid as invalid:
            errors.append(validation.field_error(index, invalid))
            continue
        digest = key.content_hash(content)
        if record_id in seen:
            if seen[record_id] != digest:
                errors.append(
                    FieldError("id repeated in this batch with other content", "id", index)
                )
            else:
                repeats += 1
            continue
        seen[record_id] = digest
        valid.append(_Valid(index, record_id, content, digest))
    return valid, errors, repeats


def _stored_hashes(session: Session, product_id: int, ids: list[str]) -> dict[str, str]:
    stored: dict[str, str] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        stored.update(
            session.execute(
                select(Record.record_id, Record.content_hash).where(
                    Record.product_id == product_id, Record.record_id.in_(chunk)
                )
            ).all()
        )
    return stored


def publish(
    session: Session,
    where: Request | Origin,
    access: ProductAccess,
    items: list[Any],
    *,
    atomic: bool,
    keyring: Keyring,
) -> PublishResult:
    """Store the new records of a batch; a record already stored with the same
    content is unchanged, with other content a conflict.

    Atomic (the default): any bad record rejects the batch — ValidationFailed (422)
    listing every bad record by position, or Conflict (409) when the only problems
    are ids already published with other content — and nothing is written.
    Otherwise the good records are stored and the bad ones reported. Protected
    fields are sealed with the product's data key (Gone if it was destroyed).
    """
    described = access.described
    product_id = described.product.id
    assert product_id is not None
    key = keyring.for_writing(session, product_id)
    valid, errors, repeats = _validate_all(items, access, key)
    stored = _stored_hashes(session, product_id, [v.record_id for v in valid])
    result = PublishResult(unchanged=repeats)
    new: list[_Valid] = []
    for item in valid:
        if item.record_id not in stored:
            new.append(item)
        elif stored[item.record_id] == item.digest:
            result.unchanged += 1
        else:
            errors.append(FieldError("id already published with other content", "id", item.index))
    errors.sort(key=lambda error: error.index or 0)
    if errors and atomic:
        only_conflicts = all(e.reason.startswith("id already published") for e in errors)
        error_type = Conflict if only_conflicts else ValidationFailed
        raise error_type(
            f"{len(errors)} of {len(items)} records rejected; nothing was written", errors=errors
        )
    result.rejected = errors
    seqs = (
        _insert(session, product_id, described.version, new, described.definition, key)
        if new
        else []
    )
    result.accepted = len(seqs)
    if seqs:
        result.first_seq, result.last_seq = seqs[0], seqs[-1]
    record_allowed(
        session,
        where,
        access,
        action="publish",
        product=described.product.slug,
        seqs=seqs,
        details={
            "version": described.version,
            "unchanged": result.unchanged,
            "rejected": len(errors),
        },
    )
    return result


def _insert(
    session: Session,
    product_id: int,
    version: int,
    new: list[_Valid],
    definition: Definition,
    key: DataKey,
) -> list[int]:
    """Rows with the next dense sequence numbers, under the product row's lock, and
    their subscriptions' events (the outbox) in the same transaction."""
    last = session.scalar(
        select(Product.record_seq).where(Product.id == product_id).with_for_update()
    )
    assert last is not None
    now = utcnow()
    layout = sealed.Layout.of(definition)
    rows = []
    for offset, item in enumerate(new, start=1):
        stored = sealed.seal(layout, key, item.record_id, item.content)
        rows.append(
            {
                "product_id": product_id,
                "seq": last + offset,
                "record_id": item.record_id,
                "product_version": version,
                "content": stored.content,
                "sealed": stored.sealed,
                "blind": stored.blind,
                "subject_key": stored.subject_key,
                "content_hash": item.digest,
                "event_time": validation.event_time(item.content, definition),
                "published_at": now,
            }
        )
    session.execute(insert(Record), rows)
    session.execute(
        update(Product).where(Product.id == product_id).values(record_seq=last + len(rows))
    )
    outbox.enqueue(
        session,
        product_id,
        definition.time_field,
        [(row["seq"], item.content) for row, item in zip(rows, new, strict=True)],
    )
    return [row["seq"] for row in rows]
