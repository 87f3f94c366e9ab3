"""The SDK against the real app in process: every route family, tokens, retries,
errors. The sync client rides the test client's transport (the app's own ASGI
stack, run in a thread); the async client rides httpx's ASGITransport."""

import asyncio
import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

import connectors
from connectors import (
    AsyncExchangeClient,
    BadRequest,
    ConnectionFailed,
    Denied,
    ExchangeClient,
    Gone,
    NotFound,
    Retries,
    Unauthorized,
    Unavailable,
    UnexpectedAnswer,
    ValidationFailed,
)
from connectors.errors import Conflict
from tests.conftest import Exchange, run_cli
from tests.products import capture, captures_product

FAST = Retries(attempts=3, base=0.01, cap=0.05)
PUBLIC_API = {
    "AsyncExchangeClient",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Connection",
    "Denied",
    "ExchangeClient",
    "ExchangeError",
    "FieldProblem",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Retries",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "UnexpectedAnswer",
    "ValidationFailed",
    "resolve",
}


class Recording(httpx.BaseTransport):
    """The app's transport, with a log of what was sent and failures to inject
    before it: `fail(path, [503, ConnectError, ...])` answers (or raises) those
    first, in order, then lets requests through."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str]] = []
        self.failures: dict[str, list[int | type[Exception]]] = {}

    def fail(self, path: str, failures: list[int | type[Exception]]) -> None:
        self.failures[path] = list(failures)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path))
        queued = self.failures.get(request.url.path)
        if queued:
            failure = queued.pop(0)
            if isinstance(failure, int):
                return httpx.Response(
                    failure,
                    headers={"Retry-After": "0", "Content-Type": "application/problem+json"},
                    json={"title": "Service unavailable", "status": failure, "detail": "busy"},
                )
            raise failure("injected", request=request)
        return self.inner.handle_request(request)

    def count(self, path: str) -> int:
        return sum(1 for _, sent in self.sent if sent == path)


@pytest.fixture
def transport(exchange: Exchange) -> Recording:
    return Recording(exchange.client._transport)


@pytest.fixture
def as_party(exchange: Exchange, transport: Recording) -> Iterator[Callable[[str], ExchangeClient]]:
    opened: list[ExchangeClient] = []

    def open_as(key: str) -> ExchangeClient:
        party = exchange.parties[key]
        client = ExchangeClient(
            "http://testserver",
            party.client_id,
            party.client_secret,
            transport=transport,
            retries=FAST,
        )
        opened.append(client)
        return client

    yield open_as
    for client in opened:
        client.close()


def _photographed(n: int) -> tuple[dict[str, Any], bytes]:
    """A capture with a small photo whose plate is in one box."""
    photo = io.BytesIO()
    Image.new("RGB", (160, 90), "grey").save(photo, "JPEG")
    record = capture(n)
    box = {"kind": "plate", "x": 60, "y": 50, "w": 40, "h": 12}
    record["photo"] = {"ref": f"captures/cap-{n:06d}.jpg", "boxes": [box]}
    return record, photo.getvalue()


def test_public_api_is_what_is_documented() -> None:
    assert set(connectors.__all__) == PUBLIC_API
    for name in connectors.__all__:
        assert getattr(connectors, name) is not None
    sync = {n for n in dir(ExchangeClient) if not n.startswith("_")}
    asynchronous = {n for n in dir(AsyncExchangeClient) if not n.startswith("_")}
    assert sync == asynchronous, "both clients offer the same calls"
    assert len(sync) > 55


def test_every_route_family_through_the_sdk(
    exchange: Exchange, as_party: Callable[[str], ExchangeClient], settings: Any
) -> None:
    admin, fleet, police = as_party("admin"), as_party("fleet"), as_party("police")
    mapco, steward, auditor = as_party("mapco"), as_party("steward"), as_party("auditor")

    assert admin.health()["status"] and admin.ready()
    assert admin.jwks()["keys"]
    organization = admin.create_organization("sdk-labs", "SDK Labs", "research")
    assert organization.slug == "sdk-labs"
    assert "sdk-labs" in {o.slug for o in admin.organizations(limit=2)}  # several pages
    made = admin.create_principal("sdk-labs", "robot", ["subscriber"])
    assert made.client_secret and "robot" in {p.name for p in admin.principals("sdk-labs")}

    product = fleet.register_product(captures_product(subject_field="plate"))
    assert (product.slug, product.version) == ("violation-captures", 1)
    assert fleet.update_product("violation-captures", {"title": "Captures v2"}).version == 2
    assert [p.slug for p in police.products(q="captures")] == ["violation-captures"]
    record, photo = _photographed(1)
    published = fleet.publish("violation-captures", [record, *(capture(n) for n in range(2, 6))])
    assert (published.accepted, published.rejected) == (5, [])
    assert fleet.publish("violation-captures", [record]).unchanged == 1
    assert fleet.put_image("violation-captures", "cap-000001", photo).stored

    read = list(police.records("violation-captures", purpose="law_enforcement", limit=2))
    assert sorted(r["id"] for r in read) == [f"cap-00000{n}" for n in range(1, 6)]
    streamed = list(police.stream_records("violation-captures", purpose="law_enforcement", limit=2))
    assert [r["id"] for r in streamed] == [r["id"] for r in read]
    one = police.record("violation-captures", "cap-000003", purpose="law_enforcement")
    assert one.record["id"] == "cap-000003" and one.view
    assert police.image("violation-captures", "cap-000001", purpose="law_enforcement")[:2] == (
        b"\xff\xd8"
    )
    counted = police.aggregates("violation-captures", purpose="traffic_management", by=["day"])
    assert counted.product == "violation-captures"
    assert police.decide(product="violation-captures", purpose="law_enforcement").allowed

    fleet.register_product(captures_product(slug="regulated-captures", tier="regulated"))
    why = "A study of red-light running at junctions"
    asked = mapco.request_access(
        "regulated-captures", purpose="research", justification=why, days=7
    )
    assert [r.id for r in mapco.access_requests()] == [asked.id]
    approved = steward.approve(asked.id, reason="Ethics approval seen")
    assert approved.grant.state == "active"
    assert [g.id for g in mapco.grants(active=True)] == [approved.grant.id]
    assert steward.grant(approved.grant.id).product == "regulated-captures"
    assert steward.revoke_grant(approved.grant.id, reason="study over").state == "revoked"
    with pytest.raises(Denied):
        list(mapco.records("regulated-captures", purpose="research"))
    second = mapco.request_access(
        "regulated-captures", purpose="research", justification=f"Again: {why}", days=7
    )
    assert steward.deny(second.id, reason="no ethics approval").status == "denied"
    assert mapco.access_request(second.id).decision_reason == "no ethics approval"

    current = steward.policy()
    tried = steward.dry_run(current.lines)
    assert tried.base_version == current.version and tried.added_lines == []
    assert next(v["version"] for v in steward.policy_versions()) == current.version
    assert steward.policy_version(current.version).lines == current.lines
    assert isinstance(steward.policy_tests(), list)

    pulled = police.subscribe("violation-captures", purpose="law_enforcement", delivery="pull")
    assert pulled.delivery == "pull" and pulled.secret is None
    assert [s.id for s in police.subscriptions()] == [pulled.id]
    assert police.pause(pulled.id).status == "paused"
    assert police.resume(pulled.id).status == "active"
    fleet.publish("violation-captures", [capture(9)])
    batch = police.pull(pulled.id, wait=5)
    assert [e["record"]["id"] for e in batch.events] == ["cap-000009"]
    assert police.pull(pulled.id, cursor=batch.next_cursor).events == []
    assert police.subscription(pulled.id).id == pulled.id
    assert list(police.deliveries(pulled.id)) == []
    police.unsubscribe(pulled.id)
    with pytest.raises(NotFound):
        police.subscription(pulled.id)

    denied = list(auditor.audit_entries(decision="deny", limit=2))
    assert denied and all(e.entry["decision"] == "deny" for e in denied)
    reads = [e.entry["action"] for e in auditor.audit_entries(product="violation-captures")]
    assert "read" in reads
    exported = list(auditor.export_audit(product="violation-captures"))
    assert "checkpoint" in exported[0] and all("leaf_hash" in line for line in exported[1:])
    note = auditor.checkpoint(fresh=True)
    size = int(note.splitlines()[1])
    assert auditor.audit_public_key().startswith("exchange")
    assert auditor.inclusion_proof(0, size).size == size
    assert auditor.consistency_proof(1, size).new_size == size
    accesses = auditor.subject_accesses("violation-captures", capture(3)["plate"])
    assert accesses, "the police read of plate 3 is found"
    assert "exchange_" in auditor.metrics()
    usage = fleet.usage(product="violation-captures")
    assert {row.organization for row in usage} >= {"gz-traffic-police"}


def _registry(slug: str, field: str) -> dict[str, Any]:
    """A government-only product keyed by address."""
    return {
        "slug": slug,
        "title": slug,
        "tier": "government_only",
        "purposes": ["registry_reconciliation"],
        "retention_days": 30,
        "subject_field": field,
        "subject_kind": "address",
        "fields": [{"name": field, "type": "string"}, {"name": "kind", "type": "string"}],
    }


def test_linkage_cross_checks_and_sharing_figures_through_the_sdk(
    as_party: Callable[[str], ExchangeClient],
) -> None:
    fleet, hotline, police = as_party("fleet"), as_party("hotline"), as_party("police")
    steward, auditor = as_party("steward"), as_party("auditor")
    fleet.register_product(captures_product(subject_field="plate", subject_kind="plate"))
    fleet.publish("violation-captures", [capture(1), capture(2)])
    linked = police.link("plate", capture(1)["plate"], purpose="law_enforcement")
    assert [(part.product, [r["id"] for r in part.records]) for part in linked.parts] == [
        ("violation-captures", ["cap-000001"])
    ]

    hotline.register_product(_registry("companies", "address"))
    hotline.register_product(_registry("homes", "address"))
    hotline.publish("companies", [{"id": "c1", "address": "5 Main Rd, Bldg 2, Rm 3", "kind": "x"}])
    homes = [{"id": "h1", "address": "Room 3, Building 2, 5 Main Road", "kind": "home"}]
    hotline.publish("homes", [*homes, {"id": "h2", "address": "Room 4, 5 Main Road", "kind": "y"}])
    why = "Find homes registered as company addresses"
    asked = police.request_access(
        "companies", partner="homes", purpose="registry_reconciliation", justification=why, days=1
    )
    assert asked.partner == "homes"
    assert steward.approve(asked.id, reason="one reconciliation").grant.partner == "homes"
    checked = police.cross_check(
        "companies", "homes", purpose="registry_reconciliation", count_by=("homes", "kind")
    )
    assert checked.counts["matched_keys"] == 1 and checked.counted_by
    assert [r["id"] for r in checked.matches[0].right] == ["h1"]

    figures = auditor.sharing_figures()
    assert {row["product"] for row in figures["products"]} == {
        "violation-captures",
        "companies",
        "homes",
    }
    assert auditor.sharing_csv().startswith("scope,organization,product,")


def test_the_async_client_covers_the_same_ground(exchange: Exchange) -> None:
    asyncio.run(_async_round(exchange))


async def _async_round(exchange: Exchange) -> None:
    fleet, police = exchange.parties["fleet"], exchange.parties["police"]
    transport = httpx.ASGITransport(exchange.client.app)
    base = "http://testserver"
    async with (
        AsyncExchangeClient(base, fleet.client_id, fleet.client_secret, transport=transport) as f,
        AsyncExchangeClient(base, police.client_id, police.client_secret, transport=transport) as p,
    ):
        await f.register_product(captures_product())
        feed = await p.subscribe("violation-captures", purpose="law_enforcement")
        outcome = await f.publish("violation-captures", [capture(n) for n in range(1, 8)])
        assert outcome.accepted == 7
        ids = [r["id"] async for r in p.records("violation-captures", purpose="research", limit=3)]
        assert len(ids) == 7
        lines = [r async for r in p.stream_records("violation-captures", purpose="research")]
        assert [r["id"] for r in lines] == ids
        batch = await p.pull(feed.id, wait=2, limit=5)
        assert len(batch.events) == 5
        rest = await p.pull(feed.id, cursor=batch.next_cursor)
        assert [e["event"] for e in rest.events] == [6, 7]
        with pytest.raises(Denied):
            await p.register_product(captures_product(slug="not-theirs"))


def test_a_token_is_fetched_once_and_refreshed_before_it_expires(
    as_party: Callable[[str], ExchangeClient], transport: Recording
) -> None:
    police = as_party("police")
    for _ in range(3):
        list(police.products())
    assert transport.count("/oauth/token") == 1
    first = police.access_token()
    expires_at = _claims(first)["exp"]
    lifetime = _claims(first)["exp"] - _claims(first)["iat"]
    margin = police._token.expires - time.monotonic()
    assert lifetime - 31 < margin < lifetime - min(30, lifetime / 10) + 1, "replaced early"
    police._token.expires = 0.0  # its refresh point has passed, its expiry not yet
    list(police.products())
    assert transport.count("/oauth/token") == 2
    assert police.access_token() != first
    assert _claims(police.access_token())["exp"] >= expires_at


def test_a_refused_token_is_replaced_once(
    as_party: Callable[[str], ExchangeClient], transport: Recording
) -> None:
    police = as_party("police")
    police.access_token()
    police._token.value = _forged(police.access_token())
    assert [p for p in police.products()] == []
    assert transport.count("/oauth/token") == 2


def test_wrong_credentials_are_unauthorized(exchange: Exchange, transport: Recording) -> None:
    police = exchange.parties["police"]
    wrong = ExchangeClient("http://t", police.client_id, "not-the-secret", transport=transport)
    with pytest.raises(Unauthorized) as raised:
        list(wrong.products())
    assert raised.value.status == 401
    assert "not-the-secret" not in repr(wrong) and "not-the-secret" not in str(raised.value)


def test_a_503_is_retried_then_succeeds(
    as_party: Callable[[str], ExchangeClient], transport: Recording
) -> None:
    police = as_party("police")
    transport.fail("/v1/products", [503, 503])
    assert list(police.products()) == []
    assert transport.count("/v1/products") == 3


def test_a_write_that_is_not_idempotent_is_not_retried(
    as_party: Callable[[str], ExchangeClient], transport: Recording
) -> None:
    fleet = as_party("fleet")
    transport.fail("/v1/products", [503])
    with pytest.raises(Unavailable) as raised:
        fleet.register_product(captures_product())
    assert raised.value.retry_after == 0.0
    assert transport.count("/v1/products") == 1
    transport.fail("/v1/products", [httpx.ReadError])
    with pytest.raises(ConnectionFailed):
        fleet.register_product(captures_product())


def test_a_refused_connection_is_retried_for_any_call(
    as_party: Callable[[str], ExchangeClient], transport: Recording
) -> None:
    fleet = as_party("fleet")
    transport.fail("/v1/products", [httpx.ConnectError])
    assert fleet.register_product(captures_product()).slug == "violation-captures"
    transport.fail("/v1/products/violation-captures/records", [httpx.ReadTimeout, 429])
    assert fleet.publish("violation-captures", [capture(1)]).accepted == 1
    transport.fail("/v1/products/violation-captures", [503] * 4)
    with pytest.raises(Unavailable):
        fleet.product("violation-captures")
    assert transport.count("/v1/products/violation-captures") == 4  # 1 + FAST.attempts


def test_problems_map_to_the_exception_tree(
    exchange: Exchange, as_party: Callable[[str], ExchangeClient], settings: Any
) -> None:
    fleet, police, mapco = as_party("fleet"), as_party("police"), as_party("mapco")
    fleet.register_product(captures_product())
    fleet.register_product(captures_product(slug="regulated-captures", tier="regulated"))

    with pytest.raises(Conflict):
        fleet.register_product(captures_product())
    with pytest.raises(NotFound):
        police.product("no-such-product")
    with pytest.raises(BadRequest) as bad:
        list(police.records("violation-captures", purpose="law_enforcement", filters={"x": 1}))
    assert bad.value.errors and bad.value.errors[0].field == "filter"
    with pytest.raises(Denied) as denied:
        list(mapco.records("regulated-captures", purpose="research"))
    assert denied.value.reason and "access-requests" in (denied.value.hint or "")
    with pytest.raises(ValidationFailed) as invalid:
        fleet.publish("violation-captures", [capture(1), capture(2, plate=None)], atomic=True)
    assert [(e.index, e.field) for e in invalid.value.errors] == [(1, "plate")]
    rejected = fleet.publish("violation-captures", [capture(1), capture(2, speed_kmh="fast")])
    assert rejected.accepted == 1 and rejected.rejected[0]["index"] == 1

    run_cli(settings, "product", "erase", "violation-captures", "--reason", "test")
    with pytest.raises(Gone):
        list(police.records("violation-captures", purpose="law_enforcement"))


def test_connect_reads_the_environment(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    police = exchange.parties["police"]
    monkeypatch.setenv("EXCHANGE_PROFILES", str(tmp_path / "none.toml"))
    monkeypatch.setenv("EXCHANGE_URL", "http://testserver")
    monkeypatch.setenv("EXCHANGE_CLIENT_ID", police.client_id)
    monkeypatch.setenv("EXCHANGE_CLIENT_SECRET", police.client_secret)
    with ExchangeClient.connect(transport=exchange.client._transport) as client:
        assert client.client_id == police.client_id
        assert list(client.products()) == []


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _forged(token: str) -> str:
    header, _, signature = token.split(".")
    claims = _claims(token) | {"roles": ["admin"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def _answering(handler: Callable[[httpx.Request], httpx.Response]) -> ExchangeClient:
    """A client whose every request the handler answers (tokens included): for
    answers the real exchange never gives."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 900})
        return handler(request)

    return ExchangeClient("http://x", "id", "secret", transport=httpx.MockTransport(route))


