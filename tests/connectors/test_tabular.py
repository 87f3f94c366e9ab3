"""Reading publishers' files into rows, and CSV rows into records: names, formats,
conversions, ids, and the errors that name what is wrong."""

import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.tabular import (
    RowError,
    SourceError,
    normalise_name,
    normalised_header,
    row_id,
    rows,
    to_record,
)

NAME = r"^[a-z_][a-z0-9_]{0,62}$"  # the exchange's field name pattern
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Date Of Stop", "date_of_stop"),
        ("Days Parking In Effect    ", "days_parking_in_effect"),
        ("Unregistered Vehicle?", "unregistered_vehicle"),
        ("Street Code1", "street_code1"),
        ("Latitude/Longitude", "latitude_longitude"),
        ("  SubAgency ", "subagency"),
        ("ID", "source_id"),
        ("published at", "source_published_at"),
        ("2nd Street", "_2nd_street"),
        ("Café №", "cafe_no"),
        ("???", "column"),
        ("", "column"),
        ("x" * 80, "x" * 63),
    ],
)
def test_headers_become_valid_field_names(header: str, name: str) -> None:
    assert normalise_name(header) == name
    assert re.match(NAME, name)


def test_repeated_headers_get_numbered_deterministically() -> None:
    assert normalised_header(["Plate", "plate", "PLATE "]) == ["plate", "plate_2", "plate_3"]
    # a_2 is another header's own name, so the second "a" skips it
    assert normalised_header(["a", "A", "a_2"]) == ["a", "a_3", "a_2"]
    long = normalised_header(["y" * 70, "y" * 70])
    assert long == ["y" * 63, "y" * 61 + "_2"]


def test_csv_rows_keep_quoted_line_breaks_and_count_records_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "stops.csv"
    path.write_bytes(
        b'\xef\xbb\xbfDate Of Stop,Description\r\n09/30/2014,"TWO\r\nLINES"\r\n\r\n'
        b"03/31/2015,ONE\r\n"
    )
    read = list(rows(path))
    assert [(row.position, row.line) for row in read] == [(1, 2), (2, 5)]
    assert read[0].values == {"date_of_stop": "09/30/2014", "description": "TWO\r\nLINES"}
    assert all(row.error is None for row in read)


def test_a_csv_row_of_the_wrong_width_is_a_row_error_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("a,b\n1,2\n3\n4,5,6\n7,8\n", encoding="utf-8")
    read = list(rows(path))
    assert [row.values for row in read] == [{"a": "1", "b": "2"}, {}, {}, {"a": "7", "b": "8"}]
    errors = [row.error for row in read if row.error]
    assert [(error.field, error.reason) for error in errors] == [
        (None, "1 values, but the header has 2 columns"),
        (None, "3 values, but the header has 2 columns"),
    ]
    assert [row.line for row in read] == [2, 3, 4, 5]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin1.csv", b"a,b\n1,caf\xe9\n", "latin1.csv: not UTF-8 text"),
        ("empty.csv", b"", "empty.csv: empty, no header row"),
        ("quotes.csv", b'a,b\n1,"x"y\n', "quotes.csv:2: not CSV"),
        ("broken.json", b'[{"a": 1},', "broken.json:1: not JSON"),
        ("object.json", b'{"a": 1}', "object.json: expected a JSON array of objects"),
        ("table.xlsx", b"", "unknown kind of file '.xlsx'"),
    ],
)
def test_files_that_cannot_be_read_raise_source_errors(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=re.escape(message)):
        list(rows(path))


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nowhere\.ndjson: No such file"):
        list(rows(tmp_path / "nowhere.ndjson"))


def test_ndjson_lines_that_are_not_objects_are_row_errors(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"Plate": "GBB9093"}\n\n{"broken\n[1, 2]\n\xff\n{"n": 2}\n')
    read = list(rows(path))
    assert [(row.position, row.line) for row in read] == [(1, 1), (2, 3), (3, 4), (4, 5), (5, 6)]
    assert read[0].values == {"Plate": "GBB9093"}  # JSON keys are kept as they are
    assert read[4].values == {"n": 2}
    reasons = [row.error.reason for row in read[1:4] if row.error]
    assert reasons[0] == "not JSON: Unterminated string starting at (column 2)"
    assert reasons[1:] == ["expected a JSON object, not list", "not UTF-8 text"]


def test_a_json_array_gives_one_row_per_element(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text('[{"a": 1}, "text", {"a": 2}]', encoding="utf-8")
    read = list(rows(path))
    assert [(row.position, row.line, row.values) for row in read] == [
        (1, None, {"a": 1}),
        (2, None, {}),
        (3, None, {"a": 2}),
    ]
    assert read[1].error is not None
    assert read[1].error.reason == "expected a JSON object, not str"


def field(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "sensitivity": "none", "required": False}


def convert(kind: str, value: Any, name: str = "value", **others: Any) -> Any:
    record = to_record({name: value, **others}, [field(name, kind)], id_column=None, zone=NEW_YORK)
    return record.get(name)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("integer", "2202", 2202),
        ("integer", " -7 ", -7),
        ("integer", 2014.0, 2014),
        ("number", "38.983555", 38.983555),
        ("number", "40", 40),
        ("number", "1e3", 1000.0),
        ("boolean", "Yes", True),
        ("boolean", "no", False),
        ("boolean", "0", False),
        ("string", "PARK RD AT HUNGERFORD DR", "PARK RD AT HUNGERFORD DR"),
        ("string", 12, "12"),
        ("image_ref", "captures/1.jpg", "captures/1.jpg"),
        ("timestamp", "2014-09-30T17:14:00+02:00", "2014-09-30T15:14:00Z"),
        ("timestamp", "2014-09-30 17:14", "2014-09-30T21:14:00Z"),
        ("timestamp", "9/30/2014 5:14 PM", "2014-09-30T21:14:00Z"),
        ("timestamp", "10/5/2016", "2016-10-05T04:00:00Z"),
        ("timestamp", "01/25/2013", "2013-01-25T05:00:00Z"),  # winter: UTC-5
        ("timestamp", "11/2/2014 1:30", "2014-11-02T05:30:00Z"),  # the fold: the earlier
        (
            "geo_point",
            "(38.983555, -77.0941416666667)",
            {"lat": 38.983555, "lon": -77.0941416666667},
        ),
        ("geo_point", "39.1, -77.2", {"lat": 39.1, "lon": -77.2}),
        ("geo_point", "POINT (-73.9 40.7)", {"lat": 40.7, "lon": -73.9}),
        ("geo_point", {"lat": 40, "lon": -73.5}, {"lat": 40.0, "lon": -73.5}),
    ],
)
def test_values_convert_to_the_fields_types(kind: str, value: Any, expected: Any) -> None:
    assert convert(kind, value) == expected


