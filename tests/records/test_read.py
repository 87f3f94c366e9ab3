"""Reading records: cursors, time ranges, filters, one record, NDJSON, and the two views."""

import base64
import json
from typing import Any

import pytest

from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, cell_of, pseudonym_for

PRODUCT = "violation-captures"
RECORDS = f"/v1/products/{PRODUCT}/records"
PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"
RAW = {"purpose": "law_enforcement"}  # police: the raw view
PROTECTED = {"purpose": "navigation_safety"}  # mapco: the protected view


def published(n: int) -> dict[str, Any]:
    """Record n as the fixture publishes it: with lane and night, some with a note."""
    changes: dict[str, Any] = {"lane": n % 3 + 1, "night": n % 4 == 0}
    if n % 5 == 0:
        changes["driver_note"] = f"driver {n} looked tired"
    return capture(n, **changes)


BATCH = [published(n) for n in range(1, 26)]


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The captures product with 25 records (seqs 1..25)."""
    exchange.register("fleet", captures_product())
    response = exchange.publish("fleet", PRODUCT, BATCH)
    assert response.status_code == 200, response.text
    assert response.json()["last_seq"] == 25
    return exchange


def read(exchange: Exchange, who: str, purpose: dict[str, str], **params: Any) -> Any:
    return exchange.get(who, RECORDS, params={**purpose, **params})


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


def ids(page: dict[str, Any]) -> list[str]:
    return [record["id"] for record in page["records"]]


def ids_where(test: Any) -> list[str]:
    return [record["id"] for record in BATCH if test(record)]


def audited_reads(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get(
        "auditor", "/v1/audit/entries", params={"action": "read", "product": PRODUCT, **filters}
    )
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


# --- Cursor pagination --------------------------------------------------------------------------


def test_cursor_pages_cover_every_record_once_in_seq_order(world: Exchange) -> None:
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor is not None:
            params["cursor"] = cursor
        page = ok(read(world, "police", RAW, **params))
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the cursor never ends"

    assert [len(page["records"]) for page in pages] == [10, 10, 5]
    assert [page["next_cursor"] is None for page in pages] == [False, False, True]
    seqs = [record["seq"] for page in pages for record in page["records"]]
    assert seqs == list(range(1, 26))
    assert [i for page in pages for i in ids(page)] == [r["id"] for r in BATCH]


def test_an_exact_last_page_has_no_next_cursor(world: Exchange) -> None:
    first = ok(read(world, "police", RAW, limit=5))
    assert first["next_cursor"] is not None
    everything = ok(read(world, "police", RAW, limit=25))
    assert len(everything["records"]) == 25
    assert everything["next_cursor"] is None


def test_records_published_after_a_page_follow_its_cursor(world: Exchange) -> None:
    page = ok(read(world, "police", RAW, limit=25))
    last = ok(read(world, "police", RAW, limit=10, cursor=_cursor({"after": 25})))
    assert page["next_cursor"] is None and last["records"] == []

    world.publish("fleet", PRODUCT, [capture(26)])

    after = ok(read(world, "police", RAW, cursor=_cursor({"after": 20})))
    assert [r["seq"] for r in after["records"]] == [21, 22, 23, 24, 25, 26]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="text"),
        pytest.param("%%%", id="not-base64"),
        pytest.param(_cursor({"after": -1}), id="negative"),
        pytest.param(_cursor({"after": True}), id="boolean"),
        pytest.param(_cursor({"after": 10**30}), id="beyond-64-bits"),
        pytest.param(_cursor({"after": "10"}), id="string"),
        pytest.param(_cursor({"after": 1.5}), id="fraction"),
        pytest.param(_cursor({"before": 10}), id="other-key"),
        pytest.param(_cursor([10]), id="list"),
        pytest.param(_cursor(10), id="number"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), id="not-json"),
    ],
)
def test_a_forged_cursor_is_a_bad_request(world: Exchange, cursor: str) -> None:
    body = problem(read(world, "police", RAW, cursor=cursor), 400)
    assert body["errors"][0]["field"] == "cursor"


# --- Time range --------------------------------------------------------------------------------


def test_from_and_to_select_on_the_time_field(world: Exchange) -> None:
    page = ok(
        read(world, "police", RAW, **{"from": "2026-11-22T00:00:00Z", "to": "2026-11-24T00:00:00Z"})
    )

    expected = ids_where(lambda r: "2026-11-22" <= r["captured_at"] < "2026-11-24")
    assert expected  # the range is not empty
    assert ids(page) == expected


def test_from_is_inclusive_and_to_exclusive(world: Exchange) -> None:
    moment = capture(2)["captured_at"]  # 2026-11-22T08:02:00Z

    starting = ok(read(world, "police", RAW, **{"from": moment}))
    ending = ok(read(world, "police", RAW, to=moment))

    assert ids(starting) == ids_where(lambda r: r["captured_at"] >= moment)
    assert "cap-000002" in ids(starting)
    assert ids(ending) == ids_where(lambda r: r["captured_at"] < moment)
    assert "cap-000002" not in ids(ending)


def test_a_range_given_with_an_offset_is_the_same_instant(world: Exchange) -> None:
    utc = ok(read(world, "police", RAW, **{"from": "2026-11-23T00:00:00Z"}))
    shanghai = ok(read(world, "police", RAW, **{"from": "2026-11-23T08:00:00+08:00"}))

    assert ids(utc) == ids(shanghai)
    assert ids(utc) == ids_where(lambda r: r["captured_at"] >= "2026-11-23")


def test_a_range_pages_with_its_cursor(world: Exchange) -> None:
    params = {"from": "2026-11-21T00:00:00Z", "to": "2026-11-25T00:00:00Z", "limit": 5}
    first = ok(read(world, "police", RAW, **params))
    second = ok(read(world, "police", RAW, **params, cursor=first["next_cursor"]))

    expected = ids_where(lambda r: "2026-11-21" <= r["captured_at"] < "2026-11-25")
    assert len(expected) > 5
    assert ids(first) + ids(second) == expected[:10]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from", "yesterday"),
        ("from", "2026-11-22T00:00:00"),
        ("to", "2026-13-01T00:00:00Z"),
        ("from", "0001-01-01T00:00:00+01:00"),
    ],
)
def test_a_bad_time_is_a_bad_request_naming_the_parameter(
    world: Exchange, name: str, value: str
) -> None:
    body = problem(read(world, "police", RAW, **{name: value}), 400)
    assert name in body["detail"]
    assert body["errors"][0]["field"] == name


# --- Filters -----------------------------------------------------------------------------------


def test_filter_on_a_string_field(world: Exchange) -> None:
    page = ok(read(world, "mapco", PROTECTED, filter="violation_type=red_light"))

    assert ids(page) == ids_where(lambda r: r["violation_type"] == "red_light")
    assert {r["violation_type"] for r in page["records"]} == {"red_light"}


def test_filter_on_an_integer_field(world: Exchange) -> None:
    page = ok(read(world, "mapco", PROTECTED, filter="lane=2"))

    assert ids(page) == ids_where(lambda r: r["lane"] == 2)
    assert {r["lane"] for r in page["records"]} == {2}


def test_filter_on_an_integer_field_with_64_bit_values(world: Exchange) -> None:
    big = 2**40  # publishing accepts any 64-bit integer, so filtering must cope with one
    published = world.publish("fleet", PRODUCT, [capture(26, lane=big)])
    assert published.status_code == 200, published.text

    small = ok(read(world, "police", RAW, filter="lane=2"))
    large = ok(read(world, "police", RAW, filter=f"lane={big}"))

    assert ids(small) == ids_where(lambda r: r["lane"] == 2)
    assert ids(large) == ["cap-000026"]


@pytest.mark.parametrize("value", [True, False])
def test_filter_on_a_boolean_field(world: Exchange, value: bool) -> None:
    page = ok(read(world, "mapco", PROTECTED, filter=f"night={str(value).lower()}"))

    assert ids(page) == ids_where(lambda r: r["night"] is value)
    assert ids(page)


def test_filters_combine(world: Exchange) -> None:
    page = ok(read(world, "mapco", PROTECTED, filter=["violation_type=bus_lane", "lane=1"]))

    assert ids(page) == ids_where(lambda r: r["violation_type"] == "bus_lane" and r["lane"] == 1)
    assert ids(page)


def test_a_filter_that_matches_nothing_is_an_empty_page(world: Exchange) -> None:
    page = ok(read(world, "mapco", PROTECTED, filter="violation_type=speeding"))
    assert page["records"] == []
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    "text",
    [
        "colour=red",
        "violation_type",
        "=red_light",
        "lane=two",
        "lane=2.0",
        "lane=--2",
        pytest.param("lane=²", id="lane=superscript-two"),
        "lane=99999999999999999999",
        "night=yes",
        "night=",
        "speed_kmh=42.5",
        "location=23.1",
    ],
)
def test_a_filter_that_cannot_be_applied_is_a_bad_request(world: Exchange, text: str) -> None:
    body = problem(read(world, "police", RAW, filter=text), 400)
    assert body["errors"][0]["field"] == "filter"
    assert body["errors"][0]["index"] == 0


def test_the_bad_filter_is_named_by_position(world: Exchange) -> None:
    body = problem(read(world, "police", RAW, filter=["lane=2", "colour=red"]), 400)
    assert body["errors"] == [
        {
            "field": "filter",
            "index": 1,
            "reason": "expected field=value with a field of this product",
        }
    ]


def test_filtering_on_a_personal_field_needs_the_raw_view(world: Exchange) -> None:
    plate = capture(3)["plate"]

    denied = problem(read(world, "mapco", PROTECTED, filter=f"plate={plate}"), 400)
    assert "raw view" in denied["errors"][0]["reason"]
    assert "plate" in denied["errors"][0]["reason"]

    police = ok(read(world, "police", RAW, filter=f"plate={plate}"))
    assert police["view"] == "raw"
    assert ids(police) == ids_where(lambda r: r["plate"] == plate)
    assert [r["plate"] for r in police["records"]] == [plate]


def test_filtering_on_a_sensitive_field_needs_the_raw_view(world: Exchange) -> None:
    note = published(5)["driver_note"]
    problem(read(world, "lab", {"purpose": "research"}, filter=f"driver_note={note}"), 400)

    police = ok(read(world, "police", RAW, filter=f"driver_note={note}"))
    assert ids(police) == ["cap-000005"]


# --- One record ---------------------------------------------------------------------------------


def test_one_record_in_the_raw_view(world: Exchange) -> None:
    body = ok(world.get("police", f"{RECORDS}/cap-000005", params=RAW))

    assert body["view"] == "raw"
    assert body["product"] == PRODUCT
    assert body["version"] == 1
    assert body["purpose"] == "law_enforcement"
    record = body["record"]
    assert record["seq"] == 5
    assert record["published_at"].endswith("Z")
    assert {k: v for k, v in record.items() if k not in ("seq", "published_at")} == published(5)


def test_one_record_in_the_protected_view(world: Exchange) -> None:
    body = ok(world.get("mapco", f"{RECORDS}/cap-000005", params=PROTECTED))

    assert body["view"] == "protected"
    record = body["record"]
    assert record["id"] == "cap-000005"
    assert record["plate"] == pseudonym_for(
        world.settings, "lingnan-maps", PRODUCT, published(5)["plate"], body["pseudonyms_until"]
    )
    assert record["photo"] == {"ref": published(5)["photo"], "redacted": True}
    assert "driver_note" not in record
    assert record["location"] == cell_of(published(5)["location"])
    assert record["location"]["cell"].startswith("h3:")
    assert body["fields"] == PROTECTED_FIELDS
    assert body["label"] == "deidentified"
    page = ok(read(world, "mapco", PROTECTED))
    assert record == next(r for r in page["records"] if r["id"] == "cap-000005")


def test_a_missing_record_is_not_found_and_the_read_is_audited(world: Exchange) -> None:
    response = world.get("mapco", f"{RECORDS}/cap-999999", params=PROTECTED)

    body = problem(response, 404)
    assert "cap-999999" in body["detail"]
    entries = audited_reads(world, organization="lingnan-maps")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["decision"] == "allow"
    assert entry["record_count"] == 0
    assert entry["records"] == []
    assert entry["details"]["id"] == "cap-999999"
    assert entry["purpose"] == "navigation_safety"
    assert entry["view"] == "protected"


def test_reading_one_record_is_audited_with_its_seq(world: Exchange) -> None:
    ok(world.get("police", f"{RECORDS}/cap-000007", params=RAW))

    entries = audited_reads(world, organization="gz-traffic-police")
    assert [(e["record_count"], e["records"], e["view"]) for e in entries] == [(1, [[7, 7]], "raw")]


def test_one_record_needs_a_purpose_the_reader_may_state(world: Exchange) -> None:
    problem(world.get("mapco", f"{RECORDS}/cap-000005"), 400)
    problem(world.get("mapco", f"{RECORDS}/cap-000005", params=RAW), 403)


# --- NDJSON -------------------------------------------------------------------------------------


def test_ndjson_returns_one_record_a_line_with_view_and_cursor_headers(world: Exchange) -> None:
    accept = {"Accept": NDJSON}
    first = world.get("police", RECORDS, params={**RAW, "limit": 20}, headers=accept)

    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith(NDJSON)
    assert first.headers["exchange-view"] == "raw"
    cursor = first.headers["exchange-next-cursor"]
    lines = first.text.splitlines()
    assert len(lines) == 20
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, 21))
    assert records[0]["plate"] == capture(1)["plate"]
    assert first.text.endswith("\n")

    rest = world.get(
        "police", RECORDS, params={**RAW, "limit": 20, "cursor": cursor}, headers=accept
    )
    assert rest.status_code == 200, rest.text
    assert "exchange-next-cursor" not in rest.headers
    assert [json.loads(line)["seq"] for line in rest.text.splitlines()] == list(range(21, 26))


def test_ndjson_in_the_protected_view(world: Exchange) -> None:
    response = world.get(
        "mapco", RECORDS, params={**PROTECTED, "limit": 100}, headers={"Accept": NDJSON}
    )

    assert response.status_code == 200, response.text
    assert response.headers["exchange-view"] == "protected"
    assert "exchange-next-cursor" not in response.headers
    assert response.headers["exchange-label"] == "deidentified"
    records = [json.loads(line) for line in response.text.splitlines()]
    assert len(records) == 25
    assert records == ok(read(world, "mapco", PROTECTED))["records"]
    assert all(PSEUDONYM.fullmatch(r["plate"]) and r["photo"]["redacted"] for r in records)
    assert not any(original["plate"] in response.text for original in BATCH)


# --- The two views ------------------------------------------------------------------------------

PROTECTED_FIELDS = {
    "captured_at": "raw",
    "location": "generalized",
    "violation_type": "raw",
    "plate": "pseudonymized",
    "speed_kmh": "raw",
    "lane": "raw",
    "night": "raw",
    "driver_note": "withheld",
    "photo": "redacted",
}


def test_the_protected_view_pseudonymizes_generalises_and_withholds(world: Exchange) -> None:
    page = ok(read(world, "mapco", PROTECTED))

    assert page["view"] == "protected"
    assert page["label"] == "deidentified"
    assert page["fields"] == PROTECTED_FIELDS
    assert len(page["records"]) == 25
    until = page["pseudonyms_until"]
    for shown, original in zip(page["records"], BATCH, strict=True):
        assert shown["id"] == original["id"]
        assert PSEUDONYM.fullmatch(shown["plate"]), shown
        assert shown["plate"] == pseudonym_for(
            world.settings, "lingnan-maps", PRODUCT, original["plate"], until
        )
        assert shown["photo"] == {"ref": original["photo"], "redacted": True}
        assert "driver_note" not in shown
        for name in ("captured_at", "violation_type", "speed_kmh", "lane", "night"):
            assert shown[name] == original[name]
        point, cell = original["location"], shown["location"]
        assert set(cell) == {"lat", "lon", "cell"}
        assert cell == cell_of(point)
        assert (cell["lat"], cell["lon"]) != (point["lat"], point["lon"])
    # 25 plates, 25 pseudonyms: one per plate, none shared.
    assert len({shown["plate"] for shown in page["records"]}) == 25
    first = page["records"][0]["location"]
    assert first == {"lat": 23.127747, "lon": 113.362371, "cell": "h3:884118b263fffff"}


def test_the_grid_follows_the_products_resolution(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product(grid_resolution=7))
    assert exchange.publish("fleet", PRODUCT, BATCH[:1]).status_code == 200

    page = ok(read(exchange, "mapco", PROTECTED))

    assert page["records"][0]["location"] == cell_of(BATCH[0]["location"], 7)
    assert page["records"][0]["location"]["cell"] == "h3:874118b26ffffff"


def test_the_protected_view_masks_where_the_steward_chose_masking(world: Exchange) -> None:
    current = ok(world.get("steward", "/v1/policies"))["lines"]
    pseudonymized = "p2, *, *, *, personal, pseudonymized"
    assert pseudonymized in current
    lines = ["p2, *, *, *, personal, masked" if line == pseudonymized else line for line in current]
    changed = world.put(
        "steward", "/v1/policies", json={"lines": lines, "reason": "plates masked, not keyed"}
    )
    assert changed.status_code == 200, changed.text

    page = ok(read(world, "mapco", PROTECTED))

    assert page["fields"] == PROTECTED_FIELDS | {"plate": "masked"}
    assert page["label"] == "deidentified"
    assert page["pseudonyms_until"] is None
    assert [shown["plate"] for shown in page["records"]] == ["粤A·1****"] * 25
    one = ok(world.get("mapco", f"{RECORDS}/cap-000005", params=PROTECTED))
    assert one["record"]["plate"] == "粤A·1****"


def test_nearby_records_share_a_cell_in_the_protected_view(world: Exchange) -> None:
    page = ok(read(world, "mapco", PROTECTED))
    assert len({json.dumps(r["location"], sort_keys=True) for r in page["records"]}) == 1


def test_the_raw_view_shows_everything_as_published(world: Exchange) -> None:
    page = ok(read(world, "police", RAW))

    assert page["view"] == "raw"
    assert page["purpose"] == "law_enforcement"
    assert page["fields"] == {name: "raw" for name in PROTECTED_FIELDS}
    assert (page["label"], page["pseudonyms_until"]) == ("raw", None)
    shown = [
        {k: v for k, v in record.items() if k not in ("seq", "published_at")}
        for record in page["records"]
    ]
    assert shown == BATCH
    assert any("driver_note" in record for record in shown)


def test_a_research_lab_reads_the_protected_view(world: Exchange) -> None:
    page = ok(read(world, "lab", {"purpose": "research"}))
    assert page["view"] == "protected"
    assert page["fields"] == PROTECTED_FIELDS
    until = page["pseudonyms_until"]
    assert page["records"][0]["plate"] == pseudonym_for(
        world.settings, "scut-mobility-lab", PRODUCT, BATCH[0]["plate"], until
    )
    maps = ok(read(world, "mapco", {"purpose": "research"}))
    assert maps["records"][0]["plate"] != page["records"][0]["plate"]


def test_a_read_is_audited_with_the_seqs_it_returned(world: Exchange) -> None:
    ok(read(world, "mapco", PROTECTED, limit=10))
    ok(read(world, "mapco", PROTECTED, filter="violation_type=red_light", limit=3))

    entries = audited_reads(world, organization="lingnan-maps")
    assert [(e["record_count"], e["records"]) for e in entries] == [
        (10, [[1, 10]]),
        (3, [[1, 1], [3, 3], [5, 5]]),
    ]
    assert entries[1]["details"]["filters"] == ["violation_type=red_light"]
