"""Publishers' files read as rows, and CSV rows turned into records of a product.

Formats, by suffix: `.csv` (UTF-8, with or without a BOM; quoted fields may hold
line breaks; the header row names the columns), `.ndjson` / `.jsonl` (one JSON
object a line; blank lines skipped) and `.json` (one array of objects). CSV and
NDJSON are streamed; a `.json` file is read whole. A row that cannot be read (a
CSV row with the wrong number of values, an NDJSON line that is not an object) is
yielded with its `error` set, and reading goes on; a file that cannot be read at
all raises SourceError.

Names. A CSV header becomes a field name by `normalise_name`: lower case, ASCII,
every run of other characters one `_`, trimmed ("Days Parking In Effect    " →
`days_parking_in_effect`); a leading digit gets a `_` in front, the reserved
`id`, `seq` and `published_at` become `source_id`… JSON keys are kept as they are.

Conversions (`to_record`), by the product field's type; a blank value (empty or
spaces) leaves the field out, and the exchange then rejects the record if the
field is required:

- integer: `-12`; number: `3.5`, `1e3`; boolean: true/false, yes/no, y/n, t/f, 1/0;
- timestamp: RFC 3339 (`2014-09-30T17:14:00Z`, any offset), or a local date and
  time without an offset, read in the `zone` given (UTC unless told): ISO
  `2014-09-30[ T]17:14[:00]`, or US month-first `9/30/2014` / `09/30/2014`, alone
  or followed by a time. A date alone is midnight, unless the row has the
  companion time column: the field's name with the word `date` replaced by
  `time` (`date_of_stop` ← `date_of_stop` + `time_of_stop`), holding `17:14`,
  `17:14:00`, `5:14 PM` or NYC's `0514P`; a blank companion means midnight. At a
  daylight-saving fold the earlier time is taken. Records carry UTC (`…Z`);
- geo_point: a field `<stem>coordinates` is read from the row's columns
  `<stem>latitude` and `<stem>longitude` (or `lat` with `lon`, `lng` or `long`):
  `coordinates` ← `latitude` / `longitude`. A column of the field's own name may
  hold `(lat, lon)`, `lat, lon`, WKT `POINT (lon lat)` or a JSON `{"lat", "lon"}`.
  Both halves blank: no point; one blank, or out of ±90 / ±180: a RowError;
- string and image_ref: the text as it is.

Record ids. The exchange needs an `id` per record and treats the same id with
the same content as already published. With `id_column`, that column's value is
the id. Without it, the id is a hash of the row's raw values (every column, by
name), so publishing the file again never duplicates a record, and rows equal in
every column collapse into one record.
"""

import csv
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

RESERVED = frozenset({"id", "seq", "published_at"})
MAX_NAME = 63
BLANK_NAME = "column"
CSV_SUFFIXES = (".csv",)
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
JSON_SUFFIXES = (".json",)
LATITUDES = ("latitude", "lat")
LONGITUDES = ("longitude", "lon", "lng", "long")
POINT_SUFFIX = "coordinates"
ROW_ID_DOMAIN = b"exchange-connectors/tabular/row-id/v1\n"
ROW_ID_HEX = 32  # 128 bits: collisions out of reach for any file

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset({"true", "yes", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "n", "f", "0"})
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:\s*([AaPp])\.?[Mm]?\.?)?")
_NYC_TIME = re.compile(r"(\d{2})(\d{2})([AaPp])")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*")
_COORDINATE = r"([+-]?(?:\d+\.?\d*|\.\d+))"
_PAIR = re.compile(rf"\(?\s*{_COORDINATE}\s*,\s*{_COORDINATE}\s*\)?")
_WKT = re.compile(rf"POINT\s*\(\s*{_COORDINATE}\s+{_COORDINATE}\s*\)", re.IGNORECASE)


class SourceError(Exception):
    """A file that cannot be read at all: missing, not UTF-8, not CSV or JSON."""


class RowError(ValueError):
    """One row that cannot become a record; `field` is None for the row as a whole."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field, self.reason = field, reason


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record of a file: its 1-based number among the file's records, the
    physical line it starts on (None in a `.json` file), and its values by
    column; or, for a row that could not be read, `error`."""

    position: int
    line: int | None
    values: dict[str, Any]
    error: RowError | None = None


