"""The fleet simulator: robotaxis driving Guangzhou's roads, the violations their
cameras catch, and `exchange simulate` publishing them with photos to the exchange
served for real, read back as the police."""

import io
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from connectors.fleet import Fleet, Vehicle
from connectors.fleet.geography import BOUNDS, ROAD_NAMES, ROADS, Point, distance_m, nearest_on
from connectors.fleet.vehicles import CRUISE_SHARE
from connectors.simulator import parse_duration
from exchange.cli import app as cli
from exchange.privacy.redaction import Box, check_boxes, inspect
from tests.connectors.conftest import Live
from tests.products import captures_product

NOW = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
PRODUCT = "violation-captures"
PROVINCE = "粤湘桂"
PLATE_CHARS = "A-HJ-NP-Z0-9"
PLATE = re.compile(rf"^[{PROVINCE}][A-Z]\u00b7[{PLATE_CHARS}]{{5}}$")
NEW_ENERGY_PLATE = re.compile(rf"^[{PROVINCE}][A-Z]\u00b7[DF][{PLATE_CHARS}]\d{{4}}$")
CAPTURED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
VIOLATIONS = {
    "red_light",
    "illegal_parking",
    "bus_lane",
    "speeding",
    "failure_to_yield_pedestrian",
    "illegal_u_turn",
    "wrong_way",
}
ROAD_BY_NAME = {road.name: road for roads in ROADS.values() for road in roads}


def vehicles(count: int = 20, seed: int = 7) -> list[Vehicle]:
    return [Vehicle(f"RT-{n:04d}", random.Random(f"{seed}-{n}")) for n in range(1, count + 1)]


def in_guangzhou(point: Point) -> bool:
    (south, north), (west, east) = BOUNDS
    return south <= point[0] <= north and west <= point[1] <= east


def off_road_m(point: Point, road: str) -> float:
    """How far the point is from the centre line of a road of the geography."""
    found = ROAD_BY_NAME[road]
    return distance_m(point, nearest_on(point, found.start, found.end))


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# --- movement ----------------------------------------------------------------------------


def test_vehicles_drive_along_the_roads_of_guangzhou() -> None:
    fleet = vehicles()
    for minute in range(1, 121):
        for vehicle in fleet:
            vehicle.drive_to(minute * 60.0)
            leg = vehicle.leg
            assert in_guangzhou(vehicle.position)
            on_leg = nearest_on(vehicle.position, leg.start, leg.end)
            assert distance_m(vehicle.position, on_leg) < 1
            assert vehicle.district in ROADS
            if leg.on_road:
                # along the road named, from one point of it to another
                assert leg.road in {road.name for road in ROADS[vehicle.district]}
                assert off_road_m(vehicle.position, leg.road) < 1
                assert off_road_m(leg.start, leg.road) < 1 and off_road_m(leg.end, leg.road) < 1
            else:
                # a cross street joining two roads of the geography, or where there
                # is none, the approach to the road it leads to
                assert leg.road not in ROAD_NAMES or off_road_m(leg.end, leg.road) < 1
                assert min(off_road_m(leg.start, name) for name in ROAD_NAMES) < 1
                assert min(off_road_m(leg.end, name) for name in ROAD_NAMES) < 1


def test_vehicles_move_continuously_at_a_speed_near_the_limit() -> None:
    fleet = vehicles(10)
    where = [vehicle.position for vehicle in fleet]
    for second in range(1, 1801):
        for index, vehicle in enumerate(fleet):
            vehicle.drive_to(float(second))
            step = distance_m(where[index], vehicle.position)
            where[index] = vehicle.position
            limit = vehicle.leg.speed_limit_kmh
            assert limit in (40, 50, 60, 80)
            low, high = CRUISE_SHARE
            assert low * limit <= vehicle.speed_kmh <= high * limit
            assert 0 < step <= 80 / 3.6 + 0.01  # a second's drive, never a jump


