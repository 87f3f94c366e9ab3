"""Synthetic records for the demo of a traffic data exchange in Guangzhou.

Three generators produce the data the demo's providers share:

    violation_captures       a robotaxi fleet's cameras catching traffic violations
    pedestrian_near_misses   close calls with pedestrians, cyclists and e-scooters
                             detected by the same fleet
    hotline_tickets          citizens' complaints about roads and traffic to the
                             city's 12345 hotline

Every record is synthetic. The districts and road names are real, their coordinates
are rough, and every plate, phone number, vehicle, photo and complaint is invented;
none of it describes a real person, vehicle or event.

The output is deterministic: each generator draws from its own `random.Random(seed)`
(never the global generator), so the same arguments give identical records. All
timestamps fall in the 7 days before `now`, weighted towards busy hours of the local
day (China Standard Time, UTC+8), and are written RFC 3339 in UTC without fractions,
e.g. `2026-11-27T08:15:02Z`. Records within one list are in time order and their
ids (`cap-000001`, `nm-000001`, `tkt-000001`) follow that order.
"""

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

WINDOW_SECONDS = 7 * 24 * 60 * 60
"""Records fall within this many seconds before `now`."""

_LOCAL_OFFSET = timedelta(hours=8)  # China Standard Time; no daylight saving.
_ROAD_JITTER_DEG = 0.0008  # ~90 m either side of a road's centre line.
_FLEET_SIZE = 60
_PLATE_DOT = "\u00b7"  # the middle dot printed after a plate's prefix
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are never used
_DIGITS = "0123456789"


class _Road(NamedTuple):
    """A stretch of a real road: its limit, rough end points and a few cross streets."""

    name: str
    speed_limit_kmh: int
    start: tuple[float, float]  # (lat, lon)
    end: tuple[float, float]
    cross_streets: tuple[str, ...]