def normalise_name(header: str) -> str:
    """A valid field name (`^[a-z_][a-z0-9_]{0,62}$`, not reserved) for a header."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or BLANK_NAME
    if name[0].isdigit():
        name = f"_{name}"
    if name in RESERVED:
        name = f"source_{name}"
    return name[:MAX_NAME].rstrip("_") or BLANK_NAME


def normalised_header(headers: Sequence[str]) -> list[str]:
    """Each header's name; a repeated name gets `_2`, `_3`… (the first keeps it),
    skipping any name another header already has."""
    bases = [normalise_name(header) for header in headers]
    taken = set(bases)
    names: list[str] = []
    for base in bases:
        name, number = base, 1
        while name in taken and (name != base or name in names):
            number += 1
            suffix = f"_{number}"
            name = base[: MAX_NAME - len(suffix)] + suffix
        names.append(name)
        taken.add(name)
    return names


def rows(path: Path) -> Iterator[SourceRow]:
    """The file's rows in order. Raises SourceError (naming the file and, where it
    can, the line) for an unknown suffix or a file that cannot be read."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _csv_rows(path)
    if suffix in NDJSON_SUFFIXES:
        return _ndjson_rows(path)
    if suffix in JSON_SUFFIXES:
        return _json_rows(path)
    known = ", ".join((*CSV_SUFFIXES, *NDJSON_SUFFIXES, *JSON_SUFFIXES))
    raise SourceError(f"{path}: unknown kind of file {suffix!r}; use {known}")


@dataclass
class _Place:
    """Where in a file reading is, for the message if it fails."""

    line: int = 1


@contextmanager
def _reading(path: Path, place: _Place) -> Iterator[None]:
    """SourceError, naming the file and line, for a file that cannot be read."""
    try:
        yield
    except OSError as error:
        raise SourceError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not UTF-8 text, at or after line {place.line}") from None
    except json.JSONDecodeError as error:
        raise SourceError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
    except csv.Error as error:
        raise SourceError(f"{path}:{place.line}: not CSV: {error}") from None


def csv_header(path: Path) -> list[str]:
    """The CSV file's header row as written. Raises SourceError."""
    with _reading(path, _Place()), path.open(encoding="utf-8-sig", newline="") as file:
        header = next(csv.reader(file, strict=True), None)
    if header is None:
        raise SourceError(f"{path}: empty, no header row")
    return header


def _csv_rows(path: Path) -> Iterator[SourceRow]:
    place = _Place()
    with _reading(path, place), path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file, strict=True)
        header = next(reader, None)
        if header is None:
            raise SourceError(f"{path}: empty, no header row")
        names = normalised_header(header)
        position = 0
        place.line = reader.line_num + 1
        for cells in reader:
            start, place.line = place.line, reader.line_num + 1
            if not cells:
                continue
            position += 1
            if len(cells) == len(names):
                yield SourceRow(position, start, dict(zip(names, cells, strict=True)))
            else:
                reason = f"{len(cells)} values, but the header has {len(names)} columns"
                yield SourceRow(position, start, {}, RowError(None, reason))


def _ndjson_rows(path: Path) -> Iterator[SourceRow]:
    with _reading(path, _Place()), path.open("rb") as file:
        position = 0
        for line, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            position += 1
            try:
                value = json.loads(raw.decode("utf-8-sig").strip())
            except UnicodeDecodeError:
                yield SourceRow(position, line, {}, RowError(None, "not UTF-8 text"))
            except json.JSONDecodeError as error:
                reason = f"not JSON: {error.msg} (column {error.colno})"
                yield SourceRow(position, line, {}, RowError(None, reason))
            else:
                yield _object_row(position, line, value)


def _json_rows(path: Path) -> Iterator[SourceRow]:
    with _reading(path, _Place()), path.open("rb") as file:
        items = json.load(file)
    if not isinstance(items, list):
        raise SourceError(f"{path}: expected a JSON array of objects")
    for position, item in enumerate(items, start=1):
        yield _object_row(position, None, item)


def _object_row(position: int, line: int | None, value: Any) -> SourceRow:
    if isinstance(value, dict):
        return SourceRow(position, line, value)
    reason = f"expected a JSON object, not {type(value).__name__}"
    return SourceRow(position, line, {}, RowError(None, reason))


# Text → values. Each raises ValueError saying what it expected.


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_integer(text: str) -> int:
    if not _INTEGER.fullmatch(text := text.strip()):
        raise ValueError(f"{text!r} is not a whole number")
    number = int(text)
    if abs(number) >= 2**63:
        raise ValueError(f"{text} is out of the 64-bit range")
    return number


