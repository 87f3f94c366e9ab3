"""A protected read of a product whose fields declare generalizations: times shown as
their hour, speeds as their band, photos redacted; and time windows on the bucket."""

from typing import Any

import pytest

from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import cell_of

PRODUCT = "violation-captures"
RECORDS = f"/v1/products/{PRODUCT}/records"
PROTECTED = {"purpose": "navigation_safety"}  # mapco: the protected view
RAW = {"purpose": "law_enforcement"}  # police: the raw view
SPEED_BANDS = [0, 20, 30, 40, 50, 60, 80]


def _fields() -> list[dict[str, Any]]:
    changed = {
        "captured_at": {"sensitivity": "location", "generalization": {"time_bucket": "hour"}},
        "speed_kmh": {"sensitivity": "personal", "generalization": {"bands": SPEED_BANDS}},
        # The lane a car was in is where it was: location, shown to the nearest even lane.
        "lane": {"sensitivity": "location", "generalization": {"round_to": 2}},
        "location": {"generalization": {"resolution": 7}},
    }
    return [{**spec, **changed.get(spec["name"], {})} for spec in captures_product()["fields"]]


# (captured_at as published, speed_kmh, lane)
PUBLISHED = [
    ("2026-11-21T08:00:00Z", 19.9, 1),
    ("2026-11-21T08:59:59.5Z", 20, 2),
    ("2026-11-21T17:05:00+08:00", 79.5, 3),  # 09:05 UTC
    ("2026-11-21T09:00:00Z", 80, 4),
    ("2026-11-21T10:30:00Z", 55.5, 5),
]
BATCH = [
    capture(n, captured_at=at, speed_kmh=speed, lane=lane)
    for n, (at, speed, lane) in enumerate(PUBLISHED, start=1)
]


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    exchange.register("fleet", captures_product(fields=_fields()))
    response = exchange.publish("fleet", PRODUCT, BATCH)
    assert response.status_code == 200, response.text
    return exchange


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def _hour(start: str, end: str) -> dict[str, str]:
    return {"from": start, "to": end, "bucket": "hour"}


def test_a_protected_read_shows_hours_bands_cells_and_redacted_photos(world: Exchange) -> None:
    page = ok(world.get("mapco", RECORDS, params=PROTECTED))

    assert page["label"] == "deidentified"
    assert page["fields"] == {
        "captured_at": "generalized",
        "location": "generalized",
        "violation_type": "raw",
        "plate": "pseudonymized",
        "speed_kmh": "generalized",
        "lane": "generalized",
        "night": "raw",
        "driver_note": "withheld",
        "photo": "redacted",
    }
    shown = {r["id"]: r for r in page["records"]}
    nine, ten = "2026-11-21T09:00:00Z", "2026-11-21T10:00:00Z"
    expected = {
        "cap-000001": (_hour("2026-11-21T08:00:00Z", nine), "0-20", 0, 20, 2),
        "cap-000002": (_hour("2026-11-21T08:00:00Z", nine), "20-30", 20, 30, 2),
        "cap-000003": (_hour(nine, ten), "60-80", 60, 80, 4),
        "cap-000004": (_hour(nine, ten), ">=80", 80, None, 4),
        "cap-000005": (_hour(ten, "2026-11-21T11:00:00Z"), "50-60", 50, 60, 6),
    }
    for record_id, (hour, band, low, high, lane) in expected.items():
        record = shown[record_id]
        assert record["captured_at"] == hour
        assert record["speed_kmh"] == {"band": band, "min": low, "max": high}
        assert record["lane"] == lane
        original = next(r for r in BATCH if r["id"] == record_id)
        assert record["location"] == cell_of(original["location"], 7)
        assert record["photo"] == {"ref": original["photo"], "redacted": True}
        assert record["violation_type"] == original["violation_type"]
        # Published seconds after capture, so the publication time is only the hour too.
        assert set(record["published_at"]) == {"from", "to", "bucket"}
        assert record["published_at"]["bucket"] == "hour"


