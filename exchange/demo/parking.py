"""Citizens' reports to the 12345 hotline of illegally parked vehicles, by plate.

`illegal_parking_reports` gives a week of reports over the same backdated week as
the fleet's records (`connectors.fleet.history`). Most name a vehicle that the
fleet's cameras caught parking illegally that week, in `violation_captures(captures,
now=now)` as the demo publishes it, and on the road where it was caught: linking the
two products by plate finds records in both. Callers type a plate their own way
("粤A 3K7Q2", "粤a3k7q2", "粤A-3K7Q2" for the cameras' "粤A·3K7Q2"), so only the
normalised plates (`exchange.linkage.keys.plate`) meet; about one report in ten
names a plate no camera caught.

Every report is synthetic: the districts and roads are real, every plate, phone
number and complaint is invented. Deterministic: each call draws from its own
`random.Random(seed)`. Reports are in time order, ids `park-000001` onwards.
"""

import random
from datetime import datetime

from connectors.fleet import violation_captures
from connectors.fleet.draws import weighted
from connectors.fleet.geography import ROADS, Road, pick_road, point_on
from connectors.fleet.history import rfc3339, timestamps, window_end
from connectors.fleet.plates import PLATE_DOT, new_plate
from exchange.demo.data import mobile_number, ticket_status
from exchange.linkage import keys

CAPTURED_SHARE = 0.9
"""About this share of reports name a plate the fleet caught parking illegally."""

# Relative reports by local hour (0-23): the morning commute, and the evening, when
# residents come home to a blocked gate or a car on the pavement.
_REPORTS_BY_HOUR: tuple[float, ...] = (
    *(0.15, 0.1, 0.05, 0.05, 0.05, 0.1),  # 00-05
    *(0.3, 0.7, 0.9, 0.8, 0.6, 0.55),  # 06-11
    *(0.6, 0.55, 0.5, 0.5, 0.55, 0.7),  # 12-17
    *(0.9, 1.0, 0.95, 0.8, 0.55, 0.3),  # 18-23
)

# How callers write a plate the cameras read as "粤A·3K7Q2".
_SPELLINGS: dict[str, int] = {"printed": 20, "joined": 45, "spaced": 20, "lower": 10, "dashed": 5}

_VEHICLES = (
    *("white SUV", "black sedan", "silver car", "delivery van", "red hatchback"),
    *("grey MPV", "small truck", "blue sedan", "white van", "black SUV"),
)

_TEMPLATES = (
    "A {vehicle} has been parked on the pavement of {road} near {cross} since this morning.",
    "A {vehicle} is blocking the fire lane on {road} by {cross}.",
    "A {vehicle} is double-parked on {road} near {cross} and has blocked a lane for an hour.",
    "A {vehicle} is parked in the bus lane on {road} near {cross} again.",
    "A {vehicle} is blocking the gate of our residential compound on {road} near {cross}.",
    "A {vehicle} has been left on the zebra crossing at {road} and {cross}.",
)

_ROADS_BY_NAME: dict[str, Road] = {road.name: road for roads in ROADS.values() for road in roads}


def illegal_parking_reports(
    count: int, *, seed: int = 17, now: datetime, captures: int = 3000
) -> list[dict[str, object]]:
    """Return `count` reports of illegally parked vehicles made to the 12345 hotline.

    `captures` is the count of the fleet's published violation captures whose
    illegally parked plates most reports name. Fields: id, reported_at, district,
    road, plate, description, caller_phone, location, status. Raises `ValueError`
    for a negative count or captures, or a naive `now`.
    """
    end = window_end(count, now)
    week = violation_captures(captures, now=now)
    parked = [capture for capture in week if capture["violation_type"] == "illegal_parking"]
    caught = {keys.plate(str(capture["plate"])) for capture in week}
    rng = random.Random(seed)
    times = timestamps(rng, count, end, _REPORTS_BY_HOUR)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        if parked and rng.random() < CAPTURED_SHARE:
            capture = rng.choice(parked)
            district, road = str(capture["district"]), _ROADS_BY_NAME[str(capture["road"])]
            plate = str(capture["plate"])
        else:
            district, road = pick_road(rng)
            plate = _uncaught_plate(rng, caught)
        records.append(
            {
                "id": f"park-{number:06d}",
                "reported_at": rfc3339(moment),
                "district": district,
                "road": road.name,
                "plate": _as_typed(rng, plate),
                "description": _description(rng, road),
                "caller_phone": mobile_number(rng),
                "location": point_on(rng, road),
                "status": ticket_status(rng, end - moment),
            }
        )
    return records


def _uncaught_plate(rng: random.Random, caught: set[str]) -> str:
    """A new plate whose key is none of `caught`."""
    while keys.plate(plate := new_plate(rng)) in caught:
        pass
    return plate


def _as_typed(rng: random.Random, plate: str) -> str:
    """`plate` ("粤A·3K7Q2") as a caller wrote it down."""
    prefix, serial = plate.split(PLATE_DOT)
    spelling = weighted(rng, _SPELLINGS)
    if spelling == "printed":
        return plate
    if spelling == "spaced":
        return f"{prefix} {serial}"
    if spelling == "dashed":
        return f"{prefix}-{serial}"
    if spelling == "lower":
        return f"{prefix}{serial}".lower()
    return prefix + serial


def _description(rng: random.Random, road: Road) -> str:
    template = rng.choice(_TEMPLATES)
    vehicle = rng.choice(_VEHICLES)
    return template.format(vehicle=vehicle, road=road.name, cross=rng.choice(road.cross_streets))
