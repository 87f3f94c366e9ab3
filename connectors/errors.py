"""What can go wrong talking to the exchange, as exceptions to catch by kind.

    ExchangeError                 any failure; problem responses carry status, title, detail
    ├── ConnectionFailed          no HTTP answer at all (refused, reset, timed out)
    ├── UnexpectedAnswer          a 2xx answer that is not what the API promises
    ├── BadRequest                400 (purpose missing, bad cursor, malformed input)
    ├── Unauthorized              401 (bad credentials, or a token the exchange refused)
    ├── Denied                    403: the decision's reason and `hint` (what to do)
    ├── NotFound                  404
    ├── Conflict                  409
    ├── Gone                      410 (the product was erased)
    ├── PayloadTooLarge           413
    ├── ValidationFailed          422: `errors`, per record and field
    ├── RateLimited               429: `retry_after` seconds
    ├── Unavailable               503: `retry_after` seconds
    └── ServerError               any other 5xx

Every problem response is RFC 9457 problem details; `errors` lists where in the
input each problem is (`index` of the record, `field`, `reason`), and any other
member of the problem (`hint`, `policy_version`, ...) is in `extensions`.
"""

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class FieldProblem:
    """Where in the input something is wrong."""

    reason: str
    field: str | None = None
    index: int | None = None


class ExchangeError(Exception):
    """A call the exchange answered with a problem, or could not be made."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        type: str | None = None,
        errors: list[FieldProblem] | None = None,
        extensions: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.title = title
        self.type = type
        self.errors = errors or []
        self.extensions = extensions or {}
        self.retry_after = retry_after

    def __str__(self) -> str:
        said = f"{self.status} {self.title}: {self.detail}" if self.status else self.detail
        where = [
            ", ".join(str(part) for part in (e.index, e.field) if part is not None)
            + f": {e.reason}"
            for e in self.errors[:5]
        ]
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        return f"{said} [{'; '.join(where)}{more}]" if where else said


class ConnectionFailed(ExchangeError):
    """No HTTP answer at all: refused, reset or timed out (after the retries allowed)."""


class UnexpectedAnswer(ExchangeError):
    """Not JSON, not the promised shape, or a listing that repeats its cursor: a
    proxy in the way, or an exchange of another version."""


class BadRequest(ExchangeError):
    """400: a missing purpose, a bad cursor or filter, malformed input."""


class Unauthorized(ExchangeError):
    """401: bad credentials, or a token the exchange refused twice."""


class Denied(ExchangeError):
    @property
    def reason(self) -> str:
        return self.detail

    @property
    def hint(self) -> str | None:
        """What to do about it, e.g. which access to request."""
        hint = self.extensions.get("hint")
        return str(hint) if hint else None


class NotFound(ExchangeError):
    """404: no such product, record, request, grant or subscription (for you)."""


class Conflict(ExchangeError):
    """409: it exists already, or its state does not allow this now."""


class Gone(ExchangeError):
    """410: the product was erased; its data can never be read again."""


class PayloadTooLarge(ExchangeError):
    """413: send a smaller batch or image."""


class ValidationFailed(ExchangeError):
    """422: `errors` says which record and field, and why."""


class RateLimited(ExchangeError):
    """429: wait `retry_after` seconds."""


class Unavailable(ExchangeError):
    """503: the exchange cannot answer now (e.g. its audit log is not writable)."""


class ServerError(ExchangeError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[ExchangeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Denied,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
    503: Unavailable,
}
_STANDARD = {"type", "title", "status", "detail", "errors"}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the exchange asked us to wait (the HTTP-date form is not used by it)."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def from_response(response: httpx.Response) -> ExchangeError:
    """The exception for an error response, from its problem body where it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text[:500] or response.reason_phrase}
    status = response.status_code
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ExchangeError)
    errors = [
        FieldProblem(
            reason=str(item.get("reason", "")),
            field=item.get("field"),
            index=item.get("index"),
        )
        for item in body.get("errors") or []
        if isinstance(item, dict)
    ]
    return kind(
        str(body.get("detail") or response.reason_phrase),
        status=status,
        title=str(body.get("title") or response.reason_phrase),
        type=body.get("type"),
        errors=errors,
        extensions={k: v for k, v in body.items() if k not in _STANDARD},
        retry_after=retry_after(response),
    )


IMAGE_REFUSALS = (BadRequest, Conflict, NotFound, PayloadTooLarge, ValidationFailed)
"""What the exchange answers about one uploaded image that leaves the rest of a run
sound: the record declares no boxes, the bytes are not an image, another image is
there. A connector reports these and goes on."""
