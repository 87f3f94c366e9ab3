"""Errors that carry their HTTP status, rendered as RFC 9457 problem details.

    ExchangeError                 status, code, title
    ├── BadRequest                400 bad_request
    │   └── PurposeRequired       400 purpose_required
    ├── Unauthorized              401 unauthorized
    ├── AccessDenied              403 access_denied (the decision's reason and hint)
    │   └── BudgetExhausted       403 privacy_budget_exhausted (remaining epsilon)
    ├── NotFound                  404 not_found
    ├── Conflict                  409 conflict
    ├── Gone                      410 product_erased (its data key was destroyed)
    ├── PayloadTooLarge           413 payload_too_large
    ├── ValidationFailed          422 validation_failed (errors: index, field, reason)
    ├── IntegrityFailure          500 integrity (sealed data that does not open)
    └── ServiceUnavailable        503 unavailable

Routers raise these and never build HTTP errors by hand; one set of handlers in
`install_handlers` renders them, and also renders FastAPI's own validation errors,
unknown routes and unexpected exceptions, so no response is ever an HTML page or a
bare 500 without a problem body.
"""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from audit import AuditWriteError
from exchange.privacy.sealing import SealError
from policies import PolicyError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    """Where in the input something is wrong: record position, field, reason."""

    reason: str
    field: str | None = None
    index: int | None = None


class ExchangeError(Exception):
    status = 500
    code = "internal"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(ExchangeError):
    status, code, title = 400, "bad_request", "Bad request"


class PurposeRequired(BadRequest):
    code, title = "purpose_required", "Purpose required"


class Unauthorized(ExchangeError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extensions)


class AccessDenied(ExchangeError):
    status, code, title = 403, "access_denied", "Access denied"


class BudgetExhausted(AccessDenied):
    code, title = "privacy_budget_exhausted", "Privacy budget exhausted"


class NotFound(ExchangeError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ExchangeError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(ExchangeError):
    status, code, title = 410, "product_erased", "Product erased"


class PayloadTooLarge(ExchangeError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class ValidationFailed(ExchangeError):
    status, code, title = 422, "validation_failed", "Validation failed"


class IntegrityFailure(ExchangeError):
    status, code, title = 500, "integrity", "Stored data failed its integrity check"


class ServiceUnavailable(ExchangeError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:exchange:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extensions,
    }
    if errors:
        body["errors"] = [
            {k: v for k, v in asdict(error).items() if v is not None} for error in errors
        ]
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def render(request: Request, error: ExchangeError) -> JSONResponse:
    """The problem response for an error a route returns rather than raises (so
    that what the request wrote, such as its audit entry, still commits)."""
    return problem(
        error.status,
        error.code,
        error.title,
        error.detail,
        request.url.path,
        error.errors,
        error.headers,
        **error.extensions,
    )


def _location(loc: tuple[Any, ...]) -> tuple[int | None, str | None]:
    """FastAPI's ('body', 0, 'name') becomes index 0, field 'name'."""
    parts = list(loc[1:]) if loc and loc[0] in {"body", "query", "path", "header"} else list(loc)
    index = parts.pop(0) if parts and isinstance(parts[0], int) else None
    field = ".".join(str(part) for part in parts) or (str(loc[0]) if loc else None)
    return index, field


class _RoutingError(ExchangeError):
    """Starlette's own (no such route, method not allowed), as one of ours."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = {404: "Not found", 405: "Method not allowed"}.get(status, "HTTP error")
        self.code = self.title.lower().replace(" ", "_")


ErrorPages = tuple[str, Callable[[Request, ExchangeError], Response]]


def install_handlers(app: FastAPI, pages: ErrorPages | None = None) -> None:
    """Every error as a problem response; under `pages`' path prefix, as what its
    renderer makes of it instead (the web console's error pages)."""

    def respond(request: Request, error: ExchangeError) -> Response:
        if pages and request.url.path.startswith(pages[0]):
            return pages[1](request, error)
        return render(request, error)

    @app.exception_handler(ExchangeError)
    async def _exchange_error(request: Request, error: ExchangeError) -> Response:
        return respond(request, error)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, error: RequestValidationError) -> Response:
        errors = []
        for item in error.errors():
            index, field = _location(tuple(item.get("loc", ())))
            errors.append(FieldError(reason=str(item.get("msg")), field=field, index=index))
        return respond(request, BadRequest("the request is not valid", errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        return respond(request, _RoutingError(error.status_code, str(error.detail)))

    @app.exception_handler(PolicyError)
    async def _policy_error(request: Request, error: PolicyError) -> Response:
        log.error("policy engine failed closed: %s", error)
        return respond(request, ServiceUnavailable("no access decision could be made"))

    @app.exception_handler(AuditWriteError)
    async def _audit_error(request: Request, error: AuditWriteError) -> Response:
        log.error("audit write failed: %s", error)
        return respond(request, ServiceUnavailable("the audit log cannot be written; no data left"))

    @app.exception_handler(SealError)
    async def _seal_error(request: Request, error: SealError) -> Response:
        log.error("stored ciphertext failed to open on %s: %s", request.url.path, error)
        return respond(request, IntegrityFailure("stored data did not decrypt; nothing was sent"))

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, error: OperationalError) -> Response:
        log.error("database error: %s", error.orig)
        return respond(request, ServiceUnavailable("the database is not available"))

    @app.exception_handler(PoolTimeout)
    async def _database_busy(request: Request, error: PoolTimeout) -> Response:
        log.error("no database connection free: %s", error)
        busy = ServiceUnavailable(
            "the exchange is busy: no database connection was free; retry",
            headers={"Retry-After": "1"},
        )
        return respond(request, busy)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return respond(request, ExchangeError("an unexpected error occurred"))