_ROADS: dict[str, tuple[_Road, ...]] = {
    "Tianhe": (
        _Road(
            "Tianhe Road",
            50,
            (23.1335, 113.3150),
            (23.1375, 113.3420),
            ("Tiyu West Road", "Tiyu East Road", "Tianhe East Road"),
        ),
        _Road(
            "Huangpu Avenue",
            60,
            (23.1205, 113.3150),
            (23.1220, 113.3800),
            ("Zhujiang West Road", "Zhujiang East Road", "Tiyu East Road"),
        ),
        _Road(
            "Zhongshan Avenue",
            60,
            (23.1270, 113.3400),
            (23.1230, 113.4050),
            ("Keyun Road", "Chebei Road", "Huajing Road"),
        ),
        _Road(
            "Tianhe North Road",
            50,
            (23.1420, 113.3150),
            (23.1430, 113.3450),
            ("Tiyu East Road", "Linhe West Road", "Tianhe East Road"),
        ),
        _Road(
            "Tiyu East Road",
            40,
            (23.1470, 113.3290),
            (23.1210, 113.3290),
            ("Tianhe Road", "Tianhe North Road", "Huangpu Avenue"),
        ),
    ),
    "Yuexiu": (
        _Road(
            "Dongfeng Road",
            50,
            (23.1300, 113.2500),
            (23.1330, 113.2950),
            ("Jiefang North Road", "Xiaobei Road", "Renmin North Road"),
        ),
        _Road(
            "Huanshi Road",
            60,
            (23.1440, 113.2600),
            (23.1370, 113.3000),
            ("Jiefang North Road", "Taojin Road", "Shuiyin Road"),
        ),
        _Road(
            "Jiefang Road",
            50,
            (23.1480, 113.2665),
            (23.1170, 113.2660),
            ("Dongfeng Middle Road", "Zhongshan 5th Road", "Yide Road"),
        ),
        _Road(
            "Renmin Road",
            50,
            (23.1400, 113.2580),
            (23.1170, 113.2575),
            ("Zhongshan 6th Road", "Dongfeng West Road", "Yide Road"),
        ),
    ),
    "Haizhu": (
        _Road(
            "Xingang Road",
            60,
            (23.0990, 113.2850),
            (23.0985, 113.3550),
            ("Jiangnan Avenue", "Guangzhou Avenue South", "Chigang Road"),
        ),
        _Road(
            "Jiangnan Avenue",
            50,
            (23.1050, 113.2700),
            (23.0850, 113.2710),
            ("Xingang West Road", "Baogang Avenue", "Jiangnan West Road"),
        ),
        _Road(
            "Binjiang Road",
            50,
            (23.1110, 113.2900),
            (23.1090, 113.3200),
            ("Jiangnan Avenue North", "Guangzhou Avenue South"),
        ),
        _Road(
            "Guangzhou Avenue South",
            60,
            (23.1080, 113.3050),
            (23.0700, 113.3050),
            ("Xingang Middle Road", "Nanzhou Road", "Binjiang East Road"),
        ),
        _Road(
            "Nanzhou Road",
            60,
            (23.0760, 113.2900),
            (23.0740, 113.3300),
            ("Guangzhou Avenue South", "Gongye Avenue South"),
        ),
    ),
    "Liwan": (
        _Road(
            "Zhongshan 8th Road",
            50,
            (23.1270, 113.2320),
            (23.1260, 113.2480),
            ("Huangsha Avenue", "Longjin West Road"),
        ),
        _Road(
            "Huangsha Avenue",
            60,
            (23.1300, 113.2420),
            (23.1120, 113.2440),
            ("Zhongshan 8th Road", "Liuersan Road", "Dongfeng West Road"),
        ),
        _Road(
            "Kangwang Road",
            50,
            (23.1350, 113.2520),
            (23.1150, 113.2530),
            ("Zhongshan 7th Road", "Longjin Middle Road", "Liuersan Road"),
        ),
        _Road(
            "Fangcun Avenue",
            50,
            (23.0990, 113.2350),
            (23.0950, 113.2500),
            ("Huadi Avenue", "Hedong Road"),
        ),
    ),
    "Baiyun": (
        _Road(
            "Baiyun Avenue",
            60,
            (23.1600, 113.2760),
            (23.1900, 113.2790),
            ("Huangshi East Road", "Tonghe Road", "Guangyuan Middle Road"),
        ),
        _Road(
            "Jichang Road",
            60,
            (23.1500, 113.2620),
            (23.1850, 113.2620),
            ("Sanyuanli Avenue", "Huangshi West Road", "Guangyuan Middle Road"),
        ),
        _Road(
            "Guangyuan Middle Road",
            60,
            (23.1600, 113.2550),
            (23.1620, 113.3000),
            ("Jichang Road", "Baiyun Avenue", "Sanyuanli Avenue"),
        ),
        _Road(
            "Huangshi Road",
            60,
            (23.1850, 113.2500),
            (23.1850, 113.2900),
            ("Baiyun Avenue", "Jichang Road", "Tonghe Road"),
        ),
    ),
    "Panyu": (
        _Road(
            "Panyu Avenue",
            60,
            (22.9250, 113.3600),
            (22.9700, 113.3560),
            ("Qinghe East Road", "Xingnan Avenue", "Fuhua Road"),
        ),
        _Road(
            "Yingbin Road",
            80,
            (22.9250, 113.3780),
            (22.9700, 113.3720),
            ("Qinghe East Road", "Shiqiao Road", "Fuhua Road"),
        ),
        _Road(
            "Qinghe Road",
            50,
            (22.9420, 113.3600),
            (22.9400, 113.3950),
            ("Yingbin Road", "Panyu Avenue", "Donghuan Road"),
        ),
        _Road(
            "Fuhua Road",
            50,
            (22.9480, 113.3650),
            (22.9460, 113.3900),
            ("Qiaoxing Avenue", "Yingbin Road"),
        ),
    ),
    "Huangpu": (
        _Road(
            "Kaichuang Avenue",
            80,
            (23.1020, 113.4550),
            (23.1400, 113.4560),
            ("Huangpu East Road", "Kexue Avenue", "Xiangxue Avenue"),
        ),
        _Road(
            "Huangpu East Road",
            60,
            (23.1000, 113.4350),
            (23.1050, 113.4800),
            ("Kaichuang Avenue", "Gangwan Road", "Dashadi East Road"),
        ),
        _Road(
            "Gangwan Road",
            50,
            (23.0950, 113.4300),
            (23.0960, 113.4500),
            ("Huangpu East Road", "Dashadi West Road"),
        ),
        _Road(
            "Dashadi East Road",
            50,
            (23.1070, 113.4450),
            (23.1080, 113.4700),
            ("Huangpu East Road", "Gangwan Road"),
        ),
    ),
}

# Where the fleet drives (and the city calls from), as relative weights.
_DISTRICT_WEIGHTS: dict[str, int] = {
    "Tianhe": 24,
    "Yuexiu": 14,
    "Haizhu": 16,
    "Liwan": 10,
    "Baiyun": 12,
    "Panyu": 12,
    "Huangpu": 12,
}

# Relative activity by local hour (0-23): quiet nights, morning and evening peaks.
_TRAFFIC_BY_HOUR: tuple[float, ...] = (
    *(0.25, 0.15, 0.1, 0.1, 0.15, 0.3),  # 00-05
    *(0.6, 1.0, 1.0, 0.8, 0.65, 0.65),  # 06-11
    *(0.7, 0.65, 0.65, 0.7, 0.85, 1.0),  # 12-17
    *(1.0, 0.85, 0.7, 0.6, 0.5, 0.35),  # 18-23
)
_CALLS_BY_HOUR: tuple[float, ...] = (
    *(0.1, 0.05, 0.05, 0.05, 0.05, 0.1),  # 00-05
    *(0.25, 0.5, 0.8, 1.0, 1.0, 0.9),  # 06-11
    *(0.7, 0.8, 0.9, 0.9, 0.85, 0.8),  # 12-17
    *(0.7, 0.65, 0.6, 0.5, 0.35, 0.2),  # 18-23
)

