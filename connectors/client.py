"""`ExchangeClient` and `AsyncExchangeClient`: the whole API over httpx.

    with ExchangeClient("http://127.0.0.1:8000", client_id, client_secret) as exchange:
        exchange.publish("violation-captures", records)
        for record in exchange.records("violation-captures", purpose="law_enforcement"):
            ...

Both clients fetch their token themselves and refresh it before it expires (and
once more if the exchange refuses it), retry what is safe to retry (see
`calls.retryable`), follow every page of a listing, read NDJSON line by line, and
raise the `connectors.errors` exception tree for problem responses. Each route is
defined once in `connectors.routes`; the two classes only send. Pass `transport`
(e.g. `httpx.ASGITransport(app)`) to run against an app in the same process.
"""

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import httpx

from connectors import routes
from connectors.calls import Attempts, Call, Paged, Retries, Streamed, lines, next_cursor
from connectors.errors import ConnectionFailed, from_response
from connectors.models import Token

P = ParamSpec("P")
T = TypeVar("T")

USER_AGENT = "exchange-connectors/0.1"
REFRESH_BEFORE = 30.0
"""Seconds before its expiry at which a token is replaced (or a tenth of its
lifetime, if shorter), so that no call is sent with a token about to lapse."""


@dataclass
class _Token:
    value: str | None = None
    expires: float = 0.0

    def usable(self, now: float) -> bool:
        return self.value is not None and now < self.expires

    def keep(self, token: Token, sent_at: float) -> str:
        margin = min(REFRESH_BEFORE, token.expires_in / 10)
        self.value, self.expires = token.access_token, sent_at + token.expires_in - margin
        return token.access_token


class _Base:
    def __init__(
        self, url: str, client_id: str, client_secret: str, retries: Retries | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._retries = retries or Retries()
        self._token = _Token()

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        profile: str | None = None,
        **options: Any,
    ) -> Self:
        """From the arguments, the environment or a profile, by the rules of
        `connectors.config`; `options` are the constructor's (transport, timeout, ...)."""
        from connectors.config import resolve

        found = resolve(url, client_id, client_secret, profile)
        return cls(found.url, found.client_id, found.client_secret, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, client_id={self.client_id!r})"

    def forget_token(self, refused: str | None = None) -> None:
        """Drop the token (only if it is still the `refused` one, when given: another
        thread may have fetched a new one meanwhile)."""
        if refused is None or self._token.value == refused:
            self._token = _Token()