def test_routes_turn_onto_other_roads_and_into_other_districts() -> None:
    fleet = vehicles()
    roads: dict[str, set[str]] = {vehicle.id: set() for vehicle in fleet}
    districts: dict[str, set[str]] = {vehicle.id: set() for vehicle in fleet}
    for second in range(0, 3 * 3600, 30):
        for vehicle in fleet:
            vehicle.drive_to(float(second))
            if vehicle.leg.on_road:
                roads[vehicle.id].add(vehicle.leg.road)
            districts[vehicle.id].add(vehicle.district)
    assert all(len(driven) >= 3 for driven in roads.values()), roads
    assert sum(len(seen) > 1 for seen in districts.values()) >= len(fleet) // 2, districts


def test_where_a_vehicle_is_depends_only_on_its_seed_and_the_time() -> None:
    stepped, at_once, other = (Vehicle("RT-0001", random.Random(seed)) for seed in (5, 5, 6))
    for second in range(1, 3601):
        stepped.drive_to(float(second))
    at_once.drive_to(3600.0)
    other.drive_to(3600.0)
    assert stepped.leg.road == at_once.leg.road
    assert distance_m(stepped.position, at_once.position) < 0.01
    assert distance_m(other.position, at_once.position) > 1


def test_a_vehicle_cannot_drive_back_in_time() -> None:
    vehicle = Vehicle("RT-0001", random.Random(1))
    vehicle.drive_to(10.0)
    with pytest.raises(ValueError, match=r"at 10\.0 s already"):
        vehicle.drive_to(9.0)


# --- captures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def captured() -> list[dict[str, Any]]:
    fleet = Fleet(seed=7, vehicles=20, start=NOW, photos=False)
    return [capture.record for capture in fleet.captures(600, rate=4)]


def test_captures_are_well_formed_records_in_time_order(captured: list[dict[str, Any]]) -> None:
    assert len(captured) == 2400
    assert len({record["id"] for record in captured}) == len(captured)
    stamps = [record["captured_at"] for record in captured]
    assert stamps == sorted(stamps)
    start = NOW.replace(microsecond=123000)
    for record in captured:
        assert re.fullmatch(r"sim-7-20261128T093015123-\d{6}", record["id"])
        assert CAPTURED_AT.match(record["captured_at"]), record["captured_at"]
        assert start <= parse(record["captured_at"]) < start + timedelta(seconds=600)
        assert PLATE.match(record["plate"]) or NEW_ENERGY_PLATE.match(record["plate"])
        assert re.fullmatch(r"RT-00(0[1-9]|1\d|20)", record["vehicle_id"])
        assert record["district"] in ROADS
        assert 0.70 <= record["confidence"] <= 0.995
        assert record["photo"] == f"captures/{record['id']}.jpg"
        point = (record["location"]["lat"], record["location"]["lon"])
        assert in_guangzhou(point)
        if record["road"] in ROAD_NAMES:  # the violator is just ahead of the camera
            assert off_road_m(point, record["road"]) < 50
    assert {record["district"] for record in captured} == set(ROADS)
    assert len({record["vehicle_id"] for record in captured}) == 20


def test_speeds_and_violations_fit_as_in_the_demo(captured: list[dict[str, Any]]) -> None:
    kinds = Counter(record["violation_type"] for record in captured)
    assert set(kinds) == VIOLATIONS
    assert kinds["wrong_way"] < kinds["red_light"] and kinds["illegal_parking"] > 0.15 * 2400
    for record in captured:
        speed, limit = record["speed_kmh"], record["speed_limit_kmh"]
        assert limit in (40, 50, 60, 80)
        if record["violation_type"] == "speeding":
            assert speed > limit
        elif record["violation_type"] == "illegal_parking":
            assert speed == 0.0
        else:
            assert 0 < speed <= limit


