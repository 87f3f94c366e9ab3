"""Views, applied to records before they leave. Pure; no I/O.

- `raw`: every field as stored.
- `protected`: by sensitivity, as the policy's p2 lines say (the decision's
  `treatments`). Fields without a sensitivity are always shown. The treatments,
  named as in ISO/IEC 20889 and GB/T 37964:
  - `pseudonymized`: the consumer's own keyed pseudonym (`privacy.pseudonyms`);
  - `masked`: plates keep province, city letter and first character
    (粤A·1****), other text a quarter of its characters;
  - `generalized`: a point becomes its H3 cell (the product's resolution, or the
    field's; 8 is about 0.7 km²), given as the cell id and the cell's centre; a
    timestamp, number or integer as its field's `generalization` says — the UTC
    minute, hour or day holding the time, the nearest multiple, or the band;
  - `redacted`: an image reference marked redacted, its boxes dropped (the
    image itself is served with plates and faces filled by its own route);
  - `withheld`: left out;
  - `raw`: as stored.

A treatment fits only some field types (`fits`); a sensitivity's treatment that
does not fit a field falls to the next more protective one that does (a
pseudonymized timestamp is withheld, or generalized if the field says how), so a
broad p2 line never shows a value in a shape meant for another type.

A result is labelled `raw` if every field is, else `deidentified`: keyed
pseudonyms and masked values can still be linked back with extra information,
so only aggregates that pass the small-group test could be called anonymised.

An unknown view or treatment raises ValueError: data never leaves in a shape
nobody chose.
"""

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import pairwise
from typing import Any, TypeGuard

import h3

from exchange.catalog.models import FieldSpec, FieldType, Generalization, Sensitivity
from exchange.timeutil import parse_rfc3339, to_rfc3339
from policies.decision import TREATMENTS_MOST_PROTECTIVE_FIRST, UNSHAPED

_PLATE = re.compile(r"^(?P<region>[\u4e00-\u9fff][A-Z])[·•.\- ]?(?P<tail>[A-Z0-9]{5,6})$")
DEFAULT_RESOLUTION = 8
TIME_BUCKETS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}

_EVERY_TYPE = frozenset(FieldType)
# `generalized` also fits a timestamp, number or integer field that declares how.
_FITS = {
    "withheld": _EVERY_TYPE,
    "redacted": frozenset({FieldType.image_ref}),
    "generalized": frozenset({FieldType.geo_point}),
    "pseudonymized": frozenset({FieldType.string, FieldType.integer}),
    "masked": frozenset({FieldType.string}),
    "raw": _EVERY_TYPE,
}

Generalizer = Callable[[Any], Any]


@dataclass(frozen=True)
class Shaping:
    """What treatments need besides the value: the consumer's pseudonyms, the grid,
    and each field's generalizer (built once per read by `Shaping.of`)."""

    pseudonymize: Callable[[Any], str | None] | None = None
    resolution: int = DEFAULT_RESOLUTION
    generalizers: Mapping[str, Generalizer] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        fields: Sequence[FieldSpec],
        *,
        resolution: int = DEFAULT_RESOLUTION,
        pseudonymize: Callable[[Any], str | None] | None = None,
    ) -> "Shaping":
        """For a product's fields: a generalizer for each point (at the field's
        resolution, else the product's) and each field that declares a generalization."""
        generalizers = {
            spec.name: generalizer(spec.generalization, resolution)
            for spec in fields
            if spec.generalization is not None
        }
        for spec in fields:
            if spec.type == FieldType.geo_point and spec.name not in generalizers:
                generalizers[spec.name] = partial(generalize_point, resolution=resolution)
        return cls(pseudonymize, resolution, generalizers)


def fits(treatment: str, spec: FieldSpec) -> bool:
    """Whether a treatment can show a field of this type. Raises ValueError if unknown."""
    if treatment not in _FITS:
        raise ValueError(f"no such treatment: {treatment!r}")
    if treatment == "generalized" and spec.generalization is not None:
        return True
    return spec.type in _FITS[treatment]


