"""What the fleet's cameras and sensors record: violations and near misses.

The backdated generators give a week of history for the demo:

    violation_captures       traffic violations caught by the robotaxis' cameras
    pedestrian_near_misses   close calls with pedestrians, cyclists and e-scooters

Every record is synthetic: the districts and roads are real (see `geography`),
every plate, vehicle and photo is invented. The output is deterministic: each call
draws from its own `random.Random(seed)`, so the same arguments give identical
records. Timestamps are as `history` describes; records within one list are in
time order and their ids (`cap-000001`, `nm-000001`) follow that order.

`violation_type`, `violation_speed` and `confidence` are the draws a live capture
(`Fleet`) shares with the backdated ones.
"""

import random
from datetime import datetime

from connectors.fleet.draws import weighted
from connectors.fleet.geography import pick_road, point_on
from connectors.fleet.history import TRAFFIC_BY_HOUR, rfc3339, timestamps, window_end
from connectors.fleet.plates import PlateBook

BACKDATED_FLEET_SIZE = 60
"""Robotaxis RT-0001 to RT-0060 made the week's records."""

VIOLATION_WEIGHTS: dict[str, int] = {
    "red_light": 26,
    "illegal_parking": 28,
    "bus_lane": 14,
    "speeding": 12,
    "failure_to_yield_pedestrian": 10,
    "illegal_u_turn": 7,
    "wrong_way": 3,
}

# Plausible speeds (km/h) for violations other than speeding and parking.
_VIOLATION_SPEED_RANGE: dict[str, tuple[float, float]] = {
    "red_light": (15.0, 60.0),
    "bus_lane": (10.0, 55.0),
    "failure_to_yield_pedestrian": (8.0, 40.0),
    "illegal_u_turn": (5.0, 25.0),
    "wrong_way": (8.0, 35.0),
}

_ROAD_USER_WEIGHTS: dict[str, int] = {"pedestrian": 50, "e_scooter": 30, "cyclist": 20}


def violation_captures(count: int, *, seed: int = 7, now: datetime) -> list[dict[str, object]]:
    """Return `count` traffic violations captured by a robotaxi fleet's cameras in the
    week before `now`.

    Fields: id, captured_at, district, road, location, violation_type, plate,
    speed_kmh, speed_limit_kmh, confidence, vehicle_id, photo. About 15% of the
    captures reuse an earlier capture's plate (repeat offenders). Raises
    `ValueError` for a negative count or a naive `now`.
    """
    end = window_end(count, now)
    rng = random.Random(seed)
    times = timestamps(rng, count, end, TRAFFIC_BY_HOUR)
    plates = PlateBook(rng)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        record_id = f"cap-{number:06d}"
        district, road = pick_road(rng)
        kind = violation_type(rng)
        records.append(
            {
                "id": record_id,
                "captured_at": rfc3339(moment),
                "district": district,
                "road": road.name,
                "location": point_on(rng, road),
                "violation_type": kind,
                "plate": plates.next_plate(),
                "speed_kmh": violation_speed(rng, kind, road.speed_limit_kmh),
                "speed_limit_kmh": road.speed_limit_kmh,
                "confidence": confidence(rng),
                "vehicle_id": _backdated_vehicle(rng),
                "photo": f"captures/{record_id}.jpg",
            }
        )
    return records


def pedestrian_near_misses(count: int, *, seed: int = 11, now: datetime) -> list[dict[str, object]]:
    """Return `count` close calls between the fleet and people on foot or two wheels
    in the week before `now`.

    Fields: id, occurred_at, district, road, location, road_user, min_distance_m,
    vehicle_speed_kmh, time_to_collision_s, vehicle_id, photo. Raises `ValueError`
    for a negative count or a naive `now`.
    """
    end = window_end(count, now)
    rng = random.Random(seed)
    times = timestamps(rng, count, end, TRAFFIC_BY_HOUR)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        record_id = f"nm-{number:06d}"
        district, road = pick_road(rng)
        distance = round(rng.uniform(0.3, 3.0), 1)
        speed = round(rng.uniform(8.0, road.speed_limit_kmh * 0.9), 1)
        records.append(
            {
                "id": record_id,
                "occurred_at": rfc3339(moment),
                "district": district,
                "road": road.name,
                "location": point_on(rng, road),
                "road_user": weighted(rng, _ROAD_USER_WEIGHTS),
                "min_distance_m": distance,
                "vehicle_speed_kmh": speed,
                "time_to_collision_s": _time_to_collision(rng, distance, speed),
                "vehicle_id": _backdated_vehicle(rng),
                "photo": f"near-misses/{record_id}.jpg",
            }
        )
    return records


def violation_type(rng: random.Random) -> str:
    """A violation type, in the mix the fleet's cameras see."""
    return weighted(rng, VIOLATION_WEIGHTS)


def violation_speed(rng: random.Random, violation: str, limit: int) -> float:
    """The violator's speed: above the limit when speeding, 0 when parked."""
    if violation == "illegal_parking":
        return 0.0
    if violation == "speeding":
        return round(limit * rng.uniform(1.1, 1.5), 1)
    low, high = _VIOLATION_SPEED_RANGE[violation]
    return round(rng.uniform(low, min(high, limit)), 1)


def confidence(rng: random.Random) -> float:
    """The camera's confidence in its reading, mostly high."""
    return round(rng.triangular(0.70, 0.995, 0.95), 3)


def _backdated_vehicle(rng: random.Random) -> str:
    return f"RT-{rng.randint(1, BACKDATED_FLEET_SIZE):04d}"


def _time_to_collision(rng: random.Random, distance_m: float, speed_kmh: float) -> float:
    """Seconds to contact at the closing speed, within the detector's 0.2-2.5 s band.

    The closing speed is a share (5-60%) of the vehicle's speed, narrowed so that the
    result lands in the band whenever the distance and speed allow it.
    """
    speed_ms = speed_kmh / 3.6
    low = max(distance_m / 2.5, 0.05 * speed_ms)
    high = min(distance_m / 0.2, 0.6 * speed_ms)
    closing_ms = rng.uniform(low, high) if low <= high else low
    return round(min(2.5, max(0.2, distance_m / closing_ms)), 2)
