"""Signing in to the console, the session cookie, and the CSRF check on every form.

Signing in is the API's own client-credentials exchange (`issue_token`, audited
as `token.issue`); the token it returns is the session: kept in an HttpOnly,
SameSite=Strict cookie scoped to /console, and it ends when the token expires
(`token_ttl_seconds`, 15 minutes by default), after which the next page asks to
sign in again. Each request re-reads the principal, so a disabled principal or a
changed role takes effect at once.

Every form carries a CSRF token: an HMAC, under a key of the exchange's, of the
session's token id (or, on the sign-in form, of a random value in a short-lived
cookie). A form posted without it, with another session's, or from another
origin is refused before anything is done.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response

from exchange.auth import Caller, caller_of, system_access
from exchange.console.pages import ConsoleRoute, SignInRequired, page, redirect
from exchange.console.sections import Section, open_to
from exchange.db import SessionDep
from exchange.errors import ExchangeError, Unauthorized
from exchange.identity.router import InvalidClient, issue_token
from exchange.records.body import read_limited

SESSION_COOKIE = "exchange_console"
SIGN_IN_COOKIE = "exchange_console_sign_in"
SIGN_IN_FORM_SECONDS = 600
MAX_FORM_BYTES = 2_000_000  # a policy of some thousand lines fits

router = APIRouter(prefix="/console", route_class=ConsoleRoute, tags=["console"])


@dataclass(frozen=True)
class Viewer:
    """Who is signed in, the CSRF token their forms carry, and the sections (with
    only the tabs) the policy lets them open."""

    caller: Caller
    csrf: str
    sections: tuple[Section, ...]

    def section_at(self, path: str) -> Section | None:
        return next((s for s in self.sections if path.startswith(s.path)), None)


class FormRefused(ExchangeError):
    """A form without this session's CSRF token, or from another origin."""

    status, code, title = 403, "csrf_rejected", "Form refused"


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.console_key
    return key


def _csrf(request: Request, purpose: str, value: str) -> str:
    return hmac.new(_key(request), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def console_caller(request: Request, session: SessionDep) -> Caller:
    """The signed-in principal, from the session cookie; SignInRequired if there
    is none, it ended, or the principal no longer exists or is disabled."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired("none")
    try:
        claims = request.app.state.tokens.verify(token)
    except Unauthorized:
        raise SignInRequired("ended") from None
    caller = caller_of(session, claims.subject)
    if caller is None:
        raise SignInRequired("disabled")
    viewer = Viewer(caller, _csrf(request, "session", claims.token_id), open_to(request, caller))
    request.state.viewer = viewer
    return caller


ConsoleCaller = Annotated[Caller, Depends(console_caller)]


def console_access(part: str, action: str) -> object:
    """`system_access` for console pages: the same decision (and logged denial)
    as the API's, for the principal signed in to the console."""
    return system_access(part, action, caller_from=console_caller)


class Form:
    """An urlencoded form body; `get` gives a field's first value, `all` every one."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.pairs if key == name), default)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


async def _read_form(request: Request) -> Form:
    origin = request.headers.get("origin")
    if origin is not None and origin != str(request.base_url).rstrip("/"):
        raise FormRefused(f"a form from {origin} is not accepted here")
    body = await read_limited(request, MAX_FORM_BYTES)
    return Form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def checked_form(request: Request, _caller: ConsoleCaller) -> Form:
    """The posted form, once its CSRF token is this session's."""
    form = await _read_form(request)
    if not hmac.compare_digest(form.get("csrf"), request.state.viewer.csrf):
        raise FormRefused("the form's CSRF token is missing or not this session's; reload the page")
    return form


FormDep = Annotated[Form, Depends(checked_form)]


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str) -> str:
    """Only a console path: never another site (open redirect)."""
    ok = target.startswith("/console") and "//" not in target and "\\" not in target
    return target if ok else "/console"


def _sign_in_page(
    request: Request, status: int, *, next_url: str, message: str, client_id: str = ""
) -> Response:
    nonce = secrets.token_urlsafe(32)
    response = page(
        request,
        "sign_in.html",
        status,
        sign_in_csrf=_csrf(request, "sign-in", nonce),
        next_url=_safe_next(next_url),
        message=message,
        client_id=client_id,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=SIGN_IN_FORM_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
    )
    return response


@router.get("/sign-in", include_in_schema=False)
def sign_in_form(request: Request, next: str = "/console", why: str = "") -> Response:
    return _sign_in_page(request, 200, next_url=next, message=SignInRequired.WHY.get(why, ""))


@router.post("/sign-in", include_in_schema=False)
async def sign_in(request: Request, session: SessionDep) -> Response:
    """The client id and secret, exchanged for a token exactly as POST /oauth/token."""
    form = await _read_form(request)
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    next_url, client_id = form.get("next", "/console"), form.get("client_id").strip()
    if not nonce or not hmac.compare_digest(form.get("csrf"), _csrf(request, "sign-in", nonce)):
        message = "the sign-in form expired or did not come from this page; try again"
        return _sign_in_page(request, 403, next_url=next_url, message=message, client_id=client_id)
    try:
        issued = issue_token(session, request, client_id, form.get("client_secret"))
    except InvalidClient as refused:
        return _sign_in_page(
            request, 401, next_url=next_url, message=refused.detail, client_id=client_id
        )
    response = redirect(_safe_next(next_url))
    response.set_cookie(
        SESSION_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@router.post("/sign-out", include_in_schema=False)
def sign_out(_form: FormDep) -> Response:
    response = redirect("/console/sign-in?why=signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/console", httponly=True, samesite="strict")
    return response


@router.get("", include_in_schema=False)
def home(request: Request, _caller: ConsoleCaller) -> Response:
    """The first section the viewer may open after the catalog, else the catalog."""
    sections = request.state.viewer.sections
    return redirect(sections[1].path if len(sections) > 1 else sections[0].path)
