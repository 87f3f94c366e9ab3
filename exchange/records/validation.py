"""Checking one record against a product's schema. Pure; no I/O.

A valid record comes back normalised (timestamps in UTC, `Z`; numbers as given),
so the same content always digests the same, whatever offset it was sent with.
"""

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from exchange.catalog.models import Definition, FieldSpec, FieldType
from exchange.errors import FieldError
from exchange.privacy.redaction import KINDS
from exchange.timeutil import parse_rfc3339, to_rfc3339

MAX_ID_LENGTH = 200
MAX_STRING_LENGTH = 10_000
MAX_BOXES = 100
BOX_KEYS = frozenset({"kind", "x", "y", "w", "h"})


class Invalid(ValueError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if len(value) > MAX_STRING_LENGTH:
        raise ValueError(f"longer than {MAX_STRING_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"not valid Unicode text (a lone surrogate at {error.start})") from None
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    if abs(value) >= 2**63:
        raise ValueError("out of the 64-bit range")
    return value


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    if isinstance(value, int) and abs(value) >= 2**63:
        raise ValueError("out of the 64-bit range")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _timestamp(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string")
    return to_rfc3339(parse_rfc3339(value))


def _geo_point(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) != {"lat", "lon"}:
        raise ValueError('expected {"lat": …, "lon": …}')
    lat, lon = _number(value["lat"]), _number(value["lon"])
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ValueError("latitude must be within ±90 and longitude within ±180")
    return {"lat": float(lat), "lon": float(lon)}


def _reference(value: Any) -> str:
    reference = _string(value)
    if not reference or len(reference) > 1000:
        raise ValueError("expected a non-empty reference of at most 1000 characters")
    return reference


def _box(index: int, value: Any) -> dict[str, Any]:
    where = f"boxes[{index}]"
    if not isinstance(value, dict) or set(value) != BOX_KEYS:
        raise ValueError(f'{where}: expected {{"kind", "x", "y", "w", "h"}}')
    if not isinstance(value["kind"], str) or value["kind"] not in KINDS:
        raise ValueError(f"{where}: kind is one of {', '.join(sorted(KINDS))}")
    for name in ("x", "y", "w", "h"):
        number = value[name]
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**20:
            raise ValueError(f"{where}: {name} is a whole number of pixels from 0")
    if value["w"] == 0 or value["h"] == 0:
        raise ValueError(f"{where}: a box has a width and a height")
    return {name: value[name] for name in sorted(BOX_KEYS)}


def _image_ref(value: Any) -> str | dict[str, Any]:
    """A reference, or `{"ref"?: …, "boxes": [{kind, x, y, w, h}]}`: where the image's
    plates and faces are (pixels from the top left), which its redacted view fills."""
    if not isinstance(value, dict):
        return _reference(value)
    if not set(value) <= {"ref", "boxes"} or "boxes" not in value:
        raise ValueError('expected a reference, or {"ref": …, "boxes": […]}')
    boxes = value["boxes"]
    if not isinstance(boxes, list) or len(boxes) > MAX_BOXES:
        raise ValueError(f"boxes is a list of at most {MAX_BOXES} boxes")
    image: dict[str, Any] = {"boxes": [_box(i, box) for i, box in enumerate(boxes)]}
    if "ref" in value:
        image["ref"] = _reference(value["ref"])
    return image


_CHECKS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.string: _string,
    FieldType.integer: _integer,
    FieldType.number: _number,
    FieldType.boolean: _boolean,
    FieldType.timestamp: _timestamp,
    FieldType.geo_point: _geo_point,
    FieldType.image_ref: _image_ref,
}


def _field(spec: FieldSpec, value: Any) -> Any:
    try:
        return _CHECKS[spec.type](value)
    except ValueError as error:
        raise Invalid(spec.name, str(error)) from None


def validate(record: Any, definition: Definition) -> tuple[str, dict[str, Any]]:
    """The record's id and its normalised fields. Raises Invalid naming the field."""
    if not isinstance(record, dict):
        raise Invalid(None, "a record is a JSON object")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id.strip() or len(record_id) > MAX_ID_LENGTH:
        raise Invalid("id", f"each record needs a string id of 1–{MAX_ID_LENGTH} characters")
    if not record_id.isprintable():
        raise Invalid("id", "an id cannot contain control characters")
    specs = {spec.name: spec for spec in definition.fields}
    if unknown := sorted(set(record) - set(specs) - {"id"}):
        raise Invalid(unknown[0], "not a field of this product")
    content: dict[str, Any] = {}
    for name, spec in specs.items():
        value = record.get(name)
        if value is None:
            if spec.required:
                raise Invalid(name, "required")
            continue
        content[name] = _field(spec, value)
    return record_id, content


def event_time(content: dict[str, Any], definition: Definition) -> datetime | None:
    if definition.time_field and definition.time_field in content:
        return parse_rfc3339(content[definition.time_field])
    return None


def field_error(index: int, invalid: Invalid) -> FieldError:
    return FieldError(index=index, field=invalid.field, reason=invalid.reason)
