"""The demo's synthetic Guangzhou traffic records, the fleet's backdated week and the
hotline's: shape, determinism, plausibility."""

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.fleet import pedestrian_near_misses, violation_captures
from exchange.demo.data import hotline_tickets

Generator = Callable[..., list[dict[str, object]]]

NOW = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
COUNT = 1000

CENTRES = {
    "Tianhe": (23.1246, 113.3612),
    "Yuexiu": (23.1290, 113.2668),
    "Haizhu": (23.0838, 113.3172),
    "Liwan": (23.1259, 113.2443),
    "Baiyun": (23.1578, 113.2730),
    "Panyu": (22.9377, 113.3842),
    "Huangpu": (23.1063, 113.4594),
}

CAPTURE_FIELDS = {
    "id",
    "captured_at",
    "location",
    "district",
    "road",
    "violation_type",
    "plate",
    "speed_kmh",
    "speed_limit_kmh",
    "confidence",
    "vehicle_id",
    "photo",
}
NEAR_MISS_FIELDS = {
    "id",
    "occurred_at",
    "location",
    "district",
    "road",
    "road_user",
    "min_distance_m",
    "vehicle_speed_kmh",
    "time_to_collision_s",
    "vehicle_id",
    "photo",
}
TICKET_FIELDS = {
    "id",
    "received_at",
    "district",
    "category",
    "description",
    "caller_phone",
    "location",
    "status",
}

# (generator, id prefix, timestamp field, fields)
KINDS = [
    (violation_captures, "cap", "captured_at", CAPTURE_FIELDS),
    (pedestrian_near_misses, "nm", "occurred_at", NEAR_MISS_FIELDS),
    (hotline_tickets, "tkt", "received_at", TICKET_FIELDS),
]
GENERATORS = [kind[0] for kind in KINDS]

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PROVINCE = "粤湘桂"
PLATE_CHARS = "A-HJ-NP-Z0-9"
PLATE = re.compile(rf"^[{PROVINCE}][A-Z]\u00b7[{PLATE_CHARS}]{{5}}$")
NEW_ENERGY_PLATE = re.compile(rf"^[{PROVINCE}][A-Z]\u00b7[DF][{PLATE_CHARS}]\d{{4}}$")
PHONE = re.compile(r"^1(3|5|8|9)\d{9}$")


@pytest.fixture(scope="module")
def captures() -> list[dict[str, object]]:
    return violation_captures(COUNT, now=NOW)


@pytest.fixture(scope="module")
def near_misses() -> list[dict[str, object]]:
    return pedestrian_near_misses(COUNT, now=NOW)


@pytest.fixture(scope="module")
def tickets() -> list[dict[str, object]]:
    return hotline_tickets(COUNT, now=NOW)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))


@pytest.mark.parametrize("generate", GENERATORS)
def test_same_arguments_give_identical_output(generate: Generator) -> None:
    assert generate(200, now=NOW) == generate(200, now=NOW)
    assert generate(200, seed=99, now=NOW) == generate(200, seed=99, now=NOW)
    assert generate(200, seed=99, now=NOW) != generate(200, seed=100, now=NOW)


@pytest.mark.parametrize("generate", GENERATORS)
def test_global_random_state_is_left_alone(generate: Generator) -> None:
    import random

    random.seed(1)
    expected = random.random()
    random.seed(1)
    generate(50, now=NOW)
    assert random.random() == expected


@pytest.mark.parametrize("count", [0, 1, 37, COUNT])
@pytest.mark.parametrize(("generate", "prefix", "stamp", "fields"), KINDS)
def test_counts_ids_and_fields(
    generate: Generator, prefix: str, stamp: str, fields: set[str], count: int
) -> None:
    records = generate(count, now=NOW)
    assert len(records) == count
    ids = [record["id"] for record in records]
    assert len(set(ids)) == count
    assert ids == [f"{prefix}-{n:06d}" for n in range(1, count + 1)]
    for record in records:
        assert set(record) == fields


@pytest.mark.parametrize(("generate", "prefix", "stamp", "fields"), KINDS)
def test_timestamps_are_utc_and_within_the_last_seven_days(
    generate: Generator, prefix: str, stamp: str, fields: set[str]
) -> None:
    stamps = [record[stamp] for record in generate(COUNT, now=NOW)]
    assert stamps == sorted(stamps)
    for text in stamps:
        assert isinstance(text, str)
        assert TIMESTAMP.match(text), text
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert NOW - timedelta(days=7) < moment < NOW


def test_timestamps_follow_a_non_utc_now() -> None:
    beijing = timezone(timedelta(hours=8))
    local_now = NOW.astimezone(beijing)
    assert violation_captures(50, now=local_now) == violation_captures(50, now=NOW)


@pytest.mark.parametrize("generate", GENERATORS)
def test_locations_are_in_their_district_in_guangzhou(generate: Generator) -> None:
    for record in generate(COUNT, now=NOW):
        location = record["location"]
        assert isinstance(location, dict)
        assert set(location) == {"lat", "lon"}
        lat, lon = location["lat"], location["lon"]
        assert 22.5 <= lat <= 23.9
        assert 112.9 <= lon <= 114.1
        assert round(lat, 6) == lat
        assert round(lon, 6) == lon
        district = record["district"]
        assert isinstance(district, str)
        assert distance_km((lat, lon), CENTRES[district]) < 6.0


