"""The subscriber's pages: my subscriptions and their health (lag, last delivery,
last error, dead letters) with redelivery; my organisation's access requests and
grants.

Each page is the API's own route function under the same decision: `manage` on
`system:feeds` for subscriptions (which are the viewer's organisation's only),
`read` on `system:grants` for requests and grants (restricted by the API to the
viewer's organisation). Refusals are logged by those decisions.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from exchange.auth import SystemAccess
from exchange.console.pages import ConsoleRoute, page, parsed, redirect
from exchange.console.sections import section_entry
from exchange.console.session import ConsoleCaller, FormDep, console_access
from exchange.db import SessionDep
from exchange.errors import FieldError, ValidationFailed
from exchange.feeds import router as feeds_api
from exchange.grants import router as grants_api

router = APIRouter(prefix="/console/subscriber", route_class=ConsoleRoute, tags=["console"])

PAGE_SIZE = 50
DEAD_SHOWN = 200  # dead letters listed for choosing; "all" redelivers every one

ManageFeeds = Annotated[SystemAccess, console_access("feeds", "manage")]
ReadGrants = Annotated[SystemAccess, console_access("grants", "read")]


@router.get("", include_in_schema=False)
def entry(request: Request, session: SessionDep, caller: ConsoleCaller) -> Response:
    return section_entry(request, session, caller, "/console/subscriber")


@router.get("/subscriptions", include_in_schema=False)
def subscriptions(
    request: Request,
    session: SessionDep,
    manage: ManageFeeds,
    redelivered: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The API's GET /v1/subscriptions, and for those with dead letters the letters
    themselves (GET /v1/subscriptions/{id}/deliveries)."""
    listing = feeds_api.list_own(session, manage)["subscriptions"]
    dead: dict[int, list[dict[str, Any]]] = {
        shown["id"]: feeds_api.deliveries(session, manage, shown["id"], cursor=None, limit=1)[
            "dead_letters"
        ][:DEAD_SHOWN]
        for shown in listing
        if shown["health"]["dead_letters"]
    }
    notice = (
        f"{redelivered} dead letter(s) queued for redelivery." if redelivered is not None else None
    )
    return page(
        request,
        "subscriber_subscriptions.html",
        subscriptions=listing,
        dead=dead,
        notice=notice,
    )


@router.post("/subscriptions/{subscription_id}/redeliver", include_in_schema=False)
def redeliver(
    request: Request,
    session: SessionDep,
    manage: ManageFeeds,
    form: FormDep,
    subscription_id: int,
) -> Response:
    """The API's POST /v1/subscriptions/{id}/redeliver: every dead letter (`which`
    is `all`), or the events ticked (`selected`). Any other `which`, or none, is
    refused naming it, and nothing is requeued."""
    which = form.get("which")
    if which not in ("all", "selected"):
        raise ValidationFailed(
            "say which dead letters to redeliver",
            errors=[FieldError("must be all or selected", "which")],
        )
    chosen = form.all("event")
    if which == "selected" and not chosen:
        raise ValidationFailed(
            "tick the dead letters to redeliver", errors=[FieldError("none ticked", "event")]
        )
    data = parsed(feeds_api.Redelivery, events=chosen if which == "selected" else None)
    done = feeds_api.redeliver(request, session, manage, subscription_id, data)
    return redirect(f"/console/subscriber/subscriptions?redelivered={int(done['requeued'])}")


@router.get("/requests", include_in_schema=False)
def requests(
    request: Request,
    session: SessionDep,
    access: ReadGrants,
    status: Annotated[str | None, Query(pattern="^(pending|approved|denied)?$")] = None,
    requests_cursor: str | None = None,
    grants_cursor: str | None = None,
) -> Response:
    """The API's GET /v1/access-requests and GET /v1/grants, as the viewer: its
    organisation's only."""
    asked = grants_api.list_requests(
        request,
        session,
        access.caller,
        status=status or None,
        cursor=requests_cursor,
        limit=PAGE_SIZE,
    )
    held = grants_api.list_grants(
        request, session, access.caller, active=False, cursor=grants_cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "subscriber_requests.html",
        asked=asked,
        held=held,
        wanted=status or "",
        requests_cursor=requests_cursor or "",
        grants_cursor=grants_cursor or "",
    )
