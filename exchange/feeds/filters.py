"""What a subscription wants: which records (the filter) and which of their fields.

    {"equals": {"district": ["Tianhe", "Yuexiu"], "violation_type": ["red_light"]},
     "at_least": {"confidence": 0.8}, "at_most": {"speed_kmh": 200},
     "within": {"location": [113.2, 23.0, 113.5, 23.2]},
     "from": "2026-12-01T00:00:00Z", "to": null}

`within` is a bounding box [west, south, east, north] on a point field; `from`
and `to` bound the product's time field. Every condition must hold. A filter is
matched against the record as published (in the publishing transaction), so it
may only name fields the subscriber is shown raw: filtering on a field it sees
pseudonymized or generalized would let it learn the hidden value from which
records arrive. That is checked when the subscription is made and again at every
delivery, since a policy change can take the raw view away.
"""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from exchange.catalog.models import Definition, FieldType
from exchange.errors import FieldError
from exchange.timeutil import as_utc, parse_rfc3339

_MAX_VALUES = 1000
_FITS = {
    "equals": frozenset({FieldType.string, FieldType.integer, FieldType.boolean}),
    "at_least": frozenset({FieldType.integer, FieldType.number}),
    "at_most": frozenset({FieldType.integer, FieldType.number}),
    "within": frozenset({FieldType.geo_point}),
}

BoundingBox = Annotated[list[FiniteFloat], Field(min_length=4, max_length=4)]


class FeedFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    equals: dict[str, Annotated[list[str | int | bool], Field(min_length=1)]] = {}
    at_least: dict[str, FiniteFloat] = {}
    at_most: dict[str, FiniteFloat] = {}
    within: dict[str, BoundingBox] = {}
    since: datetime | None = Field(default=None, alias="from")
    until: datetime | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _bounded(self) -> "FeedFilter":
        if sum(len(values) for values in self.equals.values()) > _MAX_VALUES:
            raise ValueError(f"equals lists at most {_MAX_VALUES} values in all")
        for name, (west, south, east, north) in self.within.items():
            if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
                raise ValueError(
                    f"within.{name}: a box is [west, south, east, north] with west ≤ east "
                    "and south ≤ north, in degrees"
                )
        for bound in (self.since, self.until):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("from and to need a time zone (RFC 3339)")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("from must be before to")
        return self

    def named_fields(self) -> dict[str, str]:
        """Each field the filter reads → where in the filter it is named."""
        named = {}
        for part in ("equals", "at_least", "at_most", "within"):
            for name in getattr(self, part):
                named.setdefault(name, f"filter.{part}.{name}")
        return named

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def problems(
    feed_filter: FeedFilter, wanted: list[str] | None, definition: Definition
) -> list[FieldError]:
    """Filter and fields that do not fit the product's schema."""
    specs = {spec.name: spec for spec in definition.fields}
    errors = []
    for name, where in feed_filter.named_fields().items():
        spec = specs.get(name)
        fits = _FITS[where.split(".")[1]]
        if spec is None:
            errors.append(FieldError(f"{name} is not a field of this product", where))
        elif spec.type not in fits:
            kinds = " and ".join(sorted(fits))
            errors.append(FieldError(f"works on {kinds} fields, not {spec.type}", where))
    if (feed_filter.since or feed_filter.until) and definition.time_field is None:
        errors.append(FieldError("this product has no time field to window on", "filter.from"))
    for position, name in enumerate(wanted or []):
        if name not in specs:
            errors.append(FieldError(f"{name} is not a field of this product", "fields", position))
    return errors


def unshown(
    feed_filter: FeedFilter, treatment_of: dict[str, str], time_field: str | None
) -> list[FieldError]:
    """Filter conditions on fields this reader is not shown raw."""
    named = feed_filter.named_fields()
    if (feed_filter.since or feed_filter.until) and time_field:
        named.setdefault(time_field, "filter.from" if feed_filter.since else "filter.to")
    return [
        FieldError(
            f"{name} is shown {treatment_of.get(name, 'withheld')} in this view; a filter on "
            "it needs the raw view",
            where,
        )
        for name, where in named.items()
        if treatment_of.get(name) != "raw"
    ]


def matches(feed_filter: dict[str, Any], content: dict[str, Any], time_field: str | None) -> bool:
    """Whether a published record (validated content) passes a stored filter."""
    for name, values in feed_filter.get("equals", {}).items():
        if name not in content or not any(_same(content[name], v) for v in values):
            return False
    for name, low in feed_filter.get("at_least", {}).items():
        if not _number(content.get(name)) or content[name] < low:
            return False
    for name, high in feed_filter.get("at_most", {}).items():
        if not _number(content.get(name)) or content[name] > high:
            return False
    for name, (west, south, east, north) in feed_filter.get("within", {}).items():
        point = content.get(name)
        if not isinstance(point, dict):
            return False
        if not (west <= point["lon"] <= east and south <= point["lat"] <= north):
            return False
    since, until = feed_filter.get("from"), feed_filter.get("to")
    if since or until:
        moment = content.get(time_field or "")
        if not isinstance(moment, str):
            return False
        at = as_utc(parse_rfc3339(moment))
        if since and at < as_utc(parse_rfc3339(since)):
            return False
        if until and at >= as_utc(parse_rfc3339(until)):
            return False
    return True


def _same(stored: Any, wanted: Any) -> bool:
    """Equal and of the same kind: true is not 1, "1" is not 1."""
    return type(stored) is type(wanted) and stored == wanted


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
