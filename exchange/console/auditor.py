"""The auditor's pages: the log explorer and its export, the latest checkpoint
and whether the stored log verifies against it, a data subject's access report,
and accesses per day as charts.

Every page needs what the audit API needs, `read` on `system:audit` (a refusal is
logged), and calls the API's own route functions, so each view of the log is
itself an audit entry exactly as over HTTP. The two things the API has no route
for — verifying the whole stored log (the `exchange audit verify --database`
check) and counts per day — are audited here through the same `record_allowed`.
"""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from markupsafe import Markup
from sqlmodel import Session

from audit import CheckpointError, Verifier, open_note
from audit import store as log
from audit.integrity import verify_stored
from exchange.auditing import daily
from exchange.auditing import router as audit_api
from exchange.auditing.trail import record_allowed
from exchange.auth import SystemAccess
from exchange.console.charts import PALETTE, Series, stacked_bars
from exchange.console.pages import ConsoleRoute, page, parsed, redirect
from exchange.console.sections import section_entry
from exchange.console.session import ConsoleCaller, FormDep, console_access
from exchange.db import SessionDep
from exchange.errors import BadRequest, FieldError
from exchange.timeutil import utcnow

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, tags=["console"])

ReadAudit = Annotated[SystemAccess, console_access("audit", "read")]
PAGE_SIZE = 50
DECISIONS = {"allow": ("allowed", "#1d7a3a"), "deny": ("denied", "#b3261e")}
DONE = {"signed": "A fresh checkpoint was signed over every entry so far."}
EMPTY = "No accesses in this window · 此期间没有访问"
Text = Annotated[str, Query(max_length=200)]


@router.get("", include_in_schema=False)
def landing(request: Request, session: SessionDep, caller: ConsoleCaller) -> Response:
    return section_entry(request, session, caller, "/console/audit")


def entry_filters(
    actor: Text = "",
    organization: Text = "",
    product: Text = "",
    action: Text = "",
    decision: Text = "",
    purpose: Text = "",
    grant: Text = "",
    since: Annotated[str, Query(alias="from", max_length=64)] = "",
    until: Annotated[str, Query(alias="to", max_length=64)] = "",
) -> audit_api.EntryFilters:
    """The filter form's fields (the API's parameter names) as the API's filters:
    a field left blank filters nothing. Times are checked by the API, which names
    `from` or `to`; a decision other than allow or deny is refused here, as the
    API's query validation refuses it."""
    if decision not in ("", "allow", "deny"):
        raise BadRequest(
            "decision is allow or deny", errors=[FieldError("not allow or deny", "decision")]
        )
    return audit_api.EntryFilters(
        actor=actor.strip() or None,
        organization=organization.strip() or None,
        product=product.strip() or None,
        action=action.strip() or None,
        decision=decision or None,
        purpose=purpose.strip() or None,
        grant=grant.strip() or None,
        since=since.strip() or None,
        until=until.strip() or None,
    )


Filters = Annotated[audit_api.EntryFilters, Depends(entry_filters)]


def _fields(filters: audit_api.EntryFilters) -> dict[str, str]:
    """The filters as the form's (and the API's) parameters; "" where not given."""
    return {
        "actor": filters.actor or "",
        "organization": filters.organization or "",
        "product": filters.product or "",
        "action": filters.action or "",
        "decision": filters.decision or "",
        "purpose": filters.purpose or "",
        "grant": filters.grant or "",
        "from": filters.since or "",
        "to": filters.until or "",
    }


def _url(path: str, filters: audit_api.EntryFilters, **more: str | int) -> str:
    """`path` with the given filters (and `more`) in its query: a link that keeps them."""
    given = {name: value for name, value in (_fields(filters) | more).items() if value != ""}
    return f"{path}?{urlencode(given)}" if given else path


@router.get("/entries", include_in_schema=False)
def entries(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    filters: Filters,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE_SIZE,
) -> Response:
    """The explorer: the filter form, one page of matching entries (the API's
    listing, audited as `audit.read`), the next page's link with the same filters,
    and the export of what the filters select."""
    listing = audit_api.entries(
        request, session, access, filters=filters, cursor=cursor or None, limit=limit
    )
    sized = {"limit": limit} if limit != PAGE_SIZE else {}
    following = (
        _url("/console/audit/entries", filters, cursor=listing.next_cursor, **sized)
        if listing.next_cursor
        else None
    )
    return page(
        request,
        "audit_entries.html",
        listing=listing,
        form=_fields(filters),
        next_url=following,
        export_url=_url("/console/audit/export", filters),
    )


@router.get("/export", include_in_schema=False)
def export(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    filters: Filters,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=audit_api.EXPORT_MAX)] = 10_000,
) -> Response:
    """The API's NDJSON export of the filtered entries (audited as `audit.export`),
    as a file to download; `python -m audit FILE --public-key KEY` verifies it."""
    response = audit_api.export(
        request, session, access, filters=filters, cursor=cursor or None, limit=limit
    )
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.ndjson"'
    return response


