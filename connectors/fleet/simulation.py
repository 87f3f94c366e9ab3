"""The fleet at work: robotaxis driving and catching violations as time passes.

`Fleet(seed, vehicles)` puts K robotaxis on the road at `start` (now, by default).
Each call of `captures(seconds, rate)` moves simulated time on by `seconds` and
returns the violations caught in that time, about `rate` a second (exactly
`rate × seconds` over the calls, the fractions carried over), in time order. A
violation is caught by one robotaxi's camera at that moment, where the robotaxi
is: the violator is another vehicle a few metres ahead, on the same road, in the
same district, with a plate from the fleet's plate book (repeat offenders
included), a speed that fits the violation (over the limit when speeding) and the
camera's confidence. With photos, each capture has a drawn road scene of the
violator's plate, and its record's `photo` declares the plate and face boxes.

Deterministic: the same seed, vehicles, start and calls give the same records and
photos. Ids are `sim-<seed>-<start>-<n>`, so runs started at different
milliseconds never collide. `captured_at` is RFC 3339 in UTC with milliseconds.
"""

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.fleet.captures import confidence, violation_speed, violation_type
from connectors.fleet.geography import moved
from connectors.fleet.photos import scene
from connectors.fleet.plates import PlateBook
from connectors.fleet.vehicles import Vehicle

MAX_VEHICLES = 9999
PHOTO_SIZE = (480, 270)
VIOLATOR_AHEAD_M = (8.0, 40.0)
"""How far ahead of the camera the violator is, along the road."""
VIOLATOR_ASIDE_M = 6.0
"""How far to either side of the camera's lane the violator is, at most."""


@dataclass(frozen=True)
class Capture:
    """A record as the fleet publishes it, and the JPEG its `photo` field describes
    (None when the fleet takes no photos)."""

    record: dict[str, Any]
    photo: bytes | None


class Fleet:
    """Robotaxis on Guangzhou's roads, capturing violations in simulated time."""

    def __init__(
        self,
        seed: int = 7,
        vehicles: int = 20,
        *,
        start: datetime | None = None,
        photos: bool = True,
    ) -> None:
        """Raises `ValueError` for fewer than 1 or more than 9999 vehicles, or a naive
        `start`."""
        if not 1 <= vehicles <= MAX_VEHICLES:
            raise ValueError(f"a fleet has 1 to {MAX_VEHICLES} vehicles, not {vehicles}")
        start = datetime.now(UTC) if start is None else start
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        self.start = start.astimezone(UTC).replace(microsecond=start.microsecond // 1000 * 1000)
        self.seed = seed
        self.photos = photos
        self.vehicles = [
            Vehicle(f"RT-{n:04d}", random.Random(f"fleet {seed} vehicle {n}"))
            for n in range(1, vehicles + 1)
        ]
        self.elapsed_s = 0.0
        self.captured = 0
        self._rng = random.Random(seed)
        self._plates = PlateBook(self._rng)
        self._due = 0.0  # the fraction of a capture carried over from earlier calls
        stamp = f"{self.start:%Y%m%dT%H%M%S}{self.start.microsecond // 1000:03d}"
        self._id_prefix = f"sim-{seed}-{stamp}"

    @property
    def now(self) -> datetime:
        """The simulated time the fleet has reached."""
        return self.start + timedelta(seconds=self.elapsed_s)

    def captures(self, seconds: float, rate: float) -> list[Capture]:
        """The violations of the next `seconds` of simulated time, about `rate` a
        second, in time order; the vehicles end at the new time. Raises `ValueError`
        for a negative or non-finite `seconds` or `rate`."""
        for name, value in (("seconds", seconds), ("rate", rate)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        due = self._due + rate * seconds
        count = math.floor(due + 1e-9)
        self._due = max(0.0, due - count)
        moments = sorted(self.elapsed_s + self._rng.random() * seconds for _ in range(count))
        caught = [self._capture(moment) for moment in moments]
        self.elapsed_s += seconds
        for vehicle in self.vehicles:
            vehicle.drive_to(self.elapsed_s)
        return caught

    def _capture(self, moment: float) -> Capture:
        rng = self._rng
        camera = rng.choice(self.vehicles)
        camera.drive_to(moment)
        kind = violation_type(rng)
        ahead, aside = rng.uniform(*VIOLATOR_AHEAD_M), rng.uniform(-1, 1) * VIOLATOR_ASIDE_M
        north, east = camera.heading  # `aside` is to the right of it
        lat, lon = moved(
            camera.position, north * ahead - east * aside, east * ahead + north * aside
        )
        plate = self._plates.next_plate()
        limit = camera.leg.speed_limit_kmh
        speed = violation_speed(rng, kind, limit)
        sureness = confidence(rng)
        photo_seed = rng.getrandbits(32)
        self.captured += 1
        record_id = f"{self._id_prefix}-{self.captured:06d}"
        record: dict[str, Any] = {
            "id": record_id,
            "captured_at": _rfc3339_ms(self.start + timedelta(milliseconds=int(moment * 1000))),
            "district": camera.district,
            "road": camera.leg.road,
            "location": {"lat": round(lat, 6), "lon": round(lon, 6)},
            "violation_type": kind,
            "plate": plate,
            "speed_kmh": speed,
            "speed_limit_kmh": limit,
            "confidence": sureness,
            "vehicle_id": camera.id,
            "photo": f"captures/{record_id}.jpg",
        }
        if not self.photos:
            return Capture(record, None)
        data, boxes = scene(photo_seed, plate, width=PHOTO_SIZE[0], height=PHOTO_SIZE[1])
        record["photo"] = {"ref": record["photo"], "boxes": [box.as_dict() for box in boxes]}
        return Capture(record, data)


def _rfc3339_ms(moment: datetime) -> str:
    """`2026-11-28T08:15:02.350Z`."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