def test_every_district_appears(captures: list[dict[str, object]]) -> None:
    assert {record["district"] for record in captures} == set(CENTRES)


def test_plates_match_chinese_formats(captures: list[dict[str, object]]) -> None:
    plates = [record["plate"] for record in captures]
    for plate in plates:
        assert isinstance(plate, str)
        standard = PLATE.match(plate)
        assert standard or NEW_ENERGY_PLATE.match(plate), plate
        if standard:
            assert sum(char.isalpha() for char in plate[3:]) <= 2, plate
    distinct = set(plates)
    guangzhou = sum(plate.startswith("粤A") for plate in distinct) / len(distinct)
    new_energy = sum(len(plate) == 9 for plate in distinct) / len(distinct)
    out_of_province = [plate for plate in distinct if not plate.startswith("粤")]
    assert 0.65 < guangzhou < 0.9
    assert 0.03 < new_energy < 0.15
    assert out_of_province


def test_about_fifteen_percent_of_plates_repeat(captures: list[dict[str, object]]) -> None:
    seen: set[object] = set()
    repeats = 0
    for record in captures:
        repeats += record["plate"] in seen
        seen.add(record["plate"])
    assert 0.08 < repeats / len(captures) < 0.25


def test_speeds_fit_the_violation(captures: list[dict[str, object]]) -> None:
    kinds = set()
    for record in captures:
        speed, limit = record["speed_kmh"], record["speed_limit_kmh"]
        assert isinstance(speed, float)
        assert isinstance(limit, int)
        assert limit in (40, 50, 60, 80)
        assert round(speed, 1) == speed
        kinds.add(record["violation_type"])
        if record["violation_type"] == "speeding":
            assert speed > limit
        elif record["violation_type"] == "illegal_parking":
            assert speed == 0.0
        else:
            assert 0 < speed <= limit
    assert kinds == {
        "red_light",
        "bus_lane",
        "illegal_parking",
        "speeding",
        "wrong_way",
        "illegal_u_turn",
        "failure_to_yield_pedestrian",
    }


def test_violation_mix_is_realistic(captures: list[dict[str, object]]) -> None:
    def share(kind: str) -> float:
        return sum(record["violation_type"] == kind for record in captures) / len(captures)

    assert share("wrong_way") < share("red_light")
    assert share("wrong_way") < share("illegal_parking")
    assert share("red_light") > 0.15
    assert share("illegal_parking") > 0.15


def test_capture_details(captures: list[dict[str, object]]) -> None:
    vehicles = set()
    for record in captures:
        confidence = record["confidence"]
        assert isinstance(confidence, float)
        assert 0.70 <= confidence <= 0.995
        assert round(confidence, 3) == confidence
        assert re.match(r"^RT-\d{4}$", str(record["vehicle_id"]))
        vehicles.add(record["vehicle_id"])
        assert record["photo"] == f"captures/{record['id']}.jpg"
    assert 40 <= len(vehicles) <= 60


def test_near_miss_details(near_misses: list[dict[str, object]]) -> None:
    users = set()
    for record in near_misses:
        users.add(record["road_user"])
        distance = record["min_distance_m"]
        ttc = record["time_to_collision_s"]
        speed = record["vehicle_speed_kmh"]
        assert isinstance(distance, float)
        assert isinstance(ttc, float)
        assert isinstance(speed, float)
        assert 0.3 <= distance <= 3.0
        assert round(distance, 1) == distance
        assert 0.2 <= ttc <= 2.5
        assert round(ttc, 2) == ttc
        assert 0 < speed <= 80
        assert re.match(r"^RT-\d{4}$", str(record["vehicle_id"]))
        assert record["photo"] == f"near-misses/{record['id']}.jpg"
    assert users == {"pedestrian", "cyclist", "e_scooter"}


def test_ticket_details(tickets: list[dict[str, object]]) -> None:
    categories = set()
    statuses = set()
    for record in tickets:
        categories.add(record["category"])
        statuses.add(record["status"])
        assert PHONE.match(str(record["caller_phone"])), record["caller_phone"]
        description = record["description"]
        assert isinstance(description, str)
        assert " Road" in description or " Avenue" in description
        assert description.endswith(".")
        assert "{" not in description
    assert categories == {
        "pothole",
        "broken_signal",
        "illegal_parking",
        "blocked_sidewalk",
        "noise",
        "congestion",
        "missing_sign",
    }
    assert statuses == {"open", "assigned", "resolved"}


@pytest.mark.parametrize("generate", GENERATORS)
def test_negative_count_is_refused(generate: Generator) -> None:
    with pytest.raises(ValueError, match="count"):
        generate(-1, now=NOW)


@pytest.mark.parametrize("generate", GENERATORS)
def test_naive_now_is_refused(generate: Generator) -> None:
    with pytest.raises(ValueError, match="timezone"):
        generate(3, now=datetime(2026, 11, 28, 9, 30))
