"""Where the fleet drives: real Guangzhou districts and roads, with rough coordinates.

Each district has a few real roads, each a straight stretch between two rough end
points `(lat, lon)` with its speed limit and some of its cross streets. The
coordinates are approximate; nothing here is surveyed. The geometry is local and
flat (an equirectangular projection about the first point), accurate to a fraction
of a percent over the distances within a city.
"""

import math
import random
from typing import NamedTuple

from connectors.fleet.draws import weighted

Point = tuple[float, float]
"""(lat, lon) in degrees."""

BOUNDS = ((22.5, 23.9), (112.9, 114.1))
"""Guangzhou's rough bounding box: ((lat min, lat max), (lon min, lon max))."""

_ROAD_JITTER_DEG = 0.0008  # ~90 m either side of a road's centre line

_METRES_PER_DEGREE = 111_320.0


class Road(NamedTuple):
    """A stretch of a real road: its limit, rough end points and a few cross streets."""

    name: str
    speed_limit_kmh: int
    start: Point
    end: Point
    cross_streets: tuple[str, ...]


ROADS: dict[str, tuple[Road, ...]] = {
    "Tianhe": (
        Road(
            "Tianhe Road",
            50,
            (23.1335, 113.3150),
            (23.1375, 113.3420),
            ("Tiyu West Road", "Tiyu East Road", "Tianhe East Road"),
        ),
        Road(
            "Huangpu Avenue",
            60,
            (23.1205, 113.3150),
            (23.1220, 113.3800),
            ("Zhujiang West Road", "Zhujiang East Road", "Tiyu East Road"),
        ),
        Road(
            "Zhongshan Avenue",
            60,
            (23.1270, 113.3400),
            (23.1230, 113.4050),
            ("Keyun Road", "Chebei Road", "Huajing Road"),
        ),
        Road(
            "Tianhe North Road",
            50,
            (23.1420, 113.3150),
            (23.1430, 113.3450),
            ("Tiyu East Road", "Linhe West Road", "Tianhe East Road"),
        ),
        Road(
            "Tiyu East Road",
            40,
            (23.1470, 113.3290),
            (23.1210, 113.3290),
            ("Tianhe Road", "Tianhe North Road", "Huangpu Avenue"),
        ),
    ),
    "Yuexiu": (
        Road(
            "Dongfeng Road",
            50,
            (23.1300, 113.2500),
            (23.1330, 113.2950),
            ("Jiefang North Road", "Xiaobei Road", "Renmin North Road"),
        ),
        Road(
            "Huanshi Road",
            60,
            (23.1440, 113.2600),
            (23.1370, 113.3000),
            ("Jiefang North Road", "Taojin Road", "Shuiyin Road"),
        ),
        Road(
            "Jiefang Road",
            50,
            (23.1480, 113.2665),
            (23.1170, 113.2660),
            ("Dongfeng Middle Road", "Zhongshan 5th Road", "Yide Road"),
        ),
        Road(
            "Renmin Road",
            50,
            (23.1400, 113.2580),
            (23.1170, 113.2575),
            ("Zhongshan 6th Road", "Dongfeng West Road", "Yide Road"),
        ),
    ),
    "Haizhu": (
        Road(
            "Xingang Road",
            60,
            (23.0990, 113.2850),
            (23.0985, 113.3550),
            ("Jiangnan Avenue", "Guangzhou Avenue South", "Chigang Road"),
        ),
        Road(
            "Jiangnan Avenue",
            50,
            (23.1050, 113.2700),
            (23.0850, 113.2710),
            ("Xingang West Road", "Baogang Avenue", "Jiangnan West Road"),
        ),
        Road(
            "Binjiang Road",
            50,
            (23.1110, 113.2900),
            (23.1090, 113.3200),
            ("Jiangnan Avenue North", "Guangzhou Avenue South"),
        ),
        Road(
            "Guangzhou Avenue South",
            60,
            (23.1080, 113.3050),
            (23.0700, 113.3050),
            ("Xingang Middle Road", "Nanzhou Road", "Binjiang East Road"),
        ),
        Road(
            "Nanzhou Road",
            60,
            (23.0760, 113.2900),
            (23.0740, 113.3300),
            ("Guangzhou Avenue South", "Gongye Avenue South"),
        ),
    ),
    "Liwan": (
        Road(
            "Zhongshan 8th Road",
            50,
            (23.1270, 113.2320),
            (23.1260, 113.2480),
            ("Huangsha Avenue", "Longjin West Road"),
        ),
        Road(
            "Huangsha Avenue",
            60,
            (23.1300, 113.2420),
            (23.1120, 113.2440),
            ("Zhongshan 8th Road", "Liuersan Road", "Dongfeng West Road"),
        ),
        Road(
            "Kangwang Road",
            50,
            (23.1350, 113.2520),
            (23.1150, 113.2530),
            ("Zhongshan 7th Road", "Longjin Middle Road", "Liuersan Road"),
        ),
        Road(
            "Fangcun Avenue",
            50,
            (23.0990, 113.2350),
            (23.0950, 113.2500),
            ("Huadi Avenue", "Hedong Road"),
        ),
    ),
    "Baiyun": (
        Road(
            "Baiyun Avenue",
            60,
            (23.1600, 113.2760),
            (23.1900, 113.2790),
            ("Huangshi East Road", "Tonghe Road", "Guangyuan Middle Road"),
        ),
        Road(
            "Jichang Road",
            60,
            (23.1500, 113.2620),
            (23.1850, 113.2620),
            ("Sanyuanli Avenue", "Huangshi West Road", "Guangyuan Middle Road"),
        ),
        Road(
            "Guangyuan Middle Road",
            60,
            (23.1600, 113.2550),
            (23.1620, 113.3000),
            ("Jichang Road", "Baiyun Avenue", "Sanyuanli Avenue"),
        ),
        Road(
            "Huangshi Road",
            60,
            (23.1850, 113.2500),
            (23.1850, 113.2900),
            ("Baiyun Avenue", "Jichang Road", "Tonghe Road"),
        ),
    ),
    "Panyu": (
        Road(
            "Panyu Avenue",
            60,
            (22.9250, 113.3600),
            (22.9700, 113.3560),
            ("Qinghe East Road", "Xingnan Avenue", "Fuhua Road"),
        ),
        Road(
            "Yingbin Road",
            80,
            (22.9250, 113.3780),
            (22.9700, 113.3720),
            ("Qinghe East Road", "Shiqiao Road", "Fuhua Road"),
        ),
        Road(
            "Qinghe Road",
            50,
            (22.9420, 113.3600),
            (22.9400, 113.3950),
            ("Yingbin Road", "Panyu Avenue", "Donghuan Road"),
        ),
        Road(
            "Fuhua Road",
            50,
            (22.9480, 113.3650),
            (22.9460, 113.3900),
            ("Qiaoxing Avenue", "Yingbin Road"),
        ),
    ),
    "Huangpu": (
        Road(
            "Kaichuang Avenue",
            80,
            (23.1020, 113.4550),
            (23.1400, 113.4560),
            ("Huangpu East Road", "Kexue Avenue", "Xiangxue Avenue"),
        ),
        Road(
            "Huangpu East Road",
            60,
            (23.1000, 113.4350),
            (23.1050, 113.4800),
            ("Kaichuang Avenue", "Gangwan Road", "Dashadi East Road"),
        ),
        Road(
            "Gangwan Road",
            50,
            (23.0950, 113.4300),
            (23.0960, 113.4500),
            ("Huangpu East Road", "Dashadi West Road"),
        ),
        Road(
            "Dashadi East Road",
            50,
            (23.1070, 113.4450),
            (23.1080, 113.4700),
            ("Huangpu East Road", "Gangwan Road"),
        ),
    ),
}