_VIOLATION_WEIGHTS: dict[str, int] = {
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

# Plate prefixes: Guangzhou first, then elsewhere in Guangdong, then other provinces.
_PLATE_PREFIX_WEIGHTS: dict[str, int] = {
    "粤A": 780,
    "粤B": 45,  # Shenzhen
    "粤E": 35,  # Foshan
    "粤S": 30,  # Dongguan
    "粤T": 20,  # Zhongshan
    "粤R": 20,  # Qingyuan
    "粤C": 15,  # Zhuhai
    "湘A": 20,  # Changsha, Hunan
    "桂A": 15,  # Nanning, Guangxi
}
_NEW_ENERGY_SHARE = 0.08
_REPEAT_SHARE = 0.15

_ROAD_USER_WEIGHTS: dict[str, int] = {"pedestrian": 50, "e_scooter": 30, "cyclist": 20}

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


def violation_captures(count: int, *, seed: int = 7, now: datetime) -> list[dict[str, object]]:
    """Return `count` traffic violations captured by a robotaxi fleet's cameras.

    Fields: id, captured_at, district, road, location, violation_type, plate,
    speed_kmh, speed_limit_kmh, confidence, vehicle_id, photo. About 15% of the
    captures reuse an earlier capture's plate (repeat offenders).
    """
    end = _validate(count, now)
    rng = random.Random(seed)
    times = _timestamps(rng, count, end, _TRAFFIC_BY_HOUR)
    plates = _PlateBook(rng)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        record_id = f"cap-{number:06d}"
        district, road = _pick_road(rng)
        violation = _weighted(rng, _VIOLATION_WEIGHTS)
        records.append(
            {
                "id": record_id,
                "captured_at": _rfc3339(moment),
                "district": district,
                "road": road.name,
                "location": _point_on(rng, road),
                "violation_type": violation,
                "plate": plates.next_plate(),
                "speed_kmh": _violation_speed(rng, violation, road.speed_limit_kmh),
                "speed_limit_kmh": road.speed_limit_kmh,
                "confidence": round(rng.triangular(0.70, 0.995, 0.95), 3),
                "vehicle_id": _vehicle_id(rng),
                "photo": f"captures/{record_id}.jpg",
            }
        )
    return records


def pedestrian_near_misses(count: int, *, seed: int = 11, now: datetime) -> list[dict[str, object]]:
    """Return `count` close calls between the fleet and people on foot or two wheels.

    Fields: id, occurred_at, district, road, location, road_user, min_distance_m,
    vehicle_speed_kmh, time_to_collision_s, vehicle_id, photo.
    """
    end = _validate(count, now)
    rng = random.Random(seed)
    times = _timestamps(rng, count, end, _TRAFFIC_BY_HOUR)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        record_id = f"nm-{number:06d}"
        district, road = _pick_road(rng)
        distance = round(rng.uniform(0.3, 3.0), 1)
        speed = round(rng.uniform(8.0, road.speed_limit_kmh * 0.9), 1)
        records.append(
            {
                "id": record_id,
                "occurred_at": _rfc3339(moment),
                "district": district,
                "road": road.name,
                "location": _point_on(rng, road),
                "road_user": _weighted(rng, _ROAD_USER_WEIGHTS),
                "min_distance_m": distance,
                "vehicle_speed_kmh": speed,
                "time_to_collision_s": _time_to_collision(rng, distance, speed),
                "vehicle_id": _vehicle_id(rng),
                "photo": f"near-misses/{record_id}.jpg",
            }
        )
    return records


def hotline_tickets(count: int, *, seed: int = 13, now: datetime) -> list[dict[str, object]]:
    """Return `count` complaints about roads and traffic made to the 12345 hotline.

    Fields: id, received_at, district, category, description, caller_phone,
    location, status. Older tickets are more likely to be resolved.
    """
    end = _validate(count, now)
    rng = random.Random(seed)
    times = _timestamps(rng, count, end, _CALLS_BY_HOUR)
    records: list[dict[str, object]] = []
    for number, moment in enumerate(times, start=1):
        district, road = _pick_road(rng)
        category = _weighted(rng, _CATEGORY_WEIGHTS)
        records.append(
            {
                "id": f"tkt-{number:06d}",
                "received_at": _rfc3339(moment),
                "district": district,
                "category": category,
                "description": _description(rng, category, road),
                "caller_phone": _mobile_number(rng),
                "location": _point_on(rng, road),
                "status": _ticket_status(rng, end - moment),
            }
        )
    return records


def _validate(count: int, now: datetime) -> datetime:
    """Check the arguments every generator takes; return `now` in UTC."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _timestamps(
    rng: random.Random, count: int, end: datetime, by_hour: Sequence[float]
) -> list[datetime]:
    """Draw `count` whole-second moments in the 7 days before `end`, in time order.

    Moments are weighted by the local hour of day (rejection sampling), and each
    lies strictly after `end - 7 days` and strictly before `end`.
    """
    top = max(by_hour)
    whole = end.replace(microsecond=0)
    moments: list[datetime] = []
    while len(moments) < count:
        moment = whole - timedelta(seconds=rng.randint(1, WINDOW_SECONDS - 1))
        if rng.random() * top < by_hour[(moment + _LOCAL_OFFSET).hour]:
            moments.append(moment)
    return sorted(moments)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _pick_road(rng: random.Random) -> tuple[str, _Road]:
    district = _weighted(rng, _DISTRICT_WEIGHTS)
    return district, rng.choice(_ROADS[district])


def _point_on(rng: random.Random, road: _Road) -> dict[str, float]:
    """A point along `road`, a little to either side of its centre line."""
    along = rng.random()
    lat = road.start[0] + along * (road.end[0] - road.start[0])
    lon = road.start[1] + along * (road.end[1] - road.start[1])
    lat += rng.uniform(-_ROAD_JITTER_DEG, _ROAD_JITTER_DEG)
    lon += rng.uniform(-_ROAD_JITTER_DEG, _ROAD_JITTER_DEG)
    return {"lat": round(lat, 6), "lon": round(lon, 6)}


def _vehicle_id(rng: random.Random) -> str:
    return f"RT-{rng.randint(1, _FLEET_SIZE):04d}"


def _violation_speed(rng: random.Random, violation: str, limit: int) -> float:
    """The vehicle's speed: above the limit when speeding, 0 when parked."""
    if violation == "illegal_parking":
        return 0.0
    if violation == "speeding":
        return round(limit * rng.uniform(1.1, 1.5), 1)
    low, high = _VIOLATION_SPEED_RANGE[violation]
    return round(rng.uniform(low, min(high, limit)), 1)


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


class _PlateBook:
    """Issues plates; about 15% are an earlier plate seen again (repeat offenders)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: list[str] = []
        self._offenders: list[str] = []

    def next_plate(self) -> str:
        if self._seen and self._rng.random() < _REPEAT_SHARE:
            return self._repeat()
        plate = _new_plate(self._rng)
        self._seen.append(plate)
        return plate

    def _repeat(self) -> str:
        """Mostly a known offender again; sometimes a first-time repeat."""
        if self._offenders and self._rng.random() < 0.6:
            return self._rng.choice(self._offenders)
        plate = self._rng.choice(self._seen)
        if plate not in self._offenders:
            self._offenders.append(plate)
        return plate


def _new_plate(rng: random.Random) -> str:
    """A plate such as `粤A·3K7Q2`, or a new-energy plate such as `粤A·D12345`."""
    prefix = _weighted(rng, _PLATE_PREFIX_WEIGHTS)
    serial = _new_energy_serial(rng) if rng.random() < _NEW_ENERGY_SHARE else _serial(rng)
    return f"{prefix}{_PLATE_DOT}{serial}"


def _serial(rng: random.Random) -> str:
    """Five digits and letters (no I or O), at most two of them letters."""
    letters = rng.choices((0, 1, 2), weights=(50, 35, 15))[0]
    chars = [rng.choice(_DIGITS) for _ in range(5)]
    for position in rng.sample(range(5), letters):
        chars[position] = rng.choice(_PLATE_LETTERS)
    return "".join(chars)


def _new_energy_serial(rng: random.Random) -> str:
    """D (battery) or F (hybrid), a digit or letter, then four digits."""
    second = rng.choice(_DIGITS) if rng.random() < 0.7 else rng.choice(_PLATE_LETTERS)
    return rng.choice("DF") + second + "".join(rng.choices(_DIGITS, k=4))


def _mobile_number(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + "".join(rng.choices(_DIGITS, k=8))


def _description(rng: random.Random, category: str, road: _Road) -> str:
    template = rng.choice(_TEMPLATES[category])
    return template.format(road=road.name, cross=rng.choice(road.cross_streets))


def _ticket_status(rng: random.Random, age: timedelta) -> str:
    """Fresh tickets are mostly open; older ones mostly resolved."""
    hours = age.total_seconds() / 3600
    if hours < 6:
        weights = (60, 35, 5)
    elif hours < 48:
        weights = (25, 45, 30)
    else:
        weights = (8, 27, 65)
    return rng.choices(("open", "assigned", "resolved"), weights=weights)[0]