def parse_number(text: str) -> int | float:
    if not _NUMBER.fullmatch(text := text.strip()):
        raise ValueError(f"{text!r} is not a number")
    if _INTEGER.fullmatch(text):
        return parse_integer(text)
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large")
    return number


def parse_boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true/false, yes/no or 1/0")


def parse_date(text: str) -> date:
    """`9/30/2014`, `09/30/2014` (month first) or `2014-09-30`."""
    text = text.strip()
    if match := _US_DATE.fullmatch(text):
        month, day, year = (int(part) for part in match.groups())
    elif match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise ValueError(f"{text!r} is not a date (M/D/YYYY or YYYY-MM-DD)")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a day of the calendar") from None


def parse_time(text: str) -> time:
    """`17:14`, `17:14:00`, `5:14 PM`, or NYC's `0514P` (hhmm and A or P)."""
    text = text.strip()
    if match := _CLOCK.fullmatch(text):
        hour, minute = int(match[1]), int(match[2])
        second = int(match[3] or 0)
        micro = int((match[4] or "0").ljust(6, "0"))
        half = match[5]
    elif match := _NYC_TIME.fullmatch(text):
        hour, minute, second, micro, half = int(match[1]), int(match[2]), 0, 0, match[3]
    else:
        raise ValueError(f"{text!r} is not a time of day (HH:MM[:SS], H:MM PM or HHMMA/P)")
    if half is not None:
        if not 1 <= hour <= 12:
            raise ValueError(f"{text!r}: a 12-hour clock's hour is 1 to 12")
        hour = hour % 12 + (12 if half.upper() == "P" else 0)
    try:
        return time(hour, minute, second, micro)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day") from None


def parse_datetime(text: str) -> datetime:
    """A date with a time: ISO 8601 / RFC 3339 (aware if it has an offset), or
    `M/D/YYYY` followed by a time (naive). A date alone is not one."""
    text = text.strip()
    if _ISO_DATETIME.fullmatch(text):
        try:
            return datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date and time") from None
    day, _, clock = text.partition(" ")
    if clock and _US_DATE.fullmatch(day):
        return datetime.combine(parse_date(day), parse_time(clock))
    raise ValueError(f"{text!r} is not a date and time")


def parse_point(text: str) -> tuple[float, float]:
    """(latitude, longitude) from `(lat, lon)`, `lat, lon` or WKT `POINT (lon lat)`."""
    text = text.strip()
    if match := _PAIR.fullmatch(text):
        lat, lon = float(match[1]), float(match[2])
    elif match := _WKT.fullmatch(text):
        lon, lat = float(match[1]), float(match[2])
    else:
        raise ValueError(f"{text!r} is not a point: (lat, lon) or POINT (lon lat)")
    return checked_point(lat, lon)


def checked_point(lat: float, lon: float) -> tuple[float, float]:
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude {lat} is outside ±90")
    if not -180 <= lon <= 180:
        raise ValueError(f"longitude {lon} is outside ±180")
    return lat, lon


def companion_time(name: str) -> str | None:
    """The column a date field takes its time of day from: `date` → `time`, by word."""
    words = name.split("_")
    if "date" not in words:
        return None
    return "_".join("time" if word == "date" else word for word in words)


def point_columns(name: str, columns: Iterable[str]) -> tuple[str, str] | None:
    """The (latitude, longitude) columns a `<stem>coordinates` field is read from."""
    if not name.endswith(POINT_SUFFIX):
        return None
    stem = name.removesuffix(POINT_SUFFIX)
    present = set(columns)
    for lat in LATITUDES:
        for lon in LONGITUDES:
            if stem + lat in present and stem + lon in present:
                return stem + lat, stem + lon
    return None


def point_name(latitude_column: str) -> str | None:
    """The field a latitude column's pair becomes: `pickup_lat` → `pickup_coordinates`."""
    for lat in LATITUDES:
        if latitude_column == lat or latitude_column.endswith(f"_{lat}"):
            return latitude_column.removesuffix(lat) + POINT_SUFFIX
    return None


