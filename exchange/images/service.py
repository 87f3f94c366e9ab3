"""Storing a record's image sealed, and serving it in the view the decision gives.

The image field's treatment decides what leaves: `raw` the uploaded bytes exactly
(evidence), `redacted` a copy with every plate and face box filled solid and all
metadata gone, made afresh for each read with its receipt, `withheld` nothing.
The boxes are the record's own (its image field lists them), so what is hidden
is what the publisher declared when publishing the record.

A preview (`Preview`) shows one who may read the image (its publisher) what
another reader would get: per image, the more protective of the two treatments,
so it never shows more than either decision allows. It is audited as
`image.preview` with the viewer's own decision (its real view) and, in the
details, the other reader's hypothetical decision: not as a `read` in a view the
viewer's decision never gave, which a policy dry-run would replay as a flip.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.auditing.trail import Origin, record_allowed
from exchange.catalog.access import ProductAccess
from exchange.catalog.models import FieldSpec, FieldType
from exchange.errors import AccessDenied, Conflict, FieldError, NotFound, ValidationFailed
from exchange.grants import service as grants
from exchange.images.models import RecordImage
from exchange.keyring.service import Keyring
from exchange.privacy import redaction, views
from exchange.privacy.sealing import DataKey
from exchange.records import service as records
from exchange.records.models import Record
from exchange.records.sealed import opened
from policies import Decision, Subject
from policies.decision import TREATMENTS_MOST_PROTECTIVE_FIRST

PREVIEW = "image.preview"  # the audit action of a preview; a dry-run does not replay it


@dataclass(frozen=True)
class Stored:
    record_id: str
    created: bool
    media_type: str
    width: int
    height: int
    size: int
    boxes: int
    original_sha256: str


@dataclass(frozen=True)
class Preview:
    """Another reader's decision on the same read, asked of the policy for a reader
    who made no request (`subject`, whose organisation holds grants for `granted`)."""

    subject: Subject
    granted: frozenset[str]
    decision: Decision

    def treatment(self, fields: list[FieldSpec], field: str) -> str:
        """The image field's treatment in that reader's view: withheld if denied."""
        if not self.decision.allowed:
            return "withheld"
        shaped = views.treatments(self.decision.view, fields, self.decision.treatments)
        return shaped.get(field, "withheld")

    def as_logged(self, purpose: str, image: str) -> dict[str, Any]:
        """What the audit entry says of the preview: whom it showed the image as, and
        that reader's decision and treatment of the image (`image`)."""
        return {
            "as": {
                "kind": self.subject.kind,
                "roles": sorted(self.subject.roles),
                "organization": self.subject.organization or None,
                "granted": sorted(self.granted),
            },
            "purpose": purpose,
            "allowed": self.decision.allowed,
            "rule": list(self.decision.rule) if self.decision.rule else None,
            "view": self.decision.view if self.decision.allowed else None,
            "reason": self.decision.reason,
            "image": image,
        }


@dataclass(frozen=True)
class Served:
    data: bytes
    media_type: str
    treatment: str
    receipt: redaction.Receipt | None


def _image_field(access: ProductAccess) -> str:
    for spec in access.described.definition.fields:
        if spec.type == FieldType.image_ref:
            return spec.name
    raise ValidationFailed(
        f"{access.described.product.slug} has no image_ref field, so its records have no image",
        errors=[FieldError("the product's schema has no image_ref field", "product")],
    )


def boxes_of(content: dict[str, Any], field: str) -> list[redaction.Box] | None:
    """The plate and face boxes the record declares; None if it declares none (a bare
    reference), which is not the same as declaring that there are none (`[]`)."""
    value = content.get(field)
    if not isinstance(value, dict) or "boxes" not in value:
        return None
    return [redaction.Box(**box) for box in value["boxes"]]


def _record(session: Session, access: ProductAccess, record_id: str) -> Record:
    row = session.scalar(
        select(Record).where(
            Record.product_id == access.described.product.id,
            Record.record_id == record_id,
            *grants.scope_clauses(access.grant),
        )
    )
    if row is None:
        raise NotFound(f"no record {record_id!r} in {access.described.product.slug}")
    return row


def _image_of(session: Session, product_id: int, record_id: str) -> RecordImage | None:
    return session.scalar(
        select(RecordImage).where(
            RecordImage.product_id == product_id, RecordImage.record_id == record_id
        )
    )


