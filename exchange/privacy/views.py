"""Views, applied to records before they leave. Pure; no I/O.

- `raw`: every field as stored.
- `protected`: by sensitivity, as the policy's p2 lines say (the decision's
  `treatments`). Fields without a sensitivity are always shown. The treatments,
  named as in ISO/IEC 20889 and GB/T 37964:
  - `pseudonymized`: the consumer's own keyed pseudonym (`privacy.pseudonyms`);
  - `masked`: plates keep province, city letter and first character
    (粤A·1****), other text a quarter of its characters;
  - `generalized`: a point becomes its H3 cell (the product's resolution; 8 is
    about 0.7 km²), given as the cell id and the cell's centre;
  - `withheld`: left out;
  - `raw`: as stored.

A result is labelled `raw` if every field is, else `deidentified`: keyed
pseudonyms and masked values can still be linked back with extra information,
so only aggregates that pass the small-group test could be called anonymised.

An unknown view or treatment raises ValueError: data never leaves in a shape
nobody chose.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import h3

from exchange.catalog.models import FieldSpec, Sensitivity

_PLATE = re.compile(r"^(?P<region>[\u4e00-\u9fff][A-Z])[·•.\- ]?(?P<tail>[A-Z0-9]{5,6})$")
DEFAULT_RESOLUTION = 8


@dataclass(frozen=True)
class Shaping:
    """What treatments need besides the value: the consumer's pseudonyms, the grid."""

    pseudonymize: Callable[[Any], str | None] | None = None
    resolution: int = DEFAULT_RESOLUTION


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


def apply(
    treatment_of: Mapping[str, str], content: Mapping[str, Any], shaping: Shaping
) -> dict[str, Any]:
    """The record as this view shows it. Raises ValueError for an unknown treatment,
    or a pseudonymized field without a pseudonymizer."""
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
            shown[name] = generalize_point(value, shaping.resolution)
        elif treatment != "withheld":
            raise ValueError(f"no such treatment: {treatment!r}")
    return shown
