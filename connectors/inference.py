"""A product definition guessed from a file, for the publisher to review and register.

`infer(path, slug)` reads the file (or its first `sample` rows) and returns a
definition `POST /v1/products` accepts as it is. The same file always gives the
same definition. The rules, column by column:

- name: `tabular.normalise_name` of the CSV header; a JSON key as it is (`id`
  is the record's id, not a field). A column blank in every row is dropped;
- type: the first of boolean (true/false, yes/no), integer, number, timestamp
  and geo_point (`(lat, lon)` text) that at least 99% of the non-blank values
  are, else string: a few impossible values do not make a column text, their
  rows are rejected when published. Numbers with leading zeros (`0013`) are
  codes, so strings. Times of day alone are strings, unless they are a date
  column's companion (`time_of_stop` for `date_of_stop`, see tabular): then the
  two make one timestamp field with the date column's name. JSON values are
  published unconverted, so there only JSON's own types count, and strings are
  timestamps only when RFC 3339 with an offset;
- geo: a CSV latitude/longitude pair (`latitude`/`longitude`, `pickup_lat`/
  `pickup_lon`…) makes one geo_point field, `coordinates` / `pickup_coordinates`,
  from whose name `tabular.to_record` finds the two columns again;
- required: only if never blank (for a date and its time: if the date never is);
- sensitivity: points location; plates (by header, or values that look like
  plates) and columns about a person (licence, name, driver, gender, race,
  phone, email, birth, DL state…) personal; addresses, streets and lone
  latitude or longitude columns location; free text (line breaks, or long and
  varied values) sensitive; anything else none.

The product is `regulated` if any field is personal or sensitive (the safe
default: the publisher may open it after review), else `open`; its purposes are
DEFAULT_PURPOSES, never law_enforcement unasked; `subject_field` is the plate
when there is exactly one. The exchange ignores keys it does not know, so what
the inference noticed (dropped columns, tolerated values, a candidate id
column) comes back as notes beside the definition, not inside it; each field's
description names its source columns.
"""

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors import tabular

TOLERANCE = 0.01  # the share of a column's values that may not fit its type
FREE_TEXT_LENGTH = 40  # mean characters, and…
FREE_TEXT_DISTINCT = 50  # …distinct values, of a column of free text
PLATE_SHARE = 0.5  # of values shaped like plates, and of distinct ones, for a plate column
DISTINCT_CAP = 100_000  # distinct values remembered per column
EXAMPLES = 3
DEFAULT_PURPOSES = ("research", "traffic_management", "urban_planning")
RETENTION_DAYS = 365
TAGS = ("inferred",)
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")  # as the exchange checks it
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_PLATE_WORDS = frozenset({"plate", "plates", "vrn"})
_NOT_A_PLATE = frozenset({"type", "class", "kind", "category", "state", "colour", "color"})
_PERSON_WORDS = frozenset(
    {
        *("licence", "license", "licensed", "dl", "driver", "owner", "person"),
        *("gender", "sex", "race", "ethnicity", "birth", "dob", "age"),
        *("phone", "telephone", "mobile", "email", "ssn", "passport"),
        *("surname", "firstname", "lastname"),
    }
)
_PERSON_NAMES = frozenset({"name", "first_name", "last_name", "full_name", "given_name"})
_PLACE_WORDS = frozenset(
    {"address", "street", "house", "location", "intersection", "intersecting"}
    | {"latitude", "lat", "longitude", "lon", "lng"}
)
_PLATE_VALUE = re.compile(r"(?=.*[A-Z])(?=.*\d)[A-Z0-9]{2,8}")
_LEADING_ZERO = re.compile(r"\s*[+-]?0\d")
_OFFSET = re.compile(r".*(?:[Zz]|[+-]\d{2}:?\d{2})")
TYPES = ("boolean", "integer", "number", "timestamp", "geo_point")


