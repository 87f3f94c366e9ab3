"""Publishing records and reading them through a view."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from exchange.catalog.access import PublishAccess, ReadAccess, refusals_logged
from exchange.db import SessionDep
from exchange.errors import NotFound, render
from exchange.pagination import decode_cursor, encode_cursor
from exchange.records import publishing, service
from exchange.records.body import NDJSON, read_batch
from exchange.timeutil import query_time, to_rfc3339

router = APIRouter(prefix="/v1/products/{product}/records", tags=["records"])


class PublishOutcome(BaseModel):
    accepted: int
    unchanged: int
    rejected: list[dict[str, Any]]
    first_seq: int | None
    last_seq: int | None


class Shaped(BaseModel):
    """How a read's records were shaped, and under what."""

    product: str
    version: int
    purpose: str
    view: str
    label: str = Field(description="raw, or deidentified if any field was not left as stored.")
    fields: dict[str, str] = Field(description="Per field, the treatment applied.")
    pseudonyms_until: str | None = Field(
        description="When this consumer's pseudonyms for the product change (end of the epoch)."
    )
    grant: int | None = Field(description="The grant this read was allowed under, if any.")

    @classmethod
    def fields_of(cls, access: ReadAccess, page: service.Page) -> dict[str, Any]:
        until = page.pseudonyms_until
        return {
            "product": access.described.product.slug,
            "version": access.described.version,
            "purpose": access.purpose,
            "view": page.view,
            "label": page.label,
            "fields": page.treatments,
            "pseudonyms_until": to_rfc3339(until) if until else None,
            "grant": access.grant.id if access.grant else None,
        }


class RecordPage(Shaped):
    records: list[dict[str, Any]]
    next_cursor: str | None


class OneRecord(Shaped):
    record: dict[str, Any]


@router.post("", response_model=PublishOutcome)
def publish(
    request: Request,
    session: SessionDep,
    access: PublishAccess,
    items: Annotated[list[Any], Depends(read_batch)],
    atomic: Annotated[
        bool, Query(description="Reject the whole batch if any record is bad.")
    ] = True,
) -> PublishOutcome:
    """Publish records (a JSON array, or NDJSON). Each has the publisher's `id`:
    the same id with the same content is a no-op; with other content, a conflict.
    By default one bad record rejects the batch and nothing is written; with
    `atomic=false` the good ones are stored and the bad ones listed."""
    with refusals_logged(session, request, access):
        result = publishing.publish(
            session, request, access, items, atomic=atomic, keyring=request.app.state.keyring
        )
    request.app.state.doorbell.ring_after_commit(session)
    return PublishOutcome(
        accepted=result.accepted,
        unchanged=result.unchanged,
        rejected=[{k: v for k, v in vars(e).items() if v is not None} for e in result.rejected],
        first_seq=result.first_seq,
        last_seq=result.last_seq,
    )


@router.get("", response_model=RecordPage)
def read(
    request: Request,
    session: SessionDep,
    access: ReadAccess,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
    filter: Annotated[list[str] | None, Query(description="field=value, repeatable")] = None,
) -> Response:
    """Read records for a stated `purpose`, oldest first, in the view the policy
    decides. `Accept: application/x-ndjson` streams one record a line, with the
    view and next cursor in the `Exchange-View` and `Exchange-Next-Cursor` headers."""
    with refusals_logged(session, request, access):
        page = service.read_page(
            session,
            request,
            access,
            after=decode_cursor(cursor),
            since=query_time(since, "from"),
            until=query_time(until, "to"),
            filters=filter or [],
            limit=limit,
        )
    next_cursor = encode_cursor(page.next_after) if page.next_after is not None else None
    if NDJSON in request.headers.get("accept", ""):
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in page.records)
        headers = {"Exchange-View": page.view, "Exchange-Label": page.label}
        if page.pseudonyms_until is not None:
            headers["Exchange-Pseudonyms-Until"] = to_rfc3339(page.pseudonyms_until)
        if access.grant is not None:
            headers["Exchange-Grant"] = str(access.grant.id)
        if next_cursor:
            headers["Exchange-Next-Cursor"] = next_cursor
        return Response(body, media_type=NDJSON, headers=headers)
    return JSONResponse(
        RecordPage(
            **Shaped.fields_of(access, page), records=page.records, next_cursor=next_cursor
        ).model_dump()
    )


@router.get("/{record_id}", response_model=OneRecord)
def read_one(request: Request, session: SessionDep, access: ReadAccess, record_id: str) -> Response:
    """One record by the publisher's id, in the decided view."""
    with refusals_logged(session, request, access):
        page, found = service.read_one(session, request, access, record_id)
    if not found:
        return render(
            request, NotFound(f"no record {record_id!r} in {access.described.product.slug}")
        )
    return JSONResponse(
        OneRecord(**Shaped.fields_of(access, page), record=page.records[0]).model_dump()
    )
