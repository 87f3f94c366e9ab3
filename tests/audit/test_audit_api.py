"""The audit log through the API: what every read writes, who may read the log,
its filters and pages, failing closed, and the hash chain as the auditor sees it."""

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

import audit
from audit import canonical_bytes, verify_chain
from tests.conftest import BASE_URL, Exchange
from tests.products import capture, captures_product

POSTGRES = BASE_URL.startswith("postgresql")
CAPTURES = "violation-captures"
REGULATED = "regulated-captures"
READS = f"/v1/products/{CAPTURES}/records"
ENTRIES = "/v1/audit/entries"
TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
BODY_KEYS = {
    "index",
    "time",
    "actor",
    "organization",
    "action",
    "product",
    "purpose",
    "decision",
    "reason",
    "policy_version",
    "view",
    "record_count",
    "records",
    "grant",
    "request_id",
    "client",
    "details",
}


def _day(exchange: Exchange, records: int = 20) -> None:
    """An open product with `records` captures, and a regulated one with a few."""
    exchange.register("fleet", captures_product())
    published = exchange.publish("fleet", CAPTURES, [capture(n) for n in range(1, records + 1)])
    assert published.status_code == 200, published.text
    exchange.register("fleet", captures_product(slug=REGULATED, tier="regulated"))
    published = exchange.publish("fleet", REGULATED, [capture(n) for n in range(1, 4)])
    assert published.status_code == 200, published.text