def test_answers_that_break_the_contract_are_unexpected_not_crashes() -> None:
    looping = _answering(lambda r: httpx.Response(200, json={"products": [], "next_cursor": "c"}))
    with pytest.raises(UnexpectedAnswer, match="gave back the cursor"):
        list(looping.products())
    html = _answering(lambda r: httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(UnexpectedAnswer, match="not JSON"):
        html.product("violation-captures")
    shapeless = _answering(lambda r: httpx.Response(200, json={"slug": 1}))
    with pytest.raises(UnexpectedAnswer, match="not a Product"):
        shapeless.product("violation-captures")
    garbled = _answering(lambda r: httpx.Response(200, text='{"id": 1}\nnot json\n'))
    with pytest.raises(UnexpectedAnswer, match="line 2"):
        list(garbled.export_audit())


def test_a_stream_that_breaks_off_is_a_connection_failure() -> None:
    def broken() -> Iterator[bytes]:
        yield b'{"index": 0}\n'
        raise httpx.ReadError("reset by peer")

    client = _answering(lambda r: httpx.Response(200, content=broken()))
    lines = client.export_audit()
    assert next(lines) == {"index": 0}
    with pytest.raises(ConnectionFailed, match="broke off"):
        next(lines)


def test_the_secret_stays_out_of_reprs(exchange: Exchange) -> None:
    from connectors import routes

    police = exchange.parties["police"]
    call = routes.token(police.client_id, police.client_secret)
    client = ExchangeClient("http://x", police.client_id, police.client_secret)
    assert police.client_secret not in repr(call) + repr(client)
