"""How console pages are rendered: templates, bilingual labels, error pages, headers.

Console pages call the API's own route functions (so every action is decided,
done and audited exactly as over HTTP) and render what they return. Whatever they
raise reaches the app's exception handlers after the request's session has rolled
back, and `error_page` renders it. Every console response carries headers that
keep it out of frames, caches and other origins' scripts.
"""

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import BaseModel, ValidationError

from exchange.errors import ExchangeError, FieldError, ValidationFailed

M = TypeVar("M", bound=BaseModel)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def label(english: str, chinese: str) -> Markup:
    """A label in both languages: `{{ t("Approve", "批准") }}` in a template."""
    return Markup('{} <span class="zh" lang="zh-Hans">{}</span>').format(english, chinese)


templates.env.globals["t"] = label


class SignInRequired(ExchangeError):
    """No session, or one that ended: the browser is sent to the sign-in page,
    which says why in words of its own (`WHY`): nothing from the URL is shown."""

    status, code, title = 401, "sign_in_required", "Sign in required"
    WHY: ClassVar[dict[str, str]] = {
        "none": "Sign in to use the console.",
        "ended": "Your session ended; sign in again.",
        "disabled": "Your principal no longer exists or is disabled.",
        "signed-out": "You signed out.",
    }

    def __init__(self, why: str) -> None:
        super().__init__(self.WHY[why])
        self.why = why


def page(request: Request, template: str, status_code: int = 200, /, **context: Any) -> Response:
    """A template rendered for the signed-in viewer (if any): `viewer` and `csrf`
    are in every template's context. (Positional-only, so that a template may have
    a variable of any name.)"""
    viewer = getattr(request.state, "viewer", None)
    context = {"viewer": viewer, "csrf": viewer.csrf if viewer else "", **context}
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    """After a form: see the result with a GET (a reload does not submit twice)."""
    return RedirectResponse(url, status_code=303)


def _field_errors(error: ValidationError) -> list[FieldError]:
    return [
        FieldError(problem["msg"], ".".join(str(part) for part in problem["loc"]) or None)
        for problem in error.errors()
    ]


def error_page(request: Request, error: ExchangeError) -> Response:
    """The app's renderer for errors under /console: the sign-in page for a
    missing session, else a page with the problem's status, title, detail, hint
    and where in the input it is (the HTML face of RFC 9457)."""
    if isinstance(error, SignInRequired):
        response: Response = redirect(sign_in_url(request, error.why))
        response.headers.update(SECURITY_HEADERS)
        return response
    back = request.headers.get("referer", "")
    origin = str(request.base_url).rstrip("/")
    back = back if back.startswith(origin + "/console") else ""
    response = page(request, "error.html", error.status, error=error, back=back)
    response.headers.update(SECURITY_HEADERS)
    return response


def sign_in_url(request: Request, why: str) -> str:
    """The sign-in page, saying why (a key of SignInRequired.WHY), and coming back here."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/console/sign-in?next={quote(here, safe='')}&why={why}"


class ConsoleRoute(APIRoute):
    """A console route: every answer carries SECURITY_HEADERS. (Errors are turned
    into pages by the app's exception handlers, `error_page`, after the request's
    session has rolled back; catching them here would let it commit.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            response = await handle(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        return console_handler


def parsed(model: type[M], **fields: Any) -> M:
    """A form's fields as the API's own request model; ValidationFailed (with the
    field each problem is in) when they do not fit it."""
    try:
        return model.model_validate(fields)
    except ValidationError as invalid:
        raise ValidationFailed(
            "the form is not filled in as it must be", errors=_field_errors(invalid)
        ) from None


def human(value: object) -> Markup:
    """Underscored names read as words: law_enforcement → law enforcement."""
    return escape(str(value).replace("_", " "))


templates.env.filters["human"] = human


def when(moment: object) -> str:
    """A time as people read it, to the minute, in UTC: 2026-12-01 09:30 UTC."""
    if moment is None or moment == "":
        return "—"
    instant = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    if instant.tzinfo is None:  # the database's times are UTC
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = when