def _log(exchange: Exchange, **params: Any) -> list[dict[str, Any]]:
    """Every entry matching the filters (one page, as the auditor)."""
    response = exchange.get("auditor", ENTRIES, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return body["entries"]


def _by_request(entries: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    found = [e["entry"] for e in entries if e["entry"]["request_id"] == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


def _time(entry: dict[str, Any]) -> datetime:
    return datetime.strptime(entry["time"], TIME).replace(tzinfo=UTC)


def _policy_version(exchange: Exchange) -> str:
    ready = exchange.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    return ready.json()["policy_version"]


def _runs(seqs: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


# --- every read is logged ----------------------------------------------------------


def test_every_allowed_and_denied_read_writes_a_complete_entry(exchange: Exchange) -> None:
    _day(exchange)
    version = _policy_version(exchange)
    police = exchange.parties["police"]
    mapco = exchange.parties["mapco"]
    calls: list[tuple[Any, datetime, datetime]] = []

    def call(who: str, path: str, **kwargs: Any) -> Any:
        before = datetime.now(UTC)
        response = exchange.get(who, path, **kwargs)
        calls.append((response, before, datetime.now(UTC)))
        return response

    raw = call(
        "police",
        READS,
        params={"purpose": "law_enforcement", "limit": 5},
        headers={"X-Request-ID": "police-page-1"},
    )
    assert raw.status_code == 200, raw.text
    assert raw.headers["X-Request-ID"] == "police-page-1"
    page = raw.json()
    assert page["view"] == "raw"
    assert len(page["records"]) == 5
    following = call(
        "police",
        READS,
        params={"purpose": "law_enforcement", "limit": 5, "cursor": page["next_cursor"]},
    )
    assert following.status_code == 200, following.text
    red = call(
        "police",
        READS,
        params={"purpose": "law_enforcement", "filter": "violation_type=red_light"},
    )
    assert red.status_code == 200, red.text
    assert len(red.json()["records"]) == 10
    undeclared = call("mapco", READS, params={"purpose": "commercial"})
    assert undeclared.status_code == 403, undeclared.text
    regulated = call(
        "mapco", f"/v1/products/{REGULATED}/records", params={"purpose": "navigation_safety"}
    )
    assert regulated.status_code == 403, regulated.text

    entries = _log(exchange)
    assert [e["index"] for e in entries] == list(range(len(entries)))
    assert all(e["entry"]["index"] == e["index"] for e in entries)
    assert all(set(e["entry"]) == BODY_KEYS for e in entries)
    request_ids = [response.headers["X-Request-ID"] for response, _, _ in calls]
    assert len(set(request_ids)) == len(request_ids)
    logged = [_by_request(entries, request_id) for request_id in request_ids]
    assert [e["index"] for e in logged] == sorted(e["index"] for e in logged)

    for (response, before, after), entry in zip(calls, logged, strict=True):
        assert entry["action"] == "read"
        assert entry["request_id"] == response.headers["X-Request-ID"]
        assert entry["client"] == "testclient"
        assert entry["policy_version"] == version
        assert entry["grant"] is None
        assert entry["reason"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["time"])
        assert before - timedelta(seconds=1) <= _time(entry) <= after + timedelta(seconds=1)

    for (response, _, _), entry in zip(calls[:3], logged[:3], strict=True):
        shown = response.json()["records"]
        seqs = [record["seq"] for record in shown]
        assert entry["actor"] == police.client_id
        assert entry["organization"] == "gz-traffic-police"
        assert entry["product"] == CAPTURES
        assert entry["purpose"] == "law_enforcement"
        assert entry["decision"] == "allow"
        assert entry["view"] == "raw"
        assert entry["record_count"] == len(shown)
        assert entry["records"] == _runs(seqs)
    assert logged[0]["records"] == [[1, 5]]
    assert logged[1]["records"] == [[6, 10]]
    assert logged[2]["records"] == [[n, n] for n in range(1, 21, 2)]
    assert logged[2]["details"]["filters"] == ["violation_type=red_light"]

    for (response, _, _), entry, product, purpose in zip(
        calls[3:],
        logged[3:],
        [CAPTURES, REGULATED],
        ["commercial", "navigation_safety"],
        strict=True,
    ):
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert "records" not in problem
        assert entry["actor"] == mapco.client_id
        assert entry["organization"] == "lingnan-maps"
        assert entry["product"] == product
        assert entry["purpose"] == purpose
        assert entry["decision"] == "deny"
        assert entry["view"] is None
        assert entry["record_count"] == 0
        assert entry["records"] == []
        assert entry["reason"] == problem["detail"]
        assert entry["policy_version"] == problem["policy_version"]
    assert "commercial" in logged[3]["reason"]
    assert "regulated" in logged[4]["reason"]


def test_a_read_of_one_record_and_a_read_of_nothing_are_logged(exchange: Exchange) -> None:
    _day(exchange, records=3)
    one = exchange.get("police", f"{READS}/cap-000002", params={"purpose": "law_enforcement"})
    assert one.status_code == 200, one.text
    missing = exchange.get("police", f"{READS}/cap-999999", params={"purpose": "law_enforcement"})
    assert missing.status_code == 404, missing.text
    empty = exchange.get(
        "police", READS, params={"purpose": "law_enforcement", "from": "2030-01-01T00:00:00Z"}
    )
    assert empty.status_code == 200, empty.text
    assert empty.json()["records"] == []
    entries = _log(exchange)
    for response, count, runs in [(one, 1, [[2, 2]]), (missing, 0, []), (empty, 0, [])]:
        entry = _by_request(entries, response.headers["X-Request-ID"])
        assert (entry["action"], entry["decision"]) == ("read", "allow")
        assert entry["record_count"] == count
        assert entry["records"] == runs


def test_reads_refused_before_a_decision_are_logged(exchange: Exchange) -> None:
    _day(exchange, records=1)
    no_purpose = exchange.get("police", READS)
    assert no_purpose.status_code == 400, no_purpose.text
    no_product = exchange.get(
        "police", "/v1/products/nothing-here/records", params={"purpose": "law_enforcement"}
    )
    assert no_product.status_code == 404, no_product.text
    entries = _log(exchange, decision="deny")
    for response, product in [(no_purpose, CAPTURES), (no_product, "nothing-here")]:
        entry = _by_request(entries, response.headers["X-Request-ID"])
        assert entry["action"] == "read"
        assert entry["actor"] == exchange.parties["police"].client_id
        assert entry["product"] == product
        assert entry["reason"]
        assert entry["view"] is None


# --- who may read the log ------------------------------------------------------------


@pytest.mark.parametrize("who", ["fleet", "police", "mapco", "steward", "admin", "lab", "hotline"])
def test_only_auditors_may_read_the_log(exchange: Exchange, who: str) -> None:
    refused = exchange.get(who, ENTRIES)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "entries" not in refused.json()
    party = exchange.parties[who]
    entry = _by_request(_log(exchange, actor=party.client_id), refused.headers["X-Request-ID"])
    assert entry["decision"] == "deny"
    assert entry["organization"] == party.organization
    assert entry["product"] is None
    assert entry["reason"] == refused.json()["detail"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz"]
)
def test_the_log_needs_a_valid_token(exchange: Exchange, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = exchange.client.get(ENTRIES, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "entries" not in response.json()


def test_the_auditors_own_query_is_audited(exchange: Exchange) -> None:
    _day(exchange, records=2)
    first = exchange.get(
        "auditor",
        ENTRIES,
        params={"product": CAPTURES, "decision": "allow"},
        headers={"X-Request-ID": "audit-query-1"},
    )
    assert first.status_code == 200, first.text
    shown = first.json()["entries"]
    assert shown
    reads = _log(exchange, action="audit.read")
    entry = _by_request(reads, "audit-query-1")
    auditor = exchange.parties["auditor"]
    assert entry["actor"] == auditor.client_id
    assert entry["organization"] == "gz-audit-office"
    assert entry["decision"] == "allow"
    assert entry["reason"]
    assert entry["policy_version"] == _policy_version(exchange)
    assert entry["record_count"] == len(shown)
    assert entry["client"] == "testclient"
    assert entry["details"]["filters"] == {"product": CAPTURES, "decision": "allow"}
    assert entry["index"] > max(e["index"] for e in shown)
    # and the query that found it is itself in the log, after it
    again = _log(exchange, action="audit.read")
    assert len(again) == len(reads) + 1


# --- filters and pages -----------------------------------------------------------------


def _busy_day(exchange: Exchange) -> list[dict[str, Any]]:
    """Activity by several parties; the log as it stood afterwards."""
    _day(exchange, records=6)
    assert exchange.get("police", READS, params={"purpose": "law_enforcement"}).status_code == 200
    assert exchange.get("police", READS, params={"purpose": "research"}).status_code == 200
    assert exchange.get("mapco", READS, params={"purpose": "commercial"}).status_code == 403
    assert exchange.get("mapco", READS, params={"purpose": "research"}).status_code == 200
    assert exchange.get("lab", READS, params={"purpose": "research"}).status_code == 200
    assert exchange.get("lab", READS, params={"purpose": "law_enforcement"}).status_code == 403
    regulated = f"/v1/products/{REGULATED}/records"
    assert exchange.get("mapco", regulated, params={"purpose": "research"}).status_code == 403
    assert (
        exchange.get("police", regulated, params={"purpose": "law_enforcement"}).status_code == 200
    )
    return _log(exchange)


def _filtered(exchange: Exchange, size: int, **params: str) -> list[int]:
    """Indexes the filtered query returns, from the part of the log before `size`."""
    entries = _log(exchange, **params)
    indexes = [e["index"] for e in entries]
    assert indexes == sorted(indexes)
    return [index for index in indexes if index < size]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("organization", "lingnan-maps"),
        ("organization", "scut-mobility-lab"),
        ("product", CAPTURES),
        ("product", REGULATED),
        ("action", "read"),
        ("action", "publish"),
        ("action", "token.issue"),
        ("decision", "allow"),
        ("decision", "deny"),
        ("purpose", "research"),
        ("purpose", "commercial"),
        ("organization", "no-such-org"),
    ],
)
def test_each_filter_returns_exactly_the_matching_entries(
    exchange: Exchange, name: str, value: str
) -> None:
    before = _busy_day(exchange)
    expected = [e["index"] for e in before if e["entry"][name] == value]
    if value != "no-such-org":
        assert expected
    assert _filtered(exchange, len(before), **{name: value}) == expected


@pytest.mark.parametrize("who", ["police", "mapco", "fleet", "auditor"])
def test_the_actor_filter_takes_a_client_id(exchange: Exchange, who: str) -> None:
    before = _busy_day(exchange)
    client_id = exchange.parties[who].client_id
    expected = [e["index"] for e in before if e["entry"]["actor"] == client_id]
    assert expected
    assert _filtered(exchange, len(before), actor=client_id) == expected


def test_filters_combine(exchange: Exchange) -> None:
    before = _busy_day(exchange)
    expected = [
        e["index"]
        for e in before
        if e["entry"]["organization"] == "lingnan-maps"
        and e["entry"]["decision"] == "deny"
        and e["entry"]["product"] == CAPTURES
    ]
    assert len(expected) == 1
    found = _filtered(
        exchange, len(before), organization="lingnan-maps", decision="deny", product=CAPTURES
    )
    assert found == expected


def test_from_is_inclusive_and_to_exclusive(exchange: Exchange) -> None:
    before = _busy_day(exchange)
    times = [_time(e["entry"]) for e in before]
    assert times == sorted(times)
    low, high = len(before) // 3, 2 * len(before) // 3
    start, end = before[low]["entry"]["time"], before[high]["entry"]["time"]
    expected = [
        e["index"] for e, t in zip(before, times, strict=True) if times[low] <= t < times[high]
    ]
    assert low in expected and high not in expected

    window = _log(exchange, **{"from": start, "to": end})
    assert [e["index"] for e in window] == expected
    assert _log(exchange, **{"from": start, "to": start}) == []

    since = [e["index"] for e in _log(exchange, **{"from": start})]
    assert since[: len(before) - low] == list(range(low, len(before)))
    until = [e["index"] for e in _log(exchange, to=end)]
    assert until == [e["index"] for e, t in zip(before, times, strict=True) if t < times[high]]


def test_from_and_to_accept_any_utc_offset(exchange: Exchange) -> None:
    before = _busy_day(exchange)
    low, high = 2, len(before) - 2
    as_utc = {"from": before[low]["entry"]["time"], "to": before[high]["entry"]["time"]}
    china = timedelta(hours=8)
    as_china = {
        key: (datetime.strptime(value, TIME) + china).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+08:00"
        for key, value in as_utc.items()
    }
    expected = [e["index"] for e in _log(exchange, **as_utc)]
    assert expected
    assert [e["index"] for e in _log(exchange, **as_china)] == expected


@pytest.mark.parametrize(
    "params",
    [
        {"decision": "maybe"},
        {"decision": "ALLOW"},
        {"decision": ""},
        {"from": "yesterday"},
        {"from": "2026-11-28T08:00:00"},
        {"from": "2026-13-01T00:00:00Z"},
        {"to": "not-a-time"},
        {"cursor": "not-a-cursor"},
        {"limit": "0"},
        {"limit": "1001"},
    ],
    ids=repr,
)
def test_bad_query_parameters_are_400(exchange: Exchange, params: dict[str, str]) -> None:
    response = exchange.get("auditor", ENTRIES, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "entries" not in response.json()


def test_pages_of_three_cover_the_log_without_repeats(exchange: Exchange) -> None:
    before = _busy_day(exchange)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = exchange.get("auditor", ENTRIES, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert 1 <= len(page["entries"]) <= 3
        seen += [e["index"] for e in page["entries"]]
        pages += 1
        assert pages < 100
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["entries"]) == 3
    assert len(seen) == len(set(seen))
    assert seen == list(range(len(seen)))
    assert len(seen) >= len(before)
    # each page's own audit.read is in the log; the last page's is the only one not seen
    after = [e["index"] for e in _log(exchange)]
    assert after == [*seen, len(seen)]


def test_filtered_pages_cover_the_matches_without_repeats(exchange: Exchange) -> None:
    before = _busy_day(exchange)
    expected = [e["index"] for e in before if e["entry"]["action"] == "read"]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "action": "read"}
        if cursor:
            params["cursor"] = cursor
        page = exchange.get("auditor", ENTRIES, params=params).json()
        seen += [e["index"] for e in page["entries"]]
        assert all(e["entry"]["action"] == "read" for e in page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


# --- failing closed ----------------------------------------------------------------------


@pytest.fixture
def raw(exchange: Exchange) -> Iterator[Engine]:
    engine = create_engine(exchange.settings.resolved_database_url)
    yield engine
    engine.dispose()


def _block_audit_writes(engine: Engine) -> None:
    with engine.begin() as connection:
        if POSTGRES:
            connection.execute(
                text(
                    "CREATE FUNCTION audit_block() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'blocked'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER audit_block BEFORE INSERT ON audit_entry "
                    "FOR EACH ROW EXECUTE FUNCTION audit_block()"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER audit_block BEFORE INSERT ON audit_entry "
                    "BEGIN SELECT RAISE(ABORT, 'blocked'); END"
                )
            )


def _unblock_audit_writes(engine: Engine) -> None:
    with engine.begin() as connection:
        if POSTGRES:
            connection.execute(text("DROP TRIGGER audit_block ON audit_entry"))
            connection.execute(text("DROP FUNCTION audit_block()"))
        else:
            connection.execute(text("DROP TRIGGER audit_block"))


def _counts(engine: Engine) -> tuple[int, int, int, str]:
    with engine.connect() as connection:
        entries = connection.execute(text("SELECT count(*) FROM audit_entry")).scalar_one()
        records = connection.execute(text("SELECT count(*) FROM record")).scalar_one()
        size, chain = connection.execute(text("SELECT size, chain_hash FROM audit_head")).one()
    return entries, records, size, chain


def _unavailable(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 503
    assert set(problem) == {"type", "title", "status", "detail", "instance"}
    assert problem["instance"] == response.request.url.path
    shown = json.dumps({k: v for k, v in problem.items() if k != "instance"}, ensure_ascii=False)
    for content in ("粤", "cap-0", ".jpg", "113.36", "red_light", "access_token"):
        assert content not in shown, content
    return problem


def test_no_data_leaves_when_its_audit_entry_cannot_be_written(
    exchange: Exchange, raw: Engine
) -> None:
    _day(exchange, records=20)
    for who in ("police", "mapco", "fleet", "auditor"):
        exchange.headers(who)  # tokens first: issuing one is audited too
    fine = exchange.get("police", READS, params={"purpose": "law_enforcement"})
    assert fine.status_code == 200 and "粤" in fine.text
    before = _counts(raw)
    _block_audit_writes(raw)

    _unavailable(exchange.get("police", READS, params={"purpose": "law_enforcement"}))
    _unavailable(
        exchange.get(
            "police",
            READS,
            params={"purpose": "law_enforcement"},
            headers={"Accept": "application/x-ndjson"},
        )
    )
    _unavailable(
        exchange.get("police", f"{READS}/cap-000001", params={"purpose": "law_enforcement"})
    )
    _unavailable(exchange.get("mapco", READS, params={"purpose": "navigation_safety"}))
    _unavailable(exchange.get("mapco", READS, params={"purpose": "commercial"}))
    _unavailable(exchange.get("auditor", ENTRIES))
    party = exchange.parties["lab"]
    token = exchange.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": party.client_id,
            "client_secret": party.client_secret,
        },
    )
    assert token.status_code == 503, token.text
    assert "access_token" not in token.json()
    assert _counts(raw) == before

    _unblock_audit_writes(raw)
    assert _counts(raw) == before
    entries = _log(exchange)
    assert verify_chain([_Stored(e) for e in entries[: before[0]]], expected_size=before[2]) is None


def test_a_publish_whose_audit_entry_cannot_be_written_keeps_nothing(
    exchange: Exchange, raw: Engine
) -> None:
    _day(exchange, records=20)
    exchange.headers("fleet")
    before = _counts(raw)
    _block_audit_writes(raw)

    batch = [capture(n) for n in range(21, 31)]
    _unavailable(exchange.publish("fleet", CAPTURES, batch))
    _unavailable(exchange.publish("fleet", CAPTURES, batch, atomic="false"))

    _unblock_audit_writes(raw)
    assert _counts(raw) == before
    product = exchange.get("fleet", f"/v1/products/{CAPTURES}")
    assert product.status_code == 200, product.text
    assert product.json()["record_count"] == 20
    read = exchange.get("fleet", READS, params={"purpose": "research", "limit": 1000})
    assert read.status_code == 200, read.text
    page = read.json()
    assert [r["id"] for r in page["records"]] == [f"cap-{n:06d}" for n in range(1, 21)]

    # the same batch goes through once the log can be written, numbered as if never tried
    again = exchange.publish("fleet", CAPTURES, batch)
    assert again.status_code == 200, again.text
    assert again.json()["accepted"] == 10
    assert (again.json()["first_seq"], again.json()["last_seq"]) == (21, 30)
    published = _by_request(_log(exchange, action="publish"), again.headers["X-Request-ID"])
    assert published["records"] == [[21, 30]]
    own_read = _by_request(_log(exchange, action="read"), read.headers["X-Request-ID"])
    assert own_read["index"] == before[0]
    assert published["index"] == before[0] + 1


# --- the hash chain over the API -----------------------------------------------------


class _Stored:
    """An API entry in the shape verify_chain reads: the body re-encoded canonically."""

    def __init__(self, public: dict[str, Any]) -> None:
        self.index = public["index"]
        self.body = canonical_bytes(public["entry"])
        self.leaf_hash = public["leaf_hash"]
        self.chain_hash = public["chain_hash"]


def test_the_api_entries_carry_their_leaf_and_chain_hashes(exchange: Exchange) -> None:
    _day(exchange, records=4)
    bad = exchange.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "粤A-客户", "client_secret": "x"},
    )
    assert bad.status_code == 401, bad.text
    plate = exchange.get(
        "police", READS, params={"purpose": "law_enforcement", "filter": "plate=粤A·10002"}
    )
    assert plate.status_code == 200, plate.text
    assert [r["id"] for r in plate.json()["records"]] == ["cap-000002"]

    entries = _log(exchange)
    assert len(entries) > 10
    previous = bytes(32)
    for public in entries:
        encoded = canonical_bytes(public["entry"])
        leaf = hashlib.sha256(b"\x00" + encoded).digest()
        assert public["leaf_hash"] == leaf.hex(), public["index"]
        previous = hashlib.sha256(previous + leaf).digest()
        assert public["chain_hash"] == previous.hex(), public["index"]
    assert verify_chain([_Stored(e) for e in entries]) is None

    texts = [e["entry"] for e in entries]
    assert {"client_id": "粤A-客户"} in [t["details"] for t in texts]
    # A searched plate is logged only as its keyed hash (see the subject index).
    (searched,) = [t["details"]["filters"] for t in texts if t["details"].get("filters")]
    assert searched[0].startswith("plate=keyed:") and len(searched[0]) == len("plate=keyed:") + 64
    assert "粤A·10002" not in json.dumps(texts, ensure_ascii=False)


def test_the_api_entries_are_the_stored_bytes(exchange: Exchange, raw: Engine) -> None:
    _day(exchange, records=2)
    entries = _log(exchange)
    with raw.connect() as connection:
        rows = connection.execute(
            text('SELECT "index", body, leaf_hash, chain_hash FROM audit_entry ORDER BY "index"')
        ).all()
    stored = {row[0]: row for row in rows}
    for public in entries:
        _, body, leaf, chain = stored[public["index"]]
        assert bytes(body) == canonical_bytes(public["entry"])
        assert (leaf, chain) == (public["leaf_hash"], public["chain_hash"])
        assert audit.leaf_hash(bytes(body)).hex() == leaf
    with raw.connect() as connection:
        head = connection.execute(text("SELECT size, chain_hash FROM audit_head")).one()
    # the listing's own audit.read is the newest entry and the head points at it
    assert head[0] == len(entries) + 1
    assert head[1] == stored[len(entries)][3]