def fitting(treatment: str, spec: FieldSpec) -> str:
    """The treatment if it fits the field, else the next more protective one that
    does (`withheld` fits every field). Raises ValueError for an unknown treatment."""
    if treatment not in _FITS:
        raise ValueError(f"no such treatment: {treatment!r}")
    at = TREATMENTS_MOST_PROTECTIVE_FIRST.index(treatment)
    return next(t for t in reversed(TREATMENTS_MOST_PROTECTIVE_FIRST[: at + 1]) if fits(t, spec))


def treatments(
    view: str, fields: list[FieldSpec], by_sensitivity: Mapping[str, str]
) -> dict[str, str]:
    """Field name → treatment for this view; a sensitivity the policy does not
    shape is withheld, and a treatment that does not fit a field's type falls to the
    next more protective one that does. Raises ValueError for an unknown view or
    treatment."""
    if view == "raw":
        return {spec.name: "raw" for spec in fields}
    if view == "protected":
        return {
            spec.name: "raw"
            if spec.sensitivity == Sensitivity.none
            else fitting(by_sensitivity.get(spec.sensitivity.value, UNSHAPED), spec)
            for spec in fields
        }
    raise ValueError(f"no such view: {view!r}")


def label(treatment_of: Mapping[str, str]) -> str:
    """`raw` when every field leaves as stored, else `deidentified`."""
    return "raw" if all(t == "raw" for t in treatment_of.values()) else "deidentified"


def mask(value: Any) -> Any:
    """粤A·12345 → 粤A·1****; other text keeps a quarter of its characters; other
    values cannot be masked meaningfully and become None."""
    if not isinstance(value, str):
        return None
    plate = _PLATE.match(value.strip())
    if plate:
        tail = plate["tail"]
        return f"{plate['region']}·{tail[0]}{'*' * (len(tail) - 1)}"
    keep = len(value) // 4
    return value[:keep] + "*" * (len(value) - keep)


def generalize_point(point: Mapping[str, float], resolution: int) -> dict[str, Any]:
    """The H3 cell holding the point, and the cell's centre."""
    cell = h3.latlng_to_cell(point["lat"], point["lon"], resolution)
    lat, lon = h3.cell_to_latlng(cell)
    return {"lat": round(lat, 6), "lon": round(lon, 6), "cell": f"h3:{cell}"}


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """The start of the UTC minute, hour or day holding an aware time. Raises
    ValueError for an unknown bucket."""
    if bucket not in TIME_BUCKETS:
        raise ValueError(f"no such time bucket: {bucket!r}")
    start = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if bucket != "minute":
        start = start.replace(minute=0)
    if bucket == "day":
        start = start.replace(hour=0)
    return start


def bucket_time(value: Any, bucket: str) -> dict[str, str] | None:
    """The UTC minute, hour or day holding an RFC 3339 time, whatever its offset:
    `{"from": "2026-11-21T08:00:00Z", "to": "2026-11-21T09:00:00Z", "bucket":
    "hour"}` (from inclusive, to exclusive: a read's `from`/`to` window on these
    bounds is allowed). None for a value that is not a time. Raises ValueError for
    an unknown bucket."""
    size = TIME_BUCKETS.get(bucket)
    if size is None:
        raise ValueError(f"no such time bucket: {bucket!r}")
    if not isinstance(value, str):
        return None
    try:
        start = bucket_start(parse_rfc3339(value), bucket)
    except ValueError:
        return None
    try:
        end = start + size
    except OverflowError:
        return None
    return {"from": to_rfc3339(start), "to": to_rfc3339(end), "bucket": bucket}


def _is_number(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (isinstance(value, int) or math.isfinite(value))
    )


