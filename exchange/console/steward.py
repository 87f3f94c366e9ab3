"""The steward's pages: the access-request queue (approve, deny), the grants
(revoke), and — from `policy_editor` — the policy editor and its history.

Every page is guarded by the decision the API's own route makes (`manage` on
`system:grants` here), and every list and action is the API's route function
called with the steward's console session: the queue, the grant created, the
revocation and their audit entries are exactly what the API would have done.
"""

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Request, Response

from exchange.auth import SystemAccess
from exchange.console import policy_editor
from exchange.console.pages import ConsoleRoute, page, parsed, redirect
from exchange.console.sections import section_entry
from exchange.console.session import ConsoleCaller, FormDep, console_access
from exchange.db import SessionDep
from exchange.grants import router as grants_api
from exchange.grants.service import Approval, Refusal

router = APIRouter(prefix="/console/steward", route_class=ConsoleRoute, tags=["console"])
router.include_router(policy_editor.router)

ManageGrants = Annotated[SystemAccess, console_access("grants", "manage")]
PAGE_SIZE = 50
Status = Literal["pending", "approved", "denied", "all"]


@router.get("", include_in_schema=False)
def steward(request: Request, session: SessionDep, caller: ConsoleCaller) -> Response:
    """The queue for those who manage grants, else the policy; a logged refusal for others."""
    return section_entry(request, session, caller, "/console/steward")


def _done(done: str | None, request_id: int | None, grant_id: int | None) -> str | None:
    """The notice for a finished action: fixed words and numbers, never the query's text."""
    if done == "approved" and request_id and grant_id:
        return f"Access request #{request_id} approved: grant #{grant_id} is in force."
    if done == "denied" and request_id:
        return f"Access request #{request_id} denied; the requester will read your reason."
    if done == "revoked" and grant_id:
        return f"Grant #{grant_id} revoked: the next read under it is denied."
    return None


@router.get("/requests", include_in_schema=False)
def requests(
    request: Request,
    session: SessionDep,
    access: ManageGrants,
    status: Status = "pending",
    cursor: str | None = None,
    done: str | None = None,
    request_id: int | None = None,
    grant_id: int | None = None,
) -> Response:
    """The queue with a decision form per pending request, in the API's order:
    pending first, earliest due (so overdue, then oldest) first, across pages; then
    the decided, newest first. Not re-sorted here, so no page disagrees with the API."""
    listing = grants_api.list_requests(
        request,
        session,
        access.caller,
        status=None if status == "all" else status,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    return page(
        request,
        "steward_requests.html",
        queue=listing.requests,
        next_cursor=listing.next_cursor,
        chosen=status,
        statuses=get_args(Status),
        notice=_done(done, request_id, grant_id),
    )


@router.post("/requests/{request_id}/approve", include_in_schema=False)
def approve(
    request: Request, session: SessionDep, access: ManageGrants, form: FormDep, request_id: int
) -> Response:
    """The API's approve: the grant for the days asked (or those given), with an optional quota."""
    data = parsed(
        Approval,
        reason=form.get("reason").strip(),
        days=form.get("days").strip() or None,
        quota=form.get("quota").strip() or None,
    )
    approved = grants_api.approve(request, session, access, request_id, data)
    return redirect(
        f"/console/steward/requests?done=approved&request_id={request_id}"
        f"&grant_id={approved.grant.id}"
    )


@router.post("/requests/{request_id}/deny", include_in_schema=False)
def deny(
    request: Request, session: SessionDep, access: ManageGrants, form: FormDep, request_id: int
) -> Response:
    """The API's deny: the reason is required, and the requester reads it."""
    data = parsed(Refusal, reason=form.get("reason").strip())
    grants_api.deny(request, session, access, request_id, data)
    return redirect(f"/console/steward/requests?done=denied&request_id={request_id}")


@router.get("/grants", include_in_schema=False)
def grants(
    request: Request,
    session: SessionDep,
    access: ManageGrants,
    active: bool = False,
    cursor: str | None = None,
    done: str | None = None,
    grant_id: int | None = None,
) -> Response:
    """Every grant (or, with `active`, those in force), oldest first, with a revoke
    form on each one in force. `done` and `grant_id` name the revocation just made,
    for the notice after the revoke form's redirect."""
    listing = grants_api.list_grants(
        request, session, access.caller, active=active, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "steward_grants.html",
        listing=listing,
        active=active,
        notice=_done(done, None, grant_id),
    )


@router.post("/grants/{grant_id}/revoke", include_in_schema=False)
def revoke(
    request: Request, session: SessionDep, access: ManageGrants, form: FormDep, grant_id: int
) -> Response:
    """The API's DELETE /v1/grants/{id}. Its `reason` query has Refusal's bounds, which
    a direct call does not check: the form is held to them here."""
    reason = parsed(Refusal, reason=form.get("reason").strip()).reason
    grants_api.revoke(request, session, access, grant_id, reason=reason)
    return redirect(f"/console/steward/grants?done=revoked&grant_id={grant_id}")
