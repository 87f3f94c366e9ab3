"""Turning a consumer's pseudonym back into the value, inside the exchange only.

Where the policy allows it (by default: government subscribers, for
law_enforcement), a pseudonym that a given consumer organisation was shown is
matched against the product's personal and sensitive values under that
consumer's key for the epoch it was shown in. The key never leaves the
exchange; the request needs a case reference, and the answer — found or not —
is an audit entry naming the case, the consumer and the records.
"""

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import store as log
from exchange.auditing.subjects import indexed_value
from exchange.auditing.trail import record_allowed
from exchange.catalog.access import ProductAccess, ReidentifyAccess, refusals_logged
from exchange.catalog.models import Sensitivity
from exchange.db import SessionDep
from exchange.errors import BadRequest, FieldError
from exchange.identity.service import get_organization
from exchange.privacy.pseudonyms import EPOCH_ORIGIN, PREFIX, Epoch
from exchange.records.models import Record
from exchange.records.sealed import opened
from exchange.timeutil import parse_rfc3339, to_rfc3339, utcnow

MATCHES_SHOWN = 100

router = APIRouter(prefix="/v1/products/{product}", tags=["records"])


class Reidentification(BaseModel):
    pseudonym: str = Field(pattern=f"^{PREFIX}[a-z2-7]{{26}}$")
    consumer: str = Field(description="The organisation that was shown the pseudonym.")
    case_reference: str = Field(
        min_length=3,
        max_length=100,
        pattern=r"^\S(.*\S)?$",
        description="The case this is for, e.g. GZ-TP-2026-0412 (no leading or trailing blanks).",
    )
    shown_at: str | None = Field(
        default=None, description="When the consumer was shown it (RFC 3339); default: now."
    )


class Reidentified(BaseModel):
    pseudonym: str
    consumer: str
    case_reference: str
    epoch: dict[str, str]
    found: bool
    field: str | None
    value: str | None
    record_count: int
    records: list[str] = Field(description=f"Record ids, at most {MATCHES_SHOWN}.")


@router.post("/reidentify", response_model=Reidentified)
def reidentify(
    request: Request, session: SessionDep, access: ReidentifyAccess, data: Reidentification
) -> Reidentified:
    """Which value a consumer's pseudonym stands for — for law enforcement, with a case
    reference, inside the exchange (the consumer never holds a key). Audited."""
    with refusals_logged(session, request, access):
        consumer = get_organization(session, data.consumer).slug
        moment = _shown_at(data.shown_at)
        definition = access.described.definition
        product = access.described.product.slug
        epoch = Epoch.at(moment, definition.pseudonym_epoch_days)
        pseudonymize = request.app.state.pseudonyms.domain(consumer, product, epoch)
        candidates = [
            spec.name
            for spec in definition.fields
            if spec.sensitivity in (Sensitivity.personal, Sensitivity.sensitive)
        ]
        matches: list[Record] = []
        field: str | None = None
        value: str | None = None
        rows = session.scalars(
            select(Record)
            .where(Record.product_id == access.described.product.id)
            .order_by(Record.seq)
            .execution_options(yield_per=1000)
        )
        key = request.app.state.keyring.for_reading(session, access.described.product.id)
        for row in rows:
            content = opened(key, row)
            for name in candidates:
                if name in content and pseudonymize(content[name]) == data.pseudonym:
                    field, value = name, str(content[name])
                    matches.append(row)
                    break
        _audit(session, request, access, data, consumer, epoch, matches, field, value)
        return Reidentified(
            pseudonym=data.pseudonym,
            consumer=consumer,
            case_reference=data.case_reference,
            epoch=_bounds(epoch),
            found=bool(matches),
            field=field,
            value=value,
            record_count=len(matches),
            records=[row.record_id for row in matches[:MATCHES_SHOWN]],
        )


def _shown_at(text: str | None) -> datetime:
    """When the pseudonym was shown: a time between the first epoch and now."""
    now = utcnow()
    if text is None:
        return now
    try:
        moment = parse_rfc3339(text)
    except ValueError as error:
        raise BadRequest(
            "shown_at is not an RFC 3339 time", errors=[FieldError(str(error), "shown_at")]
        ) from None
    if not EPOCH_ORIGIN <= moment <= now:
        reason = f"must be between {to_rfc3339(EPOCH_ORIGIN)} and now"
        raise BadRequest("shown_at is out of range", errors=[FieldError(reason, "shown_at")])
    return moment


def _bounds(epoch: Epoch) -> dict[str, str]:
    return {"from": to_rfc3339(epoch.start), "to": to_rfc3339(epoch.end)}


def _audit(
    session: Session,
    request: Request,
    access: ProductAccess,
    data: Reidentification,
    consumer: str,
    epoch: Epoch,
    matches: list[Record],
    field: str | None,
    value: str | None,
) -> None:
    index = record_allowed(
        session,
        request,
        access,
        action="reidentify",
        product=access.described.product.slug,
        purpose=access.purpose,
        seqs=[row.seq for row in matches],
        details={
            "case_reference": data.case_reference,
            "consumer": consumer,
            "pseudonym": data.pseudonym,
            "epoch": _bounds(epoch),
            "found": bool(matches),
            "field": field,
        },
    )
    subject_field = access.described.definition.subject_field
    if matches and field == subject_field:
        # so the subject's access report lists who had the plate re-identified, and why
        kind = access.described.definition.subject_kind
        key = request.app.state.subjects.key(
            access.described.product.slug, indexed_value(kind, value)
        )
        log.index_subjects(session, index, [key])