def to_utc(moment: datetime, zone: tzinfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is outside the years 1–9999 in UTC") from None
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    return text.rstrip("0").rstrip(".") + "Z"


# Rows → records.


def to_record(
    values: Mapping[str, Any],
    fields: Sequence[Mapping[str, Any]],
    *,
    id_column: str | None,
    zone: tzinfo = UTC,
) -> dict[str, Any]:
    """The record for one row of a product whose `fields` are the product's field
    specs as dicts (`{"name", "type", ...}`); columns no field reads are ignored.
    Raises RowError naming the field (or `id_column`) that cannot be converted."""
    record: dict[str, Any] = {"id": row_id(values, id_column)}
    for spec in fields:
        name, kind = spec["name"], spec["type"]
        convert = _CONVERTERS.get(kind)
        if convert is None:
            raise RowError(name, f"unknown field type {kind!r}")
        try:
            value = convert(name, values, zone)
        except ValueError as error:
            raise RowError(name, str(error)) from None
        if value is not None:
            record[name] = value
    return record


def row_id(values: Mapping[str, Any], id_column: str | None) -> str:
    """The record id: `id_column`'s value, else the hash of the raw row."""
    if id_column is not None:
        if id_column not in values:
            raise RowError(id_column, "no such column for the id")
        value = values[id_column]
        if is_blank(value) or isinstance(value, dict | list):
            raise RowError(id_column, "the id column is blank or not a single value")
        return str(value).strip()
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(ROW_ID_DOMAIN + canonical.encode()).hexdigest()[:ROW_ID_HEX]


def _present(name: str, values: Mapping[str, Any]) -> Any:
    value = values.get(name)
    return None if is_blank(value) else value


def _string(name: str, values: Mapping[str, Any], zone: tzinfo) -> str | None:
    value = _present(name, values)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise ValueError(f"expected text, not {type(value).__name__}")


def _image_ref(name: str, values: Mapping[str, Any], zone: tzinfo) -> Any:
    """A reference, or a JSON object with the image's boxes, which the exchange checks."""
    value = _present(name, values)
    if value is None or isinstance(value, str | dict):
        return value
    raise ValueError(f"expected a reference, not {type(value).__name__}")


def _integer(name: str, values: Mapping[str, Any], zone: tzinfo) -> int | None:
    value = _present(name, values)
    if value is None or isinstance(value, str):
        return value if value is None else parse_integer(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    if abs(value) >= 2**63:
        raise ValueError(f"{value} is out of the 64-bit range")
    return value


def _number(name: str, values: Mapping[str, Any], zone: tzinfo) -> int | float | None:
    value = _present(name, values)
    if value is None or isinstance(value, str):
        return value if value is None else parse_number(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    if isinstance(value, int) and abs(value) >= 2**63:
        raise ValueError(f"{value} is out of the 64-bit range")
    return value


def _boolean(name: str, values: Mapping[str, Any], zone: tzinfo) -> bool | None:
    value = _present(name, values)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_boolean(value)
    raise ValueError(f"{value!r} is not true or false")


def _timestamp(name: str, values: Mapping[str, Any], zone: tzinfo) -> str | None:
    value = _present(name, values)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a date or time as text, not {type(value).__name__}")
    try:
        return to_utc(parse_datetime(value), zone)
    except ValueError:
        day = parse_date(value)  # its error says which forms are read
    clock = time()
    companion = companion_time(name)
    if companion is not None and (text := _present(companion, values)) is not None:
        try:
            clock = parse_time(str(text))
        except ValueError as error:
            raise ValueError(f"its time of day, column {companion}: {error}") from None
    return to_utc(datetime.combine(day, clock), zone)


def _geo_point(name: str, values: Mapping[str, Any], zone: tzinfo) -> dict[str, float] | None:
    value = _present(name, values)
    if isinstance(value, str):
        lat, lon = parse_point(value)
    elif isinstance(value, dict) and set(value) == {"lat", "lon"}:
        lat, lon = _coordinate(value["lat"], "lat"), _coordinate(value["lon"], "lon")
        lat, lon = checked_point(lat, lon)
    elif value is not None:
        raise ValueError('expected "(lat, lon)" or {"lat": …, "lon": …}')
    elif (columns := point_columns(name, values)) is not None:
        halves = [_present(column, values) for column in columns]
        if halves == [None, None]:
            return None
        if None in halves:
            blank = columns[halves.index(None)]
            raise ValueError(f"column {blank} is blank but its pair is not")
        lat, lon = (_coordinate(half, column) for half, column in zip(halves, columns, strict=True))
        lat, lon = checked_point(lat, lon)
    else:
        return None
    return {"lat": lat, "lon": lon}


def _coordinate(value: Any, column: str) -> float:
    try:
        number = parse_number(value) if isinstance(value, str) else value
    except ValueError as error:
        raise ValueError(f"column {column}: {error}") from None
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValueError(f"column {column}: {value!r} is not a number")
    return float(number)


_CONVERTERS = {
    "string": _string,
    "image_ref": _image_ref,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "geo_point": _geo_point,
}