@pytest.mark.parametrize(
    ("time_of_stop", "expected"),
    [
        ("23:51:00", "2014-10-01T03:51:00Z"),
        ("0752A", "2014-09-30T11:52:00Z"),
        ("1240P", "2014-09-30T16:40:00Z"),
        ("1205A", "2014-09-30T04:05:00Z"),
        ("", "2014-09-30T04:00:00Z"),  # no time of day: midnight
    ],
)
def test_a_date_takes_its_time_of_day_from_the_companion_column(
    time_of_stop: str, expected: str
) -> None:
    assert convert("timestamp", "09/30/2014", "date_of_stop", time_of_stop=time_of_stop) == expected


def test_local_times_are_utc_unless_a_zone_is_given() -> None:
    record = to_record({"at": "9/30/2014"}, [field("at", "timestamp")], id_column=None)
    assert record["at"] == "2014-09-30T00:00:00Z"


def test_a_coordinates_field_reads_the_latitude_and_longitude_columns() -> None:
    specs = [field("coordinates", "geo_point"), field("pickup_coordinates", "geo_point")]
    values = {"latitude": "38.98", "longitude": "-77.09", "pickup_lat": "1", "pickup_lng": "2"}
    record = to_record(values, specs, id_column=None)
    assert record["coordinates"] == {"lat": 38.98, "lon": -77.09}
    assert record["pickup_coordinates"] == {"lat": 1.0, "lon": 2.0}
    blank = to_record({"latitude": "", "longitude": " "}, specs, id_column=None)
    assert "coordinates" not in blank


def test_blank_values_leave_the_field_out() -> None:
    specs = [field("year", "integer"), field("model", "string"), field("at", "timestamp")]
    record = to_record({"year": "", "model": "  ", "at": None}, specs, id_column=None)
    assert set(record) == {"id"}


@pytest.mark.parametrize(
    ("specs", "values", "where", "reason"),
    [
        ([field("year", "integer")], {"year": "20O2"}, "year", "'20O2' is not a whole number"),
        ([field("year", "integer")], {"year": "9" * 20}, "year", "out of the 64-bit range"),
        ([field("speed", "number")], {"speed": "fast"}, "speed", "'fast' is not a number"),
        ([field("speed", "number")], {"speed": "1e999"}, "speed", "too large"),
        ([field("belts", "boolean")], {"belts": "maybe"}, "belts", "is not true/false"),
        ([field("at", "timestamp")], {"at": "13/45/2014"}, "at", "not a day of the calendar"),
        ([field("at", "timestamp")], {"at": "yesterday"}, "at", "is not a date (M/D/YYYY"),
        (
            [field("issue_date", "timestamp")],
            {"issue_date": "08/04/2013", "issue_time": "1375P"},
            "issue_date",
            "its time of day, column issue_time: '1375P': a 12-hour clock's hour is 1 to 12",
        ),
        (
            [field("coordinates", "geo_point")],
            {"latitude": "91.5", "longitude": "-77"},
            "coordinates",
            "latitude 91.5 is outside ±90",
        ),
        (
            [field("coordinates", "geo_point")],
            {"latitude": "38.9", "longitude": ""},
            "coordinates",
            "column longitude is blank but its pair is not",
        ),
        (
            [field("coordinates", "geo_point")],
            {"latitude": "38.9", "longitude": "west"},
            "coordinates",
            "column longitude: 'west' is not a number",
        ),
        ([field("spot", "geo_point")], {"spot": "(38.9, 181)"}, "spot", "outside ±180"),
        ([field("x", "colour")], {"x": "red"}, "x", "unknown field type 'colour'"),
    ],
)
def test_values_that_cannot_convert_raise_row_errors_naming_the_field(
    specs: list[dict[str, Any]], values: dict[str, Any], where: str, reason: str
) -> None:
    with pytest.raises(RowError) as raised:
        to_record(values, specs, id_column=None)
    assert raised.value.field == where
    assert reason in raised.value.reason


def test_ids_come_from_the_id_column_or_a_hash_of_the_whole_row() -> None:
    row = {"summons_number": "1283294138", "plate_id": "GBB9093"}
    assert to_record(row, [], id_column="summons_number") == {"id": "1283294138"}
    hashed = row_id(row, None)
    assert re.fullmatch(r"[0-9a-f]{32}", hashed)
    assert row_id(dict(reversed(row.items())), None) == hashed  # column order does not matter
    assert row_id({**row, "plate_id": "GBB9094"}, None) != hashed
    with pytest.raises(RowError, match="summons_number: the id column is blank"):
        row_id({**row, "summons_number": " "}, "summons_number")
    with pytest.raises(RowError, match="ticket: no such column"):
        row_id(row, "ticket")