def _fits(parse: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            parse(text)
        except ValueError:
            return False
        return True

    return check


def _boolean_word(text: str) -> bool:
    # Narrower than to_record reads: a column of Y, N and F codes is not two-valued.
    return text.strip().lower() in {"true", "false", "yes", "no"}


_is_date, _is_datetime = _fits(tabular.parse_date), _fits(tabular.parse_datetime)
_TEXT_KINDS: dict[str, Callable[[str], bool]] = {
    "boolean": _boolean_word,
    "integer": _fits(tabular.parse_integer),
    "number": _fits(tabular.parse_number),
    "timestamp": lambda text: _is_date(text) or _is_datetime(text),
    "date": _is_date,
    "time": _fits(tabular.parse_time),
    "geo_point": _fits(tabular.parse_point),
}


def _json_kinds(value: Any) -> set[str]:
    """The types a JSON value already is, as the exchange takes it unconverted."""
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    if isinstance(value, str):
        rfc3339 = _OFFSET.fullmatch(value) and _is_datetime(value)
        return {"timestamp"} if rfc3339 else set()
    if isinstance(value, dict) and set(value) == {"lat", "lon"}:
        try:
            tabular.checked_point(float(value["lat"]), float(value["lon"]))
        except (TypeError, ValueError):
            return set()
        return {"geo_point"}
    return set()


@dataclass
class Column:
    """What one column's values look like. Values are counted as the rows go by
    and classified once per distinct value, in `finish`, or whenever more than
    DISTINCT_CAP of them are waiting (then the column is `saturated`: too varied
    to tell whether it is unique)."""

    name: str
    header: str
    convertible: bool
    filled: int = 0
    blank: int = 0
    pending: Counter[tuple[bool, str]] = field(default_factory=Counter)
    distinct: int = 0
    saturated: bool = False
    kinds: Counter[str] = field(default_factory=Counter)
    misfits: dict[str, list[str]] = field(default_factory=dict)
    text: int = 0
    length: int = 0
    line_breaks: bool = False
    leading_zeros: bool = False

    def add(self, value: Any) -> None:
        if tabular.is_blank(value):
            self.blank += 1
            return
        self.filled += 1
        if isinstance(value, str):
            self.pending[True, value] += 1
        else:
            self.pending[False, json.dumps(value, sort_keys=True)] += 1
        if len(self.pending) > DISTINCT_CAP:
            self.saturated = True
            self.finish()

    def finish(self) -> None:
        """Classify the values counted so far."""
        for (is_text, key), count in self.pending.items():
            value = key if is_text else json.loads(key)
            kinds = self._kinds(value)
            for kind in kinds:
                self.kinds[kind] += count
            for kind in _TEXT_KINDS.keys() - kinds:
                if len(examples := self.misfits.setdefault(kind, [])) < EXAMPLES:
                    examples.append(repr(value))
            if is_text:
                self.text += count
                self.length += len(key) * count
        self.distinct += len(self.pending)
        self.pending.clear()

    def _kinds(self, value: Any) -> set[str]:
        """What a value is; for text, also whether it has line breaks or leading
        zeros, or looks like a plate."""
        if not isinstance(value, str):
            return _json_kinds(value)
        self.line_breaks = self.line_breaks or "\n" in value or "\r" in value
        self.leading_zeros = self.leading_zeros or bool(_LEADING_ZERO.match(value))
        if not self.convertible:
            return _json_kinds(value)
        kinds = {kind for kind, fits in _TEXT_KINDS.items() if fits(value)}
        if _PLATE_VALUE.fullmatch(value) and "time" not in kinds:
            kinds.add("plate")
        return kinds

    def fits(self, kind: str) -> bool:
        if kind in ("integer", "number") and self.leading_zeros:
            return False
        return self.filled > 0 and self.kinds[kind] >= (1 - TOLERANCE) * self.filled

    @property
    def kind(self) -> str:
        """The column's own type, before pairing with other columns."""
        return next((kind for kind in TYPES if self.fits(kind)), "string")

    @property
    def unique(self) -> bool:
        return not self.blank and not self.saturated and self.distinct == self.filled

    @property
    def looks_like_plates(self) -> bool:
        return (
            self.text >= 20
            and self.kinds["plate"] >= PLATE_SHARE * self.text
            and self.distinct >= PLATE_SHARE * self.filled
        )

    @property
    def free_text(self) -> bool:
        return self.text > 0 and (
            self.line_breaks
            or (self.length >= FREE_TEXT_LENGTH * self.text and self.distinct >= FREE_TEXT_DISTINCT)
        )


@dataclass(frozen=True)
class Source:
    """A field to be, and the column (or columns) its values come from; `checks`
    says which kind each source column's values must be."""

    name: str
    type: str
    columns: tuple[Column, ...]
    checks: tuple[str, ...]


@dataclass
class Inference:
    """The definition, and what the inference noticed, for the publisher to read."""

    definition: dict[str, Any]
    notes: list[str]


def infer(path: Path, slug: str, *, sample: int | None = None) -> dict[str, Any]:
    """A product definition for the file; see the module docstring for the rules.
    Raises tabular.SourceError for a file that cannot be read or has no values,
    ValueError for a slug the exchange would refuse."""
    return inference(path, slug, sample=sample).definition


def inference(path: Path, slug: str, *, sample: int | None = None) -> Inference:
    """`infer`, with its notes."""
    if not SLUG.match(slug):
        raise ValueError(f"{slug!r} is not a product slug (lower-case letters, digits and -)")
    if sample is not None and sample < 1:
        raise ValueError("a sample is at least one row")
    convertible = path.suffix.lower() in tabular.CSV_SUFFIXES
    columns, records, unreadable = _profile(path, sample, convertible=convertible)
    notes: list[str] = []
    if unreadable:
        notes.append(f"{unreadable} rows could not be read and were left out of the inference")
    sources = _sources(columns, notes, convertible=convertible)
    if not sources:
        raise tabular.SourceError(f"{path}: no column has any value; nothing to infer")
    fields = [_field(source, notes) for source in sources]
    protected = [f["name"] for f in fields if f["sensitivity"] in ("personal", "sensitive")]
    tier = "regulated" if protected else "open"
    notes.append(
        f"tier {tier}"
        + (f" for the personal or sensitive {', '.join(protected)}" if protected else "")
        + f"; purposes {', '.join(DEFAULT_PURPOSES)} (add law_enforcement for the police)"
    )
    definition: dict[str, Any] = {
        "slug": slug,
        "title": _title(path, slug),
        "description": f"Inferred from {path.name} ({records} records). Review each field's "
        "type and sensitivity before registering.",
        "tags": list(TAGS),
        "tier": tier,
        "purposes": list(DEFAULT_PURPOSES),
        "retention_days": RETENTION_DAYS,
        "fields": fields,
    }
    plates = [s.name for s in sources if s.type == "string" and _is_plate(s.columns[0])]
    if len(plates) == 1:
        definition["subject_field"] = plates[0]
    if convertible and any(s.type == "timestamp" for s in sources):
        notes.append("times without a UTC offset are local: publish with their zone (UTC if not)")
    unique = [s.name for s in sources if len(s.columns) == 1 and s.columns[0].unique]
    if convertible and unique:
        notes.append(f"unique and never blank: {unique[0]} (a natural --id-column)")
    return Inference(definition, notes)


def _profile(path: Path, sample: int | None, *, convertible: bool) -> tuple[list[Column], int, int]:
    """The columns in the order first seen, how many rows were read, how many could not be."""
    columns: dict[str, Column] = {}
    records = unreadable = 0
    for row in tabular.rows(path):
        if sample is not None and records + unreadable >= sample:
            break
        if row.error is not None:
            unreadable += 1
            continue
        for name in row.values:
            if name not in columns:
                # absent from the rows before
                columns[name] = Column(name, name, convertible, blank=records)
        records += 1
        for name, column in columns.items():
            column.add(row.values.get(name))
    for column in columns.values():
        column.finish()
    if convertible:
        header = tabular.csv_header(path)
        for name, written in zip(tabular.normalised_header(header), header, strict=True):
            if name in columns:
                columns[name].header = written
    return list(columns.values()), records, unreadable


def _sources(columns: list[Column], notes: list[str], *, convertible: bool) -> list[Source]:
    """The fields to be, in column order; a pair of columns makes one field, placed
    where its first column was."""
    by_name = {column.name: column for column in columns}
    if empty := [column.name for column in columns if not column.filled]:
        notes.append(f"dropped {len(empty)} columns with no values: {', '.join(empty)}")
    pairs = _pairs(columns, by_name) if convertible else {}
    consumed = {source.columns[1].name for source in pairs.values()}
    sources = []
    for column in columns:
        if not column.filled or column.name in consumed or column.name == "id":
            continue
        source = pairs.get(column.name) or Source(
            _field_name(column, notes), column.kind, (column,), (column.kind,)
        )
        sources.append(source)
    return sources


def _pairs(columns: list[Column], by_name: dict[str, Column]) -> dict[str, Source]:
    """Date and time columns that make one timestamp, latitude and longitude
    columns that make one point: by the first column's name."""
    pairs: dict[str, Source] = {}
    for column in columns:
        if not column.filled:
            continue
        companion = by_name.get(tabular.companion_time(column.name) or "")
        if column.fits("date") and companion and companion.filled and companion.fits("time"):
            pairs[column.name] = Source(
                column.name, "timestamp", (column, companion), ("date", "time")
            )
        point = tabular.point_name(column.name)
        found = tabular.point_columns(point, by_name) if point else None
        if point and found and found[0] == column.name and point not in by_name:
            longitude = by_name[found[1]]
            if column.fits("number") and longitude.fits("number"):
                pairs[column.name] = Source(
                    point, "geo_point", (column, longitude), ("number", "number")
                )
    return pairs


def _field_name(column: Column, notes: list[str]) -> str:
    if NAME.match(column.name) and column.name not in tabular.RESERVED:
        return column.name
    name = tabular.normalise_name(column.name)
    notes.append(f"key {column.name!r} is not a field name: rename it {name} in the file")
    return name


def _field(source: Source, notes: list[str]) -> dict[str, Any]:
    if len(source.columns) > 1:
        joined = " and ".join(column.name for column in source.columns)
        notes.append(f"{source.name}: one {source.type} from {joined}")
    for column, kind in zip(source.columns, source.checks, strict=True):
        if kind != "string" and (misfits := column.filled - column.kinds[kind]):
            notes.append(
                f"{column.name}: {misfits} of {column.filled} values are not {kind} "
                f"({', '.join(column.misfits.get(kind, []))}); their rows will be rejected"
            )
    headers = " and ".join(f'"{column.header.strip()[:200]}"' for column in source.columns)
    # A blank time of day is midnight; a point needs both halves.
    needed = source.columns[:1] if source.type == "timestamp" else source.columns
    return {
        "name": source.name,
        "type": source.type,
        "sensitivity": _sensitivity(source),
        "required": not any(column.blank for column in needed),
        "description": f"From {'columns' if len(source.columns) > 1 else 'column'} {headers}.",
    }


def _is_plate(column: Column) -> bool:
    words = set(column.name.split("_"))
    by_header = bool(words & _PLATE_WORDS or "registration_number" in column.name)
    return (by_header and not words & _NOT_A_PLATE) or column.looks_like_plates


def _sensitivity(source: Source) -> str:
    column = source.columns[0]
    words = set(column.name.split("_"))
    if source.type == "geo_point":
        return "location"
    if _is_plate(column) or words & _PERSON_WORDS or column.name in _PERSON_NAMES:
        return "personal"
    if words & _PLACE_WORDS:
        return "location"
    if source.type == "string" and column.free_text:
        return "sensitive"
    return "none"


def _title(path: Path, slug: str) -> str:
    words = re.sub(r"[\W_]+", " ", path.stem).strip() or slug
    return (words[0].upper() + words[1:])[:200]
