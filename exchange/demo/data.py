"""The city's records for the demo: citizens' complaints to the 12345 hotline.

`hotline_tickets` gives a week of complaints about roads and traffic, on the
fleet's map of Guangzhou (`connectors.fleet.geography`) and over the same backdated
week (`connectors.fleet.history`); the fleet's own records come from
`connectors.fleet`. Every ticket is synthetic: the districts and roads are real,
every phone number and complaint is invented. Deterministic: each call draws from
its own `random.Random(seed)`. Tickets are in time order, ids `tkt-000001` onwards.
"""

import random
import string
from datetime import datetime, timedelta

from connectors.fleet.draws import weighted
from connectors.fleet.geography import Road, pick_road, point_on
from connectors.fleet.history import rfc3339, timestamps, window_end

# Relative calls by local hour (0-23): few at night, most in office hours.
_CALLS_BY_HOUR: tuple[float, ...] = (
    *(0.1, 0.05, 0.05, 0.05, 0.05, 0.1),  # 00-05
    *(0.25, 0.5, 0.8, 1.0, 1.0, 0.9),  # 06-11
    *(0.7, 0.8, 0.9, 0.9, 0.85, 0.8),  # 12-17
    *(0.7, 0.65, 0.6, 0.5, 0.35, 0.2),  # 18-23
)

_MOBILE_PREFIXES: tuple[str, ...] = (
    *("134", "135", "136", "137", "138", "139"),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("180", "181", "182", "183", "185", "186", "187", "188", "189"),
    *("191", "195", "198", "199"),
)

_CATEGORY_WEIGHTS: dict[str, int] = {
    "illegal_parking": 22,
    "congestion": 18,
    "pothole": 15,
    "blocked_sidewalk": 14,
    "broken_signal": 12,
    "noise": 11,
    "missing_sign": 8,
}

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "pothole": (
        "Large pothole in the right lane of {road} near {cross}; scooters swerve around it.",
        "The road surface on {road} has sunk near the {cross} junction after the rain.",
        "A deep pothole on {road} close to {cross} burst my tyre this morning.",
    ),
    "broken_signal": (
        "Traffic light at {road} and {cross} has been stuck on red since morning.",
        "Pedestrian signal at {road} and {cross} is dark; people are crossing blind.",
        "Signals at {road} and {cross} keep flashing yellow and nobody slows down.",
    ),
    "illegal_parking": (
        "Cars parked on the pavement along {road} near {cross} every evening.",
        "Delivery vans double-park on {road} near {cross} and block a lane at lunchtime.",
        "Private cars sit in the bus lane on {road} near {cross} all afternoon.",
    ),
    "blocked_sidewalk": (
        "Shared bikes are piled across the sidewalk on {road} near {cross}.",
        "Construction hoarding on {road} near {cross} closes the sidewalk with no detour.",
        "Street stalls on {road} by {cross} leave no room to walk on the pavement.",
    ),
    "noise": (
        "Night-time roadworks on {road} near {cross} carry on past 11 pm.",
        "Modified motorbikes race along {road} near {cross} after midnight.",
        "Trucks honk non-stop at {road} and {cross} from 5 am.",
    ),
    "congestion": (
        "Heavy congestion on {road} towards {cross} every morning; the green is too short.",
        "Traffic backs up on {road} near {cross} since a lane was closed without notice.",
        "Ride-hailing cars stopping at {road} and {cross} cause long queues in the evening.",
    ),
    "missing_sign": (
        "The speed limit sign on {road} near {cross} has been knocked down.",
        "No lane arrows on {road} approaching {cross}; drivers keep cutting across.",
        "The no-U-turn sign at {road} and {cross} went missing after the roadworks.",
    ),
}


def hotline_tickets(count: int, *, seed: int = 13, now: datetime) -> list[dict[str, object]]:
    """Return `count` complaints about roads and traffic made to the 12345 hotline.

    Fields: id, received_at, district, category, description, caller_phone,
    location, status. Older tickets are more likely to be resolved. Raises
    `ValueError` for a negative count or a naive `now`.
    """
    end = window_end(count, now)
    rng = random.Random(seed)
    times = timestamps(rng, count, end, _CALLS_BY_HOUR)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        district, road = pick_road(rng)
        category = weighted(rng, _CATEGORY_WEIGHTS)
        records.append(
            {
                "id": f"tkt-{number:06d}",
                "received_at": rfc3339(moment),
                "district": district,
                "category": category,
                "description": _description(rng, category, road),
                "caller_phone": mobile_number(rng),
                "location": point_on(rng, road),
                "status": ticket_status(rng, end - moment),
            }
        )
    return records


def mobile_number(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + "".join(rng.choices(string.digits, k=8))


def _description(rng: random.Random, category: str, road: Road) -> str:
    template = rng.choice(_TEMPLATES[category])
    return template.format(road=road.name, cross=rng.choice(road.cross_streets))


def ticket_status(rng: random.Random, age: timedelta) -> str:
    """Fresh tickets are mostly open; older ones mostly resolved."""
    hours = age.total_seconds() / 3600
    if hours < 6:
        weights = (60, 35, 5)
    elif hours < 48:
        weights = (25, 45, 30)
    else:
        weights = (8, 27, 65)
    return rng.choices(("open", "assigned", "resolved"), weights=weights)[0]
