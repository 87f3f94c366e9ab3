"""The demo's products as a protected view shows them, under the default policy: a
near miss's time as its hour, the vehicle's speed as its band, photos redacted."""

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.fleet import Fleet, pedestrian_near_misses, violation_captures
from exchange.catalog.models import ProductCreate
from exchange.demo.products import PEDESTRIAN_NEAR_MISSES, VIOLATION_CAPTURES
from exchange.privacy import views
from exchange.records.validation import validate
from exchange.timeutil import parse_rfc3339
from policies import PolicyEngine, Resource, Subject

NOW = datetime(2026, 11, 28, 9, 30, 15, tzinfo=UTC)
LAB = Subject("cl_lab", "uni-sysu", "research", frozenset({"subscriber"}))
MAPCO = Subject("cl_maps", "lingnan-maps", "enterprise", frozenset({"subscriber"}))


def _shown(
    subject: Subject,
    definition: ProductCreate,
    records: list[dict[str, object]],
    purpose: str,
    granted: frozenset[str] = frozenset(),
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    resource = Resource(
        definition.slug, definition.tier, "pearl-robotaxi", frozenset(definition.purposes), granted
    )
    decision = PolicyEngine.default().decide(subject, resource, "read", purpose)
    assert decision.allowed, decision.reason
    treatment_of = views.treatments(decision.view, definition.fields, decision.treatments)
    shaping = views.Shaping.of(
        definition.fields, resolution=definition.grid_resolution, pseudonymize=lambda v: "ps"
    )
    return treatment_of, [views.apply(treatment_of, record, shaping) for record in records]


def test_a_granted_lab_sees_near_misses_by_the_hour_and_speed_band() -> None:
    records = pedestrian_near_misses(200, now=NOW)
    treatment_of, shown = _shown(
        LAB, PEDESTRIAN_NEAR_MISSES, records, "research", frozenset({"research"})
    )

    assert treatment_of["occurred_at"] == "generalized"
    assert treatment_of["vehicle_speed_kmh"] == "generalized"
    assert treatment_of["photo"] == "redacted"
    bands = set()
    for original, record in zip(records, shown, strict=True):
        hour = record["occurred_at"]
        assert isinstance(hour, dict) and hour["bucket"] == "hour"
        start, end = parse_rfc3339(hour["from"]), parse_rfc3339(hour["to"])
        assert start <= parse_rfc3339(str(original["occurred_at"])) < end
        assert end - start == timedelta(hours=1) and start.minute == start.second == 0
        band = record["vehicle_speed_kmh"]
        assert isinstance(band, dict)
        speed = original["vehicle_speed_kmh"]
        assert band["min"] <= speed < (band["max"] if band["max"] is not None else 1e9)
        bands.add(band["band"])
        assert record["photo"] == {"ref": original["photo"], "redacted": True}
        assert record["location"]["cell"].startswith("h3:")
    # The demo's speeds spread over several bands, none open-ended.
    assert len(bands) >= 4 and not any(b.startswith(("<", ">=")) for b in bands), bands


def test_the_map_company_gets_captures_with_redacted_photos_and_plain_speeds() -> None:
    records = violation_captures(50, now=NOW)
    treatment_of, shown = _shown(MAPCO, VIOLATION_CAPTURES, records, "navigation_safety")

    assert treatment_of["photo"] == "redacted"
    assert treatment_of["speed_kmh"] == treatment_of["captured_at"] == "raw"
    for original, record in zip(records, shown, strict=True):
        assert record["photo"] == {"ref": original["photo"], "redacted": True}
        assert record["speed_kmh"] == original["speed_kmh"]


def test_the_simulated_fleets_records_fit_the_product_the_demo_registers() -> None:
    fleet = Fleet(seed=3, vehicles=5, start=NOW)
    for photographed in (True, False):
        fleet.photos = photographed
        for capture in fleet.captures(10, rate=5):
            record_id, content = validate(capture.record, VIOLATION_CAPTURES)
            assert record_id == capture.record["id"]
            assert set(content) == {spec.name for spec in VIOLATION_CAPTURES.fields}