# Where the fleet drives (and the city calls from), as relative weights.
DISTRICT_WEIGHTS: dict[str, int] = {
    "Tianhe": 24,
    "Yuexiu": 14,
    "Haizhu": 16,
    "Liwan": 10,
    "Baiyun": 12,
    "Panyu": 12,
    "Huangpu": 12,
}

# Districts that share a border (with a road or a bridge between them).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "Tianhe": ("Yuexiu", "Haizhu", "Baiyun", "Huangpu"),
    "Yuexiu": ("Tianhe", "Liwan", "Haizhu", "Baiyun"),
    "Haizhu": ("Yuexiu", "Liwan", "Tianhe", "Huangpu", "Panyu"),
    "Liwan": ("Yuexiu", "Haizhu", "Baiyun"),
    "Baiyun": ("Yuexiu", "Liwan", "Tianhe", "Huangpu"),
    "Panyu": ("Haizhu", "Huangpu"),
    "Huangpu": ("Tianhe", "Haizhu", "Baiyun", "Panyu"),
}

ROAD_NAMES = frozenset(road.name for roads in ROADS.values() for road in roads)


def pick_road(rng: random.Random) -> tuple[str, Road]:
    """A district, by how much the fleet drives there, and one of its roads."""
    district = weighted(rng, DISTRICT_WEIGHTS)
    return district, rng.choice(ROADS[district])


def point_on(rng: random.Random, road: Road) -> dict[str, float]:
    """A point along `road`, a little to either side of its centre line."""
    lat, lon = between(road.start, road.end, rng.random())
    lat += rng.uniform(-_ROAD_JITTER_DEG, _ROAD_JITTER_DEG)
    lon += rng.uniform(-_ROAD_JITTER_DEG, _ROAD_JITTER_DEG)
    return {"lat": round(lat, 6), "lon": round(lon, 6)}


def offset_m(origin: Point, point: Point) -> tuple[float, float]:
    """Metres (north, east) from `origin` to `point`."""
    north = (point[0] - origin[0]) * _METRES_PER_DEGREE
    east = (point[1] - origin[1]) * _METRES_PER_DEGREE * math.cos(math.radians(origin[0]))
    return north, east


def moved(origin: Point, north_m: float, east_m: float) -> Point:
    """The point `north_m` and `east_m` metres from `origin`."""
    lat = origin[0] + north_m / _METRES_PER_DEGREE
    lon = origin[1] + east_m / (_METRES_PER_DEGREE * math.cos(math.radians(origin[0])))
    return lat, lon


def distance_m(a: Point, b: Point) -> float:
    return math.hypot(*offset_m(a, b))


def between(a: Point, b: Point, share: float) -> Point:
    """The point `share` (0 to 1) of the way from `a` to `b`."""
    return a[0] + share * (b[0] - a[0]), a[1] + share * (b[1] - a[1])


def nearest_on(point: Point, a: Point, b: Point) -> Point:
    """The point of the segment from `a` to `b` nearest to `point`."""
    north, east = offset_m(a, b)
    length_squared = north * north + east * east
    if length_squared == 0:
        return a
    p_north, p_east = offset_m(a, point)
    share = (p_north * north + p_east * east) / length_squared
    return between(a, b, min(1.0, max(0.0, share)))