def test_some_plates_are_repeat_offenders(captured: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    repeats = 0
    for record in captured:
        repeats += record["plate"] in seen
        seen.add(record["plate"])
    assert 0.08 < repeats / len(captured) < 0.25


def test_each_photo_shows_a_plate_and_a_face_inside_their_boxes() -> None:
    for capture in Fleet(seed=2, vehicles=3, start=NOW).captures(5, rate=4):
        assert capture.photo is not None
        info = inspect(capture.photo)
        assert (info.format, info.width, info.height) == ("JPEG", 480, 270)
        declared = capture.record["photo"]
        assert declared["ref"] == f"captures/{capture.record['id']}.jpg"
        boxes = [Box(**box) for box in declared["boxes"]]
        assert [box.kind for box in boxes] == ["plate", "face"]
        check_boxes(info, boxes)


def test_the_same_seed_and_start_give_the_same_captures() -> None:
    def run(seed: int) -> list[tuple[dict[str, Any], bytes | None]]:
        fleet = Fleet(seed=seed, vehicles=5, start=NOW)
        return [(c.record, c.photo) for c in fleet.captures(3, rate=3)]

    first = run(4)
    assert run(4) == first
    assert [record for record, _ in run(5)] != [record for record, _ in first]


def test_the_rate_holds_over_calls_with_fractions_carried() -> None:
    fleet = Fleet(seed=1, vehicles=2, start=NOW, photos=False)
    counts = [len(fleet.captures(1, rate=2.5)) for _ in range(10)]
    assert sum(counts) == 25 and set(counts) == {2, 3}
    assert fleet.now == NOW.replace(microsecond=123000) + timedelta(seconds=10)
    assert all(vehicle.elapsed_s == 10 for vehicle in fleet.vehicles)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"vehicles": 0}, "1 to 9999 vehicles"),
        ({"start": datetime(2026, 11, 28, 9, 30)}, "timezone-aware"),
    ],
)
def test_a_fleet_refuses_bad_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fleet(**arguments)


@pytest.mark.parametrize(("seconds", "rate"), [(-1, 1), (1, -1), (1, float("nan"))])
def test_captures_refuse_bad_times_and_rates(seconds: float, rate: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        Fleet(start=NOW).captures(seconds, rate)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("2.5", 2.5), ("30s", 30), ("5m", 300), ("1.5h", 5400), (" 2 M ", 120)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5d", "1m30s", "-3", "0", "0s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- `exchange simulate` against the exchange --------------------------------------------


def test_simulate_publishes_captures_and_photos_the_police_can_read(live: Live) -> None:
    before = datetime.now(UTC)
    result = CliRunner().invoke(
        cli,
        ["simulate", "--rate", "20", "--duration", "2", "--vehicles", "5", "--seed", "3"],
        env=live.environment("fleet"),
    )
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output + result.stderr
    assert f"registered {PRODUCT}" in result.stderr
    assert "records published 40, unchanged 0, rejected 0" in result.stdout
    assert "photos uploaded 40, refused 0" in result.stdout

    response = live.exchange.get(
        "police", f"/v1/products/{PRODUCT}/records", params={"purpose": "law_enforcement"}
    )
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert len(records) == 40
    for record in records:
        assert before - timedelta(seconds=1) < parse(record["captured_at"]) < after
        assert re.fullmatch(r"RT-000[1-5]", record["vehicle_id"])
        assert PLATE.match(record["plate"]) or NEW_ENERGY_PLATE.match(record["plate"])
    image = live.exchange.get(
        "police",
        f"/v1/products/{PRODUCT}/records/{records[0]['id']}/image",
        params={"purpose": "law_enforcement"},
    )
    assert image.status_code == 200, image.text
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (480, 270)


def test_rejected_records_are_printed_and_the_run_goes_on(live: Live) -> None:
    live.exchange.register("fleet", captures_product("captures-lite"))
    result = CliRunner().invoke(
        cli,
        ["simulate", "--product", "captures-lite", "--rate", "3", "--duration", "1s"],
        env=live.environment("fleet"),
    )
    assert result.exit_code == 0, result.output + result.stderr
    rejects = [line for line in result.stderr.splitlines() if line.startswith("rejected")]
    assert len(rejects) == 3
    assert all(": confidence: not a field of this product" in line for line in rejects), rejects
    assert "records published 0, unchanged 0, rejected 3" in result.stdout
    assert "photos uploaded 0, refused 0" in result.stdout


def test_a_missing_product_is_not_registered_with_no_register(live: Live) -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--no-register", "--duration", "1"], env=live.environment("fleet")
    )
    assert result.exit_code == 1
    assert "violation-captures: no such product" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert live.exchange.get("fleet", f"/v1/products/{PRODUCT}").status_code == 404


@pytest.mark.parametrize(
    ("arguments", "option"), [(["--duration", "soon"], "--duration"), (["--rate", "0"], "--rate")]
)
def test_bad_options_are_usage_errors(arguments: list[str], option: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", *arguments])
    assert result.exit_code == 2
    assert option in result.stderr