def test_the_raw_view_is_unchanged_by_generalizations(world: Exchange) -> None:
    page = ok(world.get("police", RECORDS, params=RAW))

    assert page["label"] == "raw"
    assert set(page["fields"].values()) == {"raw"}
    first = page["records"][0]
    assert (first["captured_at"], first["speed_kmh"], first["lane"]) == (
        "2026-11-21T08:00:00Z",
        19.9,
        1,
    )
    assert first["photo"] == BATCH[0]["photo"]


def test_the_decision_explains_the_treatment_of_each_field(world: Exchange) -> None:
    answer = ok(
        world.post(
            "mapco",
            "/v1/decisions",
            json={"product": PRODUCT, "purpose": "navigation_safety", "action": "read"},
        )
    )
    assert answer["fields"]["captured_at"] == "generalized"
    assert answer["fields"]["speed_kmh"] == "generalized"
    assert answer["fields"]["photo"] == "redacted"


@pytest.mark.parametrize(
    ("window", "records"),
    [
        ({"from": "2026-11-21T09:00:00Z"}, ["cap-000003", "cap-000004", "cap-000005"]),
        ({"to": "2026-11-21T09:00:00Z"}, ["cap-000001", "cap-000002"]),
        (
            {"from": "2026-11-21T08:00:00Z", "to": "2026-11-21T10:00:00Z"},
            ["cap-000001", "cap-000002", "cap-000003", "cap-000004"],
        ),
        (
            {"from": "2026-11-21T17:00:00+08:00", "to": "2026-11-21T18:00:00+08:00"},
            ["cap-000003", "cap-000004"],
        ),
    ],
)
def test_a_window_on_whole_buckets_is_allowed(
    world: Exchange, window: dict[str, str], records: list[str]
) -> None:
    page = ok(world.get("mapco", RECORDS, params={**PROTECTED, **window}))
    assert [r["id"] for r in page["records"]] == records


@pytest.mark.parametrize(
    ("window", "unaligned"),
    [
        ({"from": "2026-11-21T08:30:00Z"}, ["from"]),
        ({"to": "2026-11-21T09:00:01Z"}, ["to"]),
        ({"from": "2026-11-21T08:00:00.5Z", "to": "2026-11-21T09:00:00Z"}, ["from"]),
        ({"from": "2026-11-21T08:15:00Z", "to": "2026-11-21T08:45:00Z"}, ["from", "to"]),
        # An hour in India Standard Time starts at half past a UTC hour.
        ({"from": "2026-11-21T14:00:00+05:30"}, ["from"]),
    ],
)
def test_a_window_finer_than_the_bucket_is_refused_naming_the_bound(
    world: Exchange, window: dict[str, str], unaligned: list[str]
) -> None:
    response = world.get("mapco", RECORDS, params={**PROTECTED, **window})

    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == unaligned
    assert all("not the start of a UTC hour" in e["reason"] for e in errors), errors
    assert all("captured_at" in e["reason"] for e in errors), errors
    audited = world.get(
        "auditor", "/v1/audit/entries", params={"action": "read", "decision": "deny"}
    ).json()["entries"]
    assert [e["entry"]["organization"] for e in audited] == ["lingnan-maps"]


def test_the_raw_view_may_use_any_window(world: Exchange) -> None:
    window = {"from": "2026-11-21T08:30:00Z", "to": "2026-11-21T09:03:00Z"}
    page = ok(world.get("police", RECORDS, params={**RAW, **window}))
    assert [r["id"] for r in page["records"]] == ["cap-000002", "cap-000004"]


def test_a_window_on_a_time_shown_otherwise_is_still_refused(exchange: Exchange) -> None:
    """Without a time bucket, a location timestamp is withheld in the protected view."""
    fields = [
        {**spec, "sensitivity": "location"} if spec["name"] == "captured_at" else spec
        for spec in captures_product()["fields"]
    ]
    exchange.register("fleet", captures_product(fields=fields))
    window = {"from": "2026-11-21T08:00:00Z"}

    response = exchange.get("mapco", RECORDS, params={**PROTECTED, **window})

    assert response.status_code == 400, response.text
    assert "captured_at is shown withheld" in response.json()["errors"][0]["reason"]
