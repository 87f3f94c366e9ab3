"""Robotaxis driving through Guangzhou on the roads of `geography`.

A vehicle drives a route of legs. A road leg runs along one of the geography's
roads, from where the vehicle joined it to the end it is heading for, at a
cruising speed a little under the road's limit. At the end the vehicle turns: it
picks a next road in its district or a neighbouring one (nearer roads far
likelier), joins it at the point nearest to where it is, and heads for that road's
farther end. The stretch between the two roads, a link leg, is a cross street
driven at a street's limit (or an arterial's, between districts far apart); its
district is the one it leaves for its first half and the one it enters for the
second.

A vehicle draws its route from its own `random.Random`, one leg at a time as it
needs one, so where it is depends only on its seed and how long it has driven.
Positions lie on the centre line of the current leg.
"""

import random
from typing import NamedTuple

from connectors.fleet.geography import (
    NEIGHBOURS,
    ROAD_NAMES,
    ROADS,
    Point,
    Road,
    between,
    distance_m,
    nearest_on,
    offset_m,
    pick_road,
)

STREET_LIMIT_KMH = 40
ARTERIAL_LIMIT_KMH = 60
ARTERIAL_FROM_M = 2_000.0
"""A link this long or longer is an arterial road, not a street."""

CRUISE_SHARE = (0.75, 0.95)
"""A robotaxi cruises at this share of the limit (it keeps to limits)."""

_DIRECT_TURN_M = 1.0  # closer than this, the vehicle turns straight onto the next road
_NEARNESS_KM = 0.3  # a road `d` km away is picked with weight 1 / (d + 0.3)³


class Leg(NamedTuple):
    """A straight stretch of a route, driven at one speed."""

    road: str
    speed_limit_kmh: int
    start: Point
    end: Point
    districts: tuple[str, str]  # where it starts, where it ends
    speed_ms: float
    length_m: float
    on_road: bool  # along a road of the geography, not a link between two

    def at(self, travelled_m: float) -> Point:
        return between(self.start, self.end, travelled_m / self.length_m)

    def district_at(self, travelled_m: float) -> str:
        return self.districts[0] if travelled_m < self.length_m / 2 else self.districts[1]


class Vehicle:
    """One robotaxi: where it is, on which road, in which district, how fast."""

    def __init__(self, vehicle_id: str, rng: random.Random) -> None:
        self.id = vehicle_id
        self._rng = rng
        district, road = pick_road(rng)
        ahead, behind = (road.end, road.start) if rng.random() < 0.5 else (road.start, road.end)
        self._road, self._district = road, district
        self.leg = self._along(road, district, between(behind, ahead, rng.uniform(0, 0.8)), ahead)
        self._after_link: Leg | None = None
        self.travelled_m = 0.0
        self.elapsed_s = 0.0

    @property
    def position(self) -> Point:
        return self.leg.at(self.travelled_m)

    @property
    def district(self) -> str:
        return self.leg.district_at(self.travelled_m)

    @property
    def speed_kmh(self) -> float:
        return self.leg.speed_ms * 3.6

    @property
    def heading(self) -> tuple[float, float]:
        """The unit vector (north, east) the vehicle is driving along."""
        north, east = offset_m(self.leg.start, self.leg.end)
        return north / self.leg.length_m, east / self.leg.length_m

    def drive_to(self, elapsed_s: float) -> None:
        """Drive on until `elapsed_s` seconds after the start; raises `ValueError` for
        a time before the vehicle's own."""
        if elapsed_s < self.elapsed_s:
            raise ValueError(f"the vehicle is at {self.elapsed_s} s already, not {elapsed_s} s")
        remaining = elapsed_s - self.elapsed_s
        while True:
            left_s = (self.leg.length_m - self.travelled_m) / self.leg.speed_ms
            if remaining < left_s:
                self.travelled_m += remaining * self.leg.speed_ms
                break
            remaining -= left_s
            self._turn()
        self.elapsed_s = elapsed_s

    def _turn(self) -> None:
        """Onto the next leg: the road after a link, else a link to a next road."""
        self.travelled_m = 0.0
        if self._after_link is not None:
            self.leg, self._after_link = self._after_link, None
            return
        here = self.leg.end
        district, road, entry = self._next_road(here)
        ahead = max((road.start, road.end), key=lambda end: distance_m(entry, end))
        joined = self._along(road, district, entry, ahead)
        if distance_m(here, entry) < _DIRECT_TURN_M:
            self.leg = joined
        else:
            self.leg, self._after_link = self._link(here, entry, road, district), joined
        self._road, self._district = road, district

    def _next_road(self, here: Point) -> tuple[str, Road, Point]:
        options = [
            (district, road, nearest_on(here, road.start, road.end))
            for district in (self._district, *NEIGHBOURS[self._district])
            for road in ROADS[district]
            if road != self._road
        ]
        weights = [
            1 / (distance_m(here, entry) / 1000 + _NEARNESS_KM) ** 3 for _, _, entry in options
        ]
        return self._rng.choices(options, weights=weights)[0]

    def _link(self, here: Point, entry: Point, road: Road, district: str) -> Leg:
        """The cross street from the end of this road to the next: one of the two
        roads' cross streets that is not itself a road of the geography, or where
        they have none, the approach to the next road, under its name."""
        streets = [
            street
            for street in (*self._road.cross_streets, *road.cross_streets)
            if street not in ROAD_NAMES
        ]
        length = distance_m(here, entry)
        limit = ARTERIAL_LIMIT_KMH if length >= ARTERIAL_FROM_M else STREET_LIMIT_KMH
        name = self._rng.choice(streets) if streets else road.name
        return self._leg(name, limit, here, entry, (self._district, district), on_road=False)

    def _along(self, road: Road, district: str, start: Point, end: Point) -> Leg:
        return self._leg(
            road.name, road.speed_limit_kmh, start, end, (district, district), on_road=True
        )

    def _leg(
        self,
        name: str,
        limit: int,
        start: Point,
        end: Point,
        districts: tuple[str, str],
        *,
        on_road: bool,
    ) -> Leg:
        speed_ms = limit * self._rng.uniform(*CRUISE_SHARE) / 3.6
        return Leg(name, limit, start, end, districts, speed_ms, distance_m(start, end), on_road)