def _decimals(step: float) -> int:
    exponent = Decimal(repr(step)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def round_to(value: Any, step: float) -> int | float | None:
    """The multiple of `step` nearest the value, halves rounded up: 42.5 → 45 for
    step 5. Whole steps give whole numbers (exact for integers of any size); other
    steps keep the step's decimals (0.25 → 0.3 for step 0.1). None for a value
    that is not a finite number."""
    if not _is_number(value):
        return None
    if float(step).is_integer():
        whole = int(step)
        if isinstance(value, int):
            return (value + whole // 2) // whole * whole
        return math.floor(value / whole + 0.5) * whole
    return round(math.floor(value / step + 0.5) * step, _decimals(step))


def _edge(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Bands:
    """Values shown as the band holding them, between ascending edges: `{"band":
    "60-80", "min": 60, "max": 80}` for 60 ≤ value < 80; below the first edge
    `{"band": "<0", "min": null, "max": 0}`, from the last on `{"band": ">=80",
    "min": 80, "max": null}`. The shapes are built once, not per value."""

    edges: tuple[float, ...]
    shown: tuple[tuple[tuple[str, Any], ...], ...]

    @classmethod
    def of(cls, edges: Sequence[float]) -> "Bands":
        if not edges or any(low >= high for low, high in pairwise(edges)):
            raise ValueError("band edges must be one or more ascending numbers")
        low_end = (("band", f"<{_edge(edges[0])}"), ("min", None), ("max", edges[0]))
        high_end = (("band", f">={_edge(edges[-1])}"), ("min", edges[-1]), ("max", None))
        between = tuple(
            (("band", f"{_edge(low)}-{_edge(high)}"), ("min", low), ("max", high))
            for low, high in pairwise(edges)
        )
        return cls(tuple(edges), (low_end, *between, high_end))

    def __call__(self, value: Any) -> dict[str, Any] | None:
        """The value's band; None for a value that is not a finite number."""
        if not _is_number(value):
            return None
        return dict(self.shown[bisect_right(self.edges, value)])


def generalizer(spec: Generalization, resolution: int) -> Generalizer:
    """The function showing a value as `spec` says; points at `resolution` unless the
    spec names its own."""
    if spec.time_bucket is not None:
        return partial(bucket_time, bucket=spec.time_bucket)
    if spec.round_to is not None:
        return partial(round_to, step=spec.round_to)
    if spec.bands is not None:
        return Bands.of(spec.bands)
    return partial(generalize_point, resolution=spec.resolution or resolution)


def redact_image(value: Any) -> dict[str, Any]:
    """An image reference as a redacted view shows it: `{"ref": "captures/1.jpg",
    "redacted": true}` for a string reference or `{"ref": …, "boxes": […]}` (the
    boxes dropped; `ref` null when there is none). The image itself is served with
    its boxes filled by its own route."""
    ref = value.get("ref") if isinstance(value, Mapping) else value
    return {"ref": ref if isinstance(ref, str) else None, "redacted": True}


def _generalized(name: str, value: Any, shaping: Shaping) -> Any:
    generalize = shaping.generalizers.get(name)
    if generalize is not None:
        return generalize(value)
    if isinstance(value, Mapping) and "lat" in value and "lon" in value:
        return generalize_point(value, shaping.resolution)
    raise ValueError(f"{name} is generalized but the view has no generalization for it")


def apply(
    treatment_of: Mapping[str, str], content: Mapping[str, Any], shaping: Shaping
) -> dict[str, Any]:
    """The record as this view shows it. Raises ValueError for an unknown treatment,
    a pseudonymized field without a pseudonymizer, or a generalized field (other than
    a point) the shaping has no generalizer for."""
    shown: dict[str, Any] = {}
    for name, value in content.items():
        treatment = treatment_of.get(name, "withheld")
        if treatment == "raw":
            shown[name] = value
        elif treatment == "pseudonymized":
            if shaping.pseudonymize is None:
                raise ValueError("a pseudonymized field needs the consumer's pseudonyms")
            shown[name] = shaping.pseudonymize(value)
        elif treatment == "masked":
            shown[name] = mask(value)
        elif treatment == "generalized":
            shown[name] = _generalized(name, value, shaping)
        elif treatment == "redacted":
            shown[name] = redact_image(value)
        elif treatment != "withheld":
            raise ValueError(f"no such treatment: {treatment!r}")
    return shown
