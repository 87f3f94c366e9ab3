"""The first two views, applied to records before they leave. Pure; no I/O.

- `raw`: every field as stored.
- `protected`: by sensitivity, as the policy's p2 lines say (the decision's
  `treatments`); the default policy gives `personal` masked (plates keep
  province, city letter and first character: 粤A·1****), `location` generalised
  to the centre of a 0.01° grid cell (about 1 km), `sensitive` and `image`
  withheld (left out). Fields without a sensitivity are always shown.

An unknown view raises ValueError: data never leaves in a shape nobody chose.
"""

import math
import re
from collections.abc import Mapping
from typing import Any

from exchange.catalog.models import FieldSpec, Sensitivity

GRID_DEGREES = 0.01
_PLATE = re.compile(r"^(?P<region>[\u4e00-\u9fff][A-Z])[·•.\- ]?(?P<tail>[A-Z0-9]{5,6})$")


def treatments(
    view: str, fields: list[FieldSpec], by_sensitivity: Mapping[str, str]
) -> dict[str, str]:
    """Field name → treatment for this view; a sensitivity the policy does not
    shape is withheld."""
    if view == "raw":
        return {spec.name: "raw" for spec in fields}
    if view == "protected":
        return {
            spec.name: "raw"
            if spec.sensitivity == Sensitivity.none
            else by_sensitivity.get(spec.sensitivity.value, "withheld")
            for spec in fields
        }
    raise ValueError(f"no such view: {view!r}")


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


def generalize_point(point: Mapping[str, float]) -> dict[str, Any]:
    """The centre of the grid cell holding the point, and the cell's id."""
    row = math.floor(point["lat"] / GRID_DEGREES)
    column = math.floor(point["lon"] / GRID_DEGREES)
    return {
        "lat": round((row + 0.5) * GRID_DEGREES, 6),
        "lon": round((column + 0.5) * GRID_DEGREES, 6),
        "cell": f"grid{GRID_DEGREES}:{row}:{column}",
    }


def apply(treatment_of: Mapping[str, str], content: Mapping[str, Any]) -> dict[str, Any]:
    """The record as this view shows it. Raises ValueError for an unknown treatment."""
    shown: dict[str, Any] = {}
    for name, value in content.items():
        treatment = treatment_of.get(name, "withheld")
        if treatment == "raw":
            shown[name] = value
        elif treatment == "masked":
            shown[name] = mask(value)
        elif treatment == "generalized":
            shown[name] = generalize_point(value)
        elif treatment != "withheld":
            raise ValueError(f"no such treatment: {treatment!r}")
    return shown
