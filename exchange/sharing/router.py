"""`GET /v1/metrics/sharing`: the sharing performance figures, as JSON or CSV.

`read` on `system:sharing` (stewards and auditors in the default policy); each
call is an audit entry of its own.
"""

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from exchange.auditing.trail import record_allowed
from exchange.auth import SystemAccess, system_access
from exchange.db import SessionDep
from exchange.errors import BadRequest, FieldError
from exchange.sharing.figures import Figures, SharingReport, report
from exchange.timeutil import query_time, utcnow

router = APIRouter(tags=["metrics"])

ReadSharing = Annotated[SystemAccess, system_access("sharing", "read")]
CSV = "text/csv"
_FIGURES = [name for name in Figures.model_fields if name != "refusal_reasons"]


def as_csv(found: SharingReport) -> str:
    """One row per product, then one per organisation; refusal reasons in one cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["scope", "organization", "product", *_FIGURES, "refusal_reasons"])
    rows = [("product", row.organization, row.product, row) for row in found.products]
    rows += [("organization", row.organization, "", row) for row in found.organizations]
    for scope, organization, product, figures in rows:
        reasons = "; ".join(
            f"{reason.source}: {reason.reason} ({reason.count})"
            for reason in figures.refusal_reasons
        )
        values = [
            "" if getattr(figures, name) is None else getattr(figures, name) for name in _FIGURES
        ]
        writer.writerow([scope, organization, product, *values, reasons])
    return out.getvalue()


@router.get(
    "/v1/metrics/sharing",
    response_model=SharingReport,
    responses={200: {"content": {CSV: {}}}},
)
def sharing(
    request: Request,
    session: SessionDep,
    access: ReadSharing,
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[
        str | None, Query(alias="to", description="RFC 3339, exclusive; default and latest: now")
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")
    ] = None,
) -> Response:
    """Per product and per publishing organisation: access requests received,
    answered within their deadline, overdue, median reply time; refusals with
    their reasons; reads answered; feed delivery success rate and lag; data
    freshness (record time to publication). Computed from the request records, the
    audit log, the outbox and the records on each call."""
    start, end = query_time(since, "from"), query_time(until, "to")
    now = utcnow()
    end = min(end, now) if end is not None else now
    if start is not None and start >= end:
        raise BadRequest(
            "the window is empty", errors=[FieldError("not before `to` (or now)", "from")]
        )
    found = report(session, start, end)
    record_allowed(
        session, request, access, action="sharing.read", details={"window": found.window}
    )
    if format == "csv" or (format is None and CSV in request.headers.get("accept", "")):
        headers = {"Content-Disposition": 'attachment; filename="sharing.csv"'}
        return Response(as_csv(found), media_type=f"{CSV}; charset=utf-8", headers=headers)
    return JSONResponse(found.model_dump())