def upload(
    session: Session,
    where: Request | Origin,
    access: ProductAccess,
    keyring: Keyring,
    images: Mapping[str, bytes],
) -> list[Stored]:
    """Seal and keep records' images (by record id), with one audit entry. The same
    bytes again change nothing; other bytes for a record that has an image are a
    conflict (evidence is not replaced). Raises ValidationFailed for an unreadable
    image or boxes outside it, NotFound for an unknown record, Gone for an erased
    product; then nothing is kept."""
    field = _image_field(access)
    product_id = access.described.product.id
    assert product_id is not None
    key = keyring.for_writing(session, product_id)
    stored, seqs = [], []
    for record_id, data in images.items():
        row = _record(session, access, record_id)
        stored.append(_store(session, access, key, field, row, data))
        seqs.append(row.seq)
    session.flush()
    record_allowed(
        session,
        where,
        access,
        action="image.upload",
        product=access.described.product.slug,
        seqs=seqs,
        details={
            "images": [
                {
                    "id": one.record_id,
                    "stored": one.created,
                    "bytes": one.size,
                    "original_sha256": one.original_sha256,
                }
                for one in stored
            ]
        },
    )
    return stored


def _store(
    session: Session, access: ProductAccess, key: DataKey, field: str, row: Record, data: bytes
) -> Stored:
    boxes = boxes_of(opened(key, row), field)
    if boxes is None:
        reason = 'declare where its plates and faces are: {"ref": …, "boxes": […]} ([] if none)'
        raise ValidationFailed(
            f"record {row.record_id!r} declares no boxes, so its image could not be redacted",
            errors=[FieldError(reason, field)],
        )
    try:
        info = redaction.inspect(data)
    except redaction.InvalidImage as error:
        raise ValidationFailed(
            "the image cannot be read", errors=[FieldError(str(error), "body")]
        ) from None
    try:
        redaction.check_boxes(info, boxes)
    except redaction.InvalidImage as error:
        reason = f"{error}; the boxes come from the record's {field} field"
        raise ValidationFailed(
            "the record's boxes do not fit the image", errors=[FieldError(reason, f"{field}.boxes")]
        ) from None
    existing = _image_of(session, row.product_id, row.record_id)
    if existing is not None:
        if key.open_image(row.record_id, existing.sealed) != data:
            raise Conflict(
                f"record {row.record_id!r} already has another image; images are evidence"
            )
    else:
        session.add(
            RecordImage(
                product_id=row.product_id,
                record_id=row.record_id,
                media_type=info.media_type,
                width=info.width,
                height=info.height,
                size=len(data),
                sealed=key.seal_image(row.record_id, data),
                uploaded_by=access.caller.client_id,
            )
        )
    digest = hashlib.sha256(data).hexdigest()
    return Stored(
        row.record_id,
        existing is None,
        info.media_type,
        info.width,
        info.height,
        len(data),
        len(boxes),
        digest,
    )


def serve(
    session: Session,
    request: Request,
    access: ProductAccess,
    record_id: str,
    *,
    preview: Preview | None = None,
) -> Served:
    """The record's image as the view shows it, audited as a read of that record;
    with `preview`, in the more protective of the access's and the preview's
    treatments, audited as `image.preview` (see the module's docstring). Raises
    AccessDenied where the view withholds images, NotFound without one."""
    field = _image_field(access)
    product_id = access.described.product.id
    assert product_id is not None
    treatment = records.field_treatments(access).get(field, "withheld")
    theirs = preview.treatment(access.described.definition.fields, field) if preview else None
    if theirs is not None:
        treatment = min(treatment, theirs, key=TREATMENTS_MOST_PROTECTIVE_FIRST.index)
    if treatment not in ("raw", "redacted"):
        raise AccessDenied(
            f"for {access.purpose}, this view withholds {field}",
            hint="ask for a purpose whose view includes images (POST /v1/decisions explains)",
        )
    key: DataKey | None = request.app.state.keyring.for_reading(session, product_id)
    row = _record(session, access, record_id)
    image = _image_of(session, product_id, record_id)
    if image is None or key is None:
        raise NotFound(f"record {record_id!r} has no image")
    content = opened(key, row)
    original = key.open_image(record_id, image.sealed)
    if treatment == "raw":
        served = Served(original, image.media_type, "raw", None)
    else:
        boxes = boxes_of(content, field)
        if boxes is None:  # stored before boxes were required: nothing says what to hide
            raise AccessDenied(
                f"record {record_id!r} declares no plate or face boxes, so its image is withheld",
                hint="this record was stored without boxes; its image cannot be shown redacted",
            )
        shown = redaction.redact(original, boxes)
        served = Served(shown.data, shown.media_type, "redacted", shown.receipt)
    details: dict[str, Any] = {"id": record_id, "image": treatment}
    if served.receipt is not None:
        receipt = served.receipt
        details["receipt"] = {
            "original_sha256": receipt.original_sha256,
            "output_sha256": receipt.output_sha256,
            "boxes": len(receipt.boxes),
        }
    if preview is not None and theirs is not None:
        details["preview"] = preview.as_logged(access.purpose, theirs)
    records.audit_read(
        session,
        request,
        request.app.state.subjects,
        access,
        [row],
        [content],
        details,
        action="read" if preview is None else PREVIEW,
    )
    return served
