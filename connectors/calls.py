"""One API call, described without doing any I/O, so the sync and async clients
share every route's definition and differ only in how they send.

A `Call` says what to send and how to read the answer; `Paged` is a listing that
follows `next_cursor`; `Streamed` is an NDJSON answer read line by line. The
retry rule is here too: which failures are worth another try, and how long to
wait before it.
"""

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from connectors.errors import ConnectionFailed, ExchangeError, UnexpectedAnswer, from_response

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    # What is sent stays out of the repr: a token request's body holds the secret.
    json: Any = field(default=None, repr=False)
    content: bytes | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    idempotent: bool = False
    """Safe to send twice: reads, and writes whose effect is the same the second
    time (PUT of the same image, records with the publisher's ids)."""
    authenticated: bool = True

    def request(self, client: httpx.Client | httpx.AsyncClient, token: str | None) -> httpx.Request:
        headers = dict(self.headers)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        params = {k: v for k, v in self.params.items() if v is not None}
        return client.build_request(
            self.method,
            self.path,
            params=params,
            json=self.json,
            content=self.content,
            headers=headers,
        )


@dataclass(frozen=True)
class Paged(Generic[T]):
    """A listing: `page(cursor)` is the call for one page, `items` its entries."""

    page: Callable[[str | None], Call[dict[str, Any]]]
    items: Callable[[dict[str, Any]], Iterable[T]]


@dataclass(frozen=True)
class Streamed:
    """An NDJSON answer, one JSON value a line, continued by a next-cursor header
    where the route pages its stream."""

    page: Callable[[str | None], Call[httpx.Response]]
    next_header: str | None = None

    def next_cursor(self, response: httpx.Response, sent: str | None) -> str | None:
        cursor = response.headers.get(self.next_header) if self.next_header else None
        if cursor is not None and cursor == sent:
            raise UnexpectedAnswer(f"the stream gave back the cursor it was sent ({cursor})")
        return cursor or None


def ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise from_response(response)
    return response


def body(response: httpx.Response) -> Any:
    """The answer's JSON; UnexpectedAnswer if it is not JSON."""
    ok(response)
    try:
        return response.json()
    except ValueError as error:
        raise UnexpectedAnswer(f"the answer is not JSON: {error}") from None


def model(kind: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: _valid(kind, body(response))


def models(kind: type[M], key: str) -> Callable[[httpx.Response], list[M]]:
    def read(response: httpx.Response) -> list[M]:
        answer = body(response)
        if not isinstance(answer, dict) or not isinstance(answer.get(key), list):
            raise UnexpectedAnswer(f"the answer has no list {key!r}")
        return [_valid(kind, item) for item in answer[key]]

    return read


def _valid(kind: type[M], value: Any) -> M:
    try:
        return kind.model_validate(value)
    except ValidationError as error:
        raise UnexpectedAnswer(f"the answer is not a {kind.__name__}: {error}") from None


def text(response: httpx.Response) -> str:
    return ok(response).text


def content(response: httpx.Response) -> bytes:
    return ok(response).content


def nothing(response: httpx.Response) -> None:
    ok(response)


def lines(chunks: Iterable[str]) -> Iterator[Any]:
    for number, line in enumerate(chunks, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                raise UnexpectedAnswer(f"line {number} of the stream is not JSON") from None


def next_cursor(answer: Any, sent: str | None) -> str | None:
    """A listing page's cursor to the next one; UnexpectedAnswer if the page is not
    a listing or gives back the cursor it was asked for (it would never end)."""
    if not isinstance(answer, dict):
        raise UnexpectedAnswer("a listing's answer is not an object")
    cursor = answer.get("next_cursor")
    if cursor is not None and cursor == sent:
        raise UnexpectedAnswer(f"the listing gave back the cursor it was sent ({cursor})")
    return cursor or None


@dataclass(frozen=True)
class Retries:
    """Exponential backoff with full jitter, capped, honouring `Retry-After`."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, error: ExchangeError | httpx.TransportError) -> float | None:
        """Seconds to wait before retrying after `attempt` failed tries, or None to give up.
        `attempt` counts from 1."""
        if attempt > self.attempts:
            return None
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        asked = error.retry_after if isinstance(error, ExchangeError) else None
        return min(self.cap, max(backoff, asked or 0.0))


RETRIED_STATUSES = frozenset({429, 503})


def retryable(call: Call[Any], failure: httpx.Response | httpx.TransportError) -> bool:
    """Connection failures before anything was sent are retried for every call;
    429, 503 and failures mid-exchange only for calls safe to send twice."""
    if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    if isinstance(failure, httpx.TransportError):
        return call.idempotent
    return call.idempotent and failure.status_code in RETRIED_STATUSES


@dataclass
class Attempts:
    """The retry state of one call: after each failure, wait this long and try
    again, or give up. A 401 on an authenticated call refreshes the token once
    (it may have been revoked or its key rotated) before it counts as an answer."""

    call: Call[Any]
    retries: Retries
    count: int = 0
    refreshed: bool = False

    def after_error(self, error: httpx.TransportError) -> float:
        """Seconds before the next try; raises ConnectionFailed to give up."""
        self.count += 1
        delay = self.retries.delay(self.count, error) if retryable(self.call, error) else None
        if delay is None:
            raise ConnectionFailed(
                f"{self.call.method} {self.call.path}: {type(error).__name__}: {error}"
            ) from error
        return delay

    def after_response(self, response: httpx.Response) -> float | None:
        """Seconds before the next try, 0 to refresh the token and retry, or None
        when this response is the answer."""
        if response.status_code == 401 and self.call.authenticated and not self.refreshed:
            self.refreshed = True
            return 0.0
        if not response.is_error or not retryable(self.call, response):
            return None
        self.count += 1
        return self.retries.delay(self.count, from_response(response))