@router.get("/checkpoint", include_in_schema=False)
def checkpoint(
    request: Request, session: SessionDep, access: ReadAudit, done: str | None = None
) -> Response:
    """The latest signed checkpoint (the API's), opened with the exchange's key,
    and the whole stored log verified against its hashes, Merkle nodes and every
    checkpoint: ok, or the first entry that does not verify."""
    note = audit_api.checkpoint(request, session, access, fresh=False)
    verifier = Verifier.parse(request.app.state.signer.verifier_key)
    try:
        signed, signature_problem = open_note(note, verifier), None
    except CheckpointError as error:
        signed, signature_problem = None, str(error)
    broken = verify_stored(session, verifier)
    size = log.head(session).size
    record_allowed(
        session,
        request,
        access,
        action="audit.verify",
        record_count=0,
        details={
            "size": size,
            "verified": broken is None,
            **({"first_bad_entry": broken.index} if broken else {}),
        },
    )
    extra = signed.extra if signed else ()
    time = next((line.removeprefix("time ") for line in extra if line.startswith("time ")), None)
    return page(
        request,
        "audit_checkpoint.html",
        note=note,
        signed=signed,
        time=time,
        signature_problem=signature_problem,
        key_name=verifier.name,
        key_id=verifier.key_id.hex(),
        broken=broken,
        size=size,
        notice=DONE.get(done or ""),
    )


@router.post("/checkpoint", include_in_schema=False)
def sign_checkpoint(
    request: Request, session: SessionDep, access: ReadAudit, _form: FormDep
) -> Response:
    """The API's `GET /v1/audit/checkpoint?fresh=true`: sign one covering every entry."""
    audit_api.checkpoint(request, session, access, fresh=True)
    return redirect("/console/audit/checkpoint?done=signed")


@router.get("/subjects", include_in_schema=False)
def subjects_form(request: Request, access: ReadAudit) -> Response:
    return page(request, "audit_subjects.html", form={"product": "", "subject": "", "limit": ""})


@router.post("/subjects", include_in_schema=False)
def subject_report(
    request: Request, session: SessionDep, access: ReadAudit, form: FormDep
) -> Response:
    """The API's subject report. Posted, as the API's is, so that the value (a
    plate) never appears in a URL or a server's access log."""
    fields = {"product": form.get("product").strip(), "subject": form.get("subject").strip()}
    if form.get("limit").strip():
        fields["limit"] = form.get("limit").strip()
    query = parsed(audit_api.SubjectQuery, **fields)
    report = audit_api.subject_accesses(request, session, access, query=query)
    shown = {"product": query.product, "subject": query.subject, "limit": str(query.limit)}
    return page(request, "audit_subjects.html", form=shown, report=report)


def _decision_series(decision: str | None, values: list[int]) -> Series:
    name, colour = DECISIONS.get(decision or "", (decision or "(none)", "#5b6574"))
    return Series(name, values, colour)


def _counted(
    request: Request, session: Session, access: SystemAccess, days: int
) -> daily.DailyAccesses:
    """The counts per day, and their read in the audit log: the API has no route
    for them, so the console audits them as the audit API audits its reads."""
    counted = daily.accesses_per_day(session, days=days, now=utcnow())
    record_allowed(
        session,
        request,
        access,
        action="audit.daily",
        record_count=len(counted.counts),
        details={
            "days": days,
            "from": counted.days[0].isoformat(),
            "to": counted.days[-1].isoformat(),
            "actions": list(daily.ACCESSES),
        },
    )
    return counted


def _charts(counted: daily.DailyAccesses) -> dict[str, Markup]:
    """The two stacked bar charts, a bar per day: by organisation (in the palette's
    colours) and by decision (allowed green, denied red)."""
    labels = [day.isoformat() for day in counted.days]
    ticks = [day.strftime("%m-%d") for day in counted.days]
    n = len(labels)

    def chart(key: str, title: str, series: list[Series]) -> Markup:
        return stacked_bars(f"chart-by-{key}", title, labels, series, ticks=ticks, empty=EMPTY)

    organizations = [
        Series(name or "(none)", values, PALETTE[i % len(PALETTE)])
        for i, (name, values) in enumerate(counted.by("organization").items())
    ]
    decisions = [_decision_series(name, values) for name, values in counted.by("decision").items()]
    return {
        "organization_chart": chart(
            "organization",
            f"Accesses per day by organisation, last {n} days · 最近 {n} 天每日访问量（按机构）",
            organizations,
        ),
        "decision_chart": chart(
            "decision",
            f"Accesses per day by decision, last {n} days · 最近 {n} 天每日访问量（按决定）",
            decisions,
        ),
    }


@router.get("/charts", include_in_schema=False)
def charts(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    days: Annotated[int, Query(ge=1, le=daily.MAX_DAYS)] = 14,
) -> Response:
    """Accesses per UTC day over the last `days` days, stacked by organisation and
    by decision, with the same numbers as tables; the read is audited."""
    counted = _counted(request, session, access, days)
    return page(
        request,
        "audit_charts.html",
        days=days,
        labels=[day.isoformat() for day in counted.days],
        counted=counted,
        by_organization=counted.by("organization"),
        by_decision=counted.by("decision"),
        per_day=counted.per_day(),
        accesses=daily.ACCESSES,
        **_charts(counted),
    )