def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate["ExchangeClient", P], T]:
    @functools.wraps(build)
    def method(self: "ExchangeClient", /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    return method


def _sync_pages(
    build: Callable[P, Paged[T]],
) -> Callable[Concatenate["ExchangeClient", P], Iterator[T]]:
    @functools.wraps(build)
    def method(self: "ExchangeClient", /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self.iterate(build(*args, **kwargs))

    return method


def _sync_stream(
    build: Callable[P, Streamed],
) -> Callable[Concatenate["ExchangeClient", P], Iterator[Any]]:
    @functools.wraps(build)
    def method(self: "ExchangeClient", /, *args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
        return self.stream(build(*args, **kwargs))

    return method


def _async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate["AsyncExchangeClient", P], Coroutine[Any, Any, T]]:
    @functools.wraps(build)
    async def method(self: "AsyncExchangeClient", /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    return method


def _async_pages(
    build: Callable[P, Paged[T]],
) -> Callable[Concatenate["AsyncExchangeClient", P], AsyncIterator[T]]:
    @functools.wraps(build)
    def method(
        self: "AsyncExchangeClient", /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[T]:
        return self.iterate(build(*args, **kwargs))

    return method


def _async_stream(
    build: Callable[P, Streamed],
) -> Callable[Concatenate["AsyncExchangeClient", P], AsyncIterator[Any]]:
    @functools.wraps(build)
    def method(
        self: "AsyncExchangeClient", /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[Any]:
        return self.stream(build(*args, **kwargs))

    return method


class ExchangeClient(_Base):
    """The exchange's API, blocking. Thread-safe; one per process is enough."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retries: Retries | None = None,
    ) -> None:
        super().__init__(url, client_id, client_secret, retries)
        self._http = httpx.Client(
            base_url=self.url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
        )
        self._lock = threading.Lock()

    def __enter__(self) -> "ExchangeClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def access_token(self) -> str:
        """A token valid for at least a while longer, fetched if need be."""
        with self._lock:
            now = time.monotonic()
            if self._token.usable(now):
                return str(self._token.value)
            return self._token.keep(self.send(routes.token(self.client_id, self._secret)), now)

    def _response(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        attempts = Attempts(call, self._retries)
        while True:
            token = self.access_token() if call.authenticated else None
            try:
                response = self._http.send(call.request(self._http, token), stream=stream)
            except httpx.TransportError as error:
                time.sleep(attempts.after_error(error))
                continue
            if stream and response.is_error:
                response.read()
            delay = attempts.after_response(response)
            if delay is None:
                return response
            response.close()
            if response.status_code == 401:
                self.forget_token(token)
            time.sleep(delay)

    def send(self, call: Call[T]) -> T:
        """Send one call (retrying as it allows) and read its answer."""
        return call.read(self._response(call))

    def iterate(self, paged: Paged[T]) -> Iterator[T]:
        """Every item of a listing, fetching the next page when one runs out."""
        cursor: str | None = None
        while True:
            answer = self.send(paged.page(cursor))
            yield from paged.items(answer)
            cursor = next_cursor(answer, cursor)
            if not cursor:
                return

    def stream(self, streamed: Streamed) -> Iterator[Any]:
        """The lines of an NDJSON answer, as they arrive."""
        cursor: str | None = None
        while True:
            response = self._response(streamed.page(cursor), stream=True)
            try:
                if response.is_error:
                    raise from_response(response)
                yield from lines(response.iter_lines())
            except httpx.TransportError as error:
                raise ConnectionFailed(f"the stream broke off: {error}") from error
            finally:
                response.close()
            cursor = streamed.next_cursor(response, cursor)
            if not cursor:
                return

    health = _sync(routes.health)
    ready = _sync(routes.ready)
    jwks = _sync(routes.jwks)
    create_organization = _sync(routes.create_organization)
    organizations = _sync_pages(routes.organizations)
    create_principal = _sync(routes.create_principal)
    principals = _sync_pages(routes.principals)
    register_product = _sync(routes.register_product)
    products = _sync_pages(routes.products)
    product = _sync(routes.product)
    update_product = _sync(routes.update_product)
    publish = _sync(routes.publish)
    records = _sync_pages(routes.records)
    stream_records = _sync_stream(routes.stream_records)
    record = _sync(routes.record)
    put_image = _sync(routes.put_image)
    image = _sync(routes.image)
    reidentify = _sync(routes.reidentify)
    aggregates = _sync(routes.aggregates)
    decide = _sync(routes.decide)
    request_access = _sync(routes.request_access)
    access_requests = _sync_pages(routes.access_requests)
    access_request = _sync(routes.access_request)
    approve = _sync(routes.approve)
    deny = _sync(routes.deny)
    grants = _sync_pages(routes.grants)
    grant = _sync(routes.grant)
    revoke_grant = _sync(routes.revoke_grant)
    policy = _sync(routes.policy)
    change_policy = _sync(routes.change_policy)
    dry_run = _sync(routes.dry_run)
    policy_versions = _sync_pages(routes.policy_versions)
    policy_version = _sync(routes.policy_version)
    restore_policy = _sync(routes.restore_policy)
    policy_tests = _sync(routes.policy_tests)
    add_policy_test = _sync(routes.add_policy_test)
    delete_policy_test = _sync(routes.delete_policy_test)
    subscribe = _sync(routes.subscribe)
    subscriptions = _sync(routes.subscriptions)
    subscription = _sync(routes.subscription)
    unsubscribe = _sync(routes.unsubscribe)
    pause = _sync(routes.pause)
    resume = _sync(routes.resume)
    rotate_secret = _sync(routes.rotate_secret)
    pull = _sync(routes.pull)
    deliveries = _sync_pages(routes.deliveries)
    redeliver = _sync(routes.redeliver)
    audit_entries = _sync_pages(routes.audit_entries)
    export_audit = _sync_stream(routes.export_audit)
    checkpoint = _sync(routes.checkpoint)
    audit_public_key = _sync(routes.audit_public_key)
    inclusion_proof = _sync(routes.inclusion_proof)
    consistency_proof = _sync(routes.consistency_proof)
    subject_accesses = _sync(routes.subject_accesses)
    usage = _sync(routes.usage)
    metrics = _sync(routes.metrics)
    link = _sync(routes.link)
    cross_check = _sync(routes.cross_check)
    sharing_figures = _sync(routes.sharing_figures)
    sharing_csv = _sync(routes.sharing_csv)


class AsyncExchangeClient(_Base):
    """The exchange's API for asyncio; the same methods as `ExchangeClient`, awaited
    (listings and streams are async iterators)."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        retries: Retries | None = None,
    ) -> None:
        super().__init__(url, client_id, client_secret, retries)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
        )
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> "AsyncExchangeClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def access_token(self) -> str:
        async with self._lock:
            now = time.monotonic()
            if self._token.usable(now):
                return str(self._token.value)
            token = await self.send(routes.token(self.client_id, self._secret))
            return self._token.keep(token, now)

    async def _response(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        attempts = Attempts(call, self._retries)
        while True:
            token = await self.access_token() if call.authenticated else None
            try:
                response = await self._http.send(call.request(self._http, token), stream=stream)
            except httpx.TransportError as error:
                await asyncio.sleep(attempts.after_error(error))
                continue
            if stream and response.is_error:
                await response.aread()
            delay = attempts.after_response(response)
            if delay is None:
                return response
            await response.aclose()
            if response.status_code == 401:
                self.forget_token(token)
            await asyncio.sleep(delay)

    async def send(self, call: Call[T]) -> T:
        return call.read(await self._response(call))

    async def iterate(self, paged: Paged[T]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            answer = await self.send(paged.page(cursor))
            for item in paged.items(answer):
                yield item
            cursor = next_cursor(answer, cursor)
            if not cursor:
                return

    async def stream(self, streamed: Streamed) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            response = await self._response(streamed.page(cursor), stream=True)
            try:
                if response.is_error:
                    raise from_response(response)
                async for line in response.aiter_lines():
                    for value in lines([line]):
                        yield value
            except httpx.TransportError as error:
                raise ConnectionFailed(f"the stream broke off: {error}") from error
            finally:
                await response.aclose()
            cursor = streamed.next_cursor(response, cursor)
            if not cursor:
                return

    health = _async(routes.health)
    ready = _async(routes.ready)
    jwks = _async(routes.jwks)
    create_organization = _async(routes.create_organization)
    organizations = _async_pages(routes.organizations)
    create_principal = _async(routes.create_principal)
    principals = _async_pages(routes.principals)
    register_product = _async(routes.register_product)
    products = _async_pages(routes.products)
    product = _async(routes.product)
    update_product = _async(routes.update_product)
    publish = _async(routes.publish)
    records = _async_pages(routes.records)
    stream_records = _async_stream(routes.stream_records)
    record = _async(routes.record)
    put_image = _async(routes.put_image)
    image = _async(routes.image)
    reidentify = _async(routes.reidentify)
    aggregates = _async(routes.aggregates)
    decide = _async(routes.decide)
    request_access = _async(routes.request_access)
    access_requests = _async_pages(routes.access_requests)
    access_request = _async(routes.access_request)
    approve = _async(routes.approve)
    deny = _async(routes.deny)
    grants = _async_pages(routes.grants)
    grant = _async(routes.grant)
    revoke_grant = _async(routes.revoke_grant)
    policy = _async(routes.policy)
    change_policy = _async(routes.change_policy)
    dry_run = _async(routes.dry_run)
    policy_versions = _async_pages(routes.policy_versions)
    policy_version = _async(routes.policy_version)
    restore_policy = _async(routes.restore_policy)
    policy_tests = _async(routes.policy_tests)
    add_policy_test = _async(routes.add_policy_test)
    delete_policy_test = _async(routes.delete_policy_test)
    subscribe = _async(routes.subscribe)
    subscriptions = _async(routes.subscriptions)
    subscription = _async(routes.subscription)
    unsubscribe = _async(routes.unsubscribe)
    pause = _async(routes.pause)
    resume = _async(routes.resume)
    rotate_secret = _async(routes.rotate_secret)
    pull = _async(routes.pull)
    deliveries = _async_pages(routes.deliveries)
    redeliver = _async(routes.redeliver)
    audit_entries = _async_pages(routes.audit_entries)
    export_audit = _async_stream(routes.export_audit)
    checkpoint = _async(routes.checkpoint)
    audit_public_key = _async(routes.audit_public_key)
    inclusion_proof = _async(routes.inclusion_proof)
    consistency_proof = _async(routes.consistency_proof)
    subject_accesses = _async(routes.subject_accesses)
    usage = _async(routes.usage)
    metrics = _async(routes.metrics)
    link = _async(routes.link)
    cross_check = _async(routes.cross_check)
    sharing_figures = _async(routes.sharing_figures)
    sharing_csv = _async(routes.sharing_csv)
