"""Product definitions inferred from files, the `product infer` / `product register`
commands, and the real-data test: three third-party CSVs (tests/data/) inferred,
registered, converted and published through the exchange's HTTP API, every row
the conversion accepted accepted by the exchange."""

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

from connectors import ExchangeClient
from connectors.inference import DEFAULT_PURPOSES, infer, inference
from connectors.tabular import RowError, SourceError, rows, to_record
from exchange.cli import app as cli
from tests.connectors.conftest import Live
from tests.products import captures_product

DATA = Path(__file__).parent.parent / "data"
MONTGOMERY = DATA / "montgomery_traffic_violations_sample.csv"
NYC_PARKING = DATA / "nyc_parking_violations_fy2014_sample.csv"
NYC_CAMERA = DATA / "nyc_camera_tickets_extract.csv"
NEW_YORK = ZoneInfo("America/New_York")  # both counties' local time
BATCH = 1000


def write_csv(path: Path, columns: dict[str, list[str]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {spec["name"]: spec for spec in definition["fields"]}


def test_types_follow_most_values_and_codes_stay_text(tmp_path: Path) -> None:
    n = 200
    path = write_csv(
        tmp_path / "counts.csv",
        {
            "Year": ["2014"] * (n - 2) + ["2202", "0"],  # impossible, but whole numbers
            "Count": [str(i) for i in range(n - 1)] + ["many"],  # one bad value of 200
            "Half": [str(i) for i in range(n - 10)] + ["x"] * 10,  # 5% bad: text
            "Precinct": ["0013", "110"] * (n // 2),  # leading zeros: a code
            "Ratio": ["0.5", "2"] * (n // 2),
            "Belts": ["Yes", "No"] * (n // 2),
            "Side": ["F", "O"] * (n // 2),  # F is not false
            "Seen At": ["2014-09-30T17:14:00Z"] * n,
            "Model": ["CIVIC"] * (n - 1) + [""],
            "Nothing": [""] * n,
        },
    )
    result = inference(path, "counts")
    fields = by_name(result.definition)
    assert {name: spec["type"] for name, spec in fields.items()} == {
        "year": "integer",
        "count": "integer",
        "half": "string",
        "precinct": "string",
        "ratio": "number",
        "belts": "boolean",
        "side": "string",
        "seen_at": "timestamp",
        "model": "string",
    }
    assert fields["model"]["required"] is False
    assert fields["year"]["required"] is True
    assert fields["year"]["description"] == 'From column "Year".'
    assert "dropped 1 columns with no values: nothing" in result.notes
    assert "count: 1 of 200 values are not integer ('many'); their rows will be rejected" in (
        result.notes
    )


def test_a_date_and_its_time_column_make_one_timestamp_and_lat_lon_one_point(
    tmp_path: Path,
) -> None:
    path = write_csv(
        tmp_path / "stops.csv",
        {
            "Date Of Stop": ["09/30/2014", "3/31/2015"],
            "Time Of Stop": ["23:51:00", "5:02 PM"],
            "Issue Date": ["08/04/2013", "08/05/2013"],
            "Violation Time": ["0752A", "1240P"],  # no companion date: text
            "Latitude": ["38.98", ""],
            "Longitude": ["-77.09", ""],
            "Pickup Lat": ["1.5", "2"],
            "Pickup Lng": ["3", "4"],
            "Geolocation": ["(38.98, -77.09)", ""],
        },
    )
    definition = infer(path, "stops")
    fields = by_name(definition)
    assert list(fields) == [
        "date_of_stop",
        "issue_date",
        "violation_time",
        "coordinates",
        "pickup_coordinates",
        "geolocation",
    ]
    assert fields["date_of_stop"]["type"] == "timestamp"
    assert (
        fields["date_of_stop"]["description"] == 'From columns "Date Of Stop" and "Time Of Stop".'
    )
    assert fields["violation_time"]["type"] == "string"
    points = [fields[name] for name in ("coordinates", "pickup_coordinates", "geolocation")]
    assert [(p["type"], p["sensitivity"], p["required"]) for p in points] == [
        ("geo_point", "location", False),
        ("geo_point", "location", True),
        ("geo_point", "location", False),
    ]
    values = dict(next(iter(rows(path))).values)
    record = to_record(values, definition["fields"], id_column=None, zone=NEW_YORK)
    assert record["date_of_stop"] == "2014-10-01T03:51:00Z"
    assert record["coordinates"] == record["geolocation"] == {"lat": 38.98, "lon": -77.09}


@pytest.mark.parametrize(
    ("header", "values", "sensitivity"),
    [
        ("Plate ID", ["ABC1234", "XYZ987"], "personal"),
        ("Registration Number", ["1", "2"], "personal"),
        ("Tag", [f"{chr(65 + i % 26)}{i:04d}K" for i in range(40)], "personal"),  # plate-like
        ("Plate Type", ["PAS", "COM"], "none"),
        ("Driver City", ["ROCKVILLE", "SILVER SPRING"], "personal"),
        ("Gender", ["M", "F"], "personal"),
        ("DL State", ["MD", "VA"], "personal"),
        ("Commercial License", ["No", "Yes"], "personal"),
        ("Owner Email", ["a@example.org", "b@example.org"], "personal"),
        ("Date Of Birth", ["1/2/1990", "3/4/1985"], "personal"),
        ("Street Name", ["W 175 ST", "BROADWAY"], "location"),
        ("Latitude", ["38.9", "39.1"], "location"),  # alone, it stays a number
        ("Notes", ["first line\nsecond", "short"], "sensitive"),
        (
            "Narrative",
            [f"{i} long words describing what the officer saw there" for i in range(60)],
            "sensitive",
        ),
        ("Violation Description", ["BUS LANE VIOLATION", "FAILURE TO STOP AT RED LIGHT"], "none"),
        ("Violation Time", [f"{i % 12 + 1:02d}{i % 60:02d}P" for i in range(40)], "none"),
        ("Make", ["FORD", "TOYOT"], "none"),
    ],
)
def test_sensitivity_is_guessed_from_headers_and_values(
    tmp_path: Path, header: str, values: list[str], sensitivity: str
) -> None:
    path = write_csv(tmp_path / "one.csv", {header: values})
    (spec,) = infer(path, "one")["fields"]
    assert spec["sensitivity"] == sensitivity


def test_the_tier_is_regulated_when_anything_personal_is_found(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "counts.csv", {"Make": ["FORD"], "Year": ["2014"]})
    personal = write_csv(tmp_path / "plates.csv", {"Plate": ["GBB9093"], "Year": ["2014"]})
    assert infer(plain, "counts")["tier"] == "open"
    regulated = infer(personal, "plates")
    assert regulated["tier"] == "regulated"
    assert regulated["subject_field"] == "plate"
    assert regulated["purposes"] == list(DEFAULT_PURPOSES)
    assert "law_enforcement" not in regulated["purposes"]


def test_the_definition_is_deterministic_and_a_sample_reads_the_first_rows(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "Traffic-Stops 2014.csv", {"N": ["1", "2", "x", "y"]})
    assert infer(path, "stops") == infer(path, "stops")
    assert by_name(infer(path, "stops", sample=2))["n"]["type"] == "integer"
    definition = infer(path, "stops")
    assert by_name(definition)["n"]["type"] == "string"
    assert definition["title"] == "Traffic Stops 2014"
    assert definition["description"].startswith("Inferred from Traffic-Stops 2014.csv (4 records)")


def test_json_records_are_typed_as_they_are_published_unconverted(tmp_path: Path) -> None:
    path = tmp_path / "captures.ndjson"
    lines = [
        {"id": "c1", "at": "2026-11-28T08:15:02Z", "day": "2026-11-28", "n": 1, "speed": 4.5},
        {"id": "c2", "at": "2026-11-28T09:00:00+08:00", "day": "2026-11-29", "n": "2"},
        {"id": "c3", "where": {"lat": 23.1, "lon": 113.3}, "night": True, "Lane No": 2},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = inference(path, "captures")
    fields = {
        name: (spec["type"], spec["required"]) for name, spec in by_name(result.definition).items()
    }
    assert fields == {
        "at": ("timestamp", False),
        "day": ("string", False),  # a date without a zone is not a timestamp the exchange takes
        "n": ("string", False),  # 1 and "2": the exchange would refuse one of them either way
        "speed": ("number", False),
        "where": ("geo_point", False),
        "night": ("boolean", False),
        "lane_no": ("integer", False),
    }
    assert "key 'Lane No' is not a field name: rename it lane_no in the file" in result.notes


def test_bad_slugs_samples_and_files_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "empty.csv", {"A": [""], "B": [" "]})
    with pytest.raises(ValueError, match="not a product slug"):
        infer(path, "Traffic Stops")
    with pytest.raises(ValueError, match="at least one row"):
        infer(path, "stops", sample=0)
    with pytest.raises(SourceError, match="no column has any value"):
        infer(path, "stops")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["product", *args], env=env, catch_exceptions=False)


def test_infer_prints_the_definition_and_its_notes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "plates.csv", {"Plate": ["GBB9093"], "Empty": [""]})
    result = invoke("infer", str(path), "--slug", "plates")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == infer(path, "plates")
    assert "note: dropped 1 columns with no values: empty" in result.stderr

    out = tmp_path / "plates.json"
    written = invoke("infer", str(path), "--slug", "plates", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert written.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8")) == infer(path, "plates")


def test_infer_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    missing = invoke("infer", str(tmp_path / "missing.csv"), "--slug", "plates")
    assert missing.exit_code == 1
    assert "error:" in missing.stderr and "missing.csv: No such file" in missing.stderr
    slug = invoke("infer", str(write_csv(tmp_path / "a.csv", {"A": ["1"]})), "--slug", "A B")
    assert slug.exit_code == 1
    assert "'A B' is not a product slug" in slug.stderr


def test_register_creates_the_product_or_prints_the_refusal_by_field(
    live: Live, tmp_path: Path
) -> None:
    path = tmp_path / "captures.json"
    definition = captures_product()
    definition["fields"][3]["type"] = "plate"
    path.write_text(json.dumps(definition), encoding="utf-8")
    refused = invoke("register", str(path), env=live.environment("fleet"))
    assert refused.exit_code == 1
    assert f"error: {path}: 400 " in refused.stderr
    assert "  fields.3 (plate).type: Input should be 'string'" in refused.stderr
    assert "Traceback" not in refused.output

    path.write_text("{\n  'slug': 1\n}", encoding="utf-8")
    broken = invoke("register", str(path), env=live.environment("fleet"))
    assert broken.exit_code == 1
    assert f"error: {path}:2:3: not JSON: Expecting property name" in broken.stderr

    path.write_text(json.dumps(captures_product()), encoding="utf-8")
    registered = invoke("register", str(path), env=live.environment("fleet"))
    assert registered.exit_code == 0, registered.output
    assert registered.stdout == "registered violation-captures version 1\n"
    assert live.exchange.get("fleet", "/v1/products/violation-captures").status_code == 200


# The real-data test: the files in tests/data/, as their publishers exported them.


@pytest.fixture
def fleet(live: Live) -> Iterator[ExchangeClient]:
    party = live.party("fleet")
    with ExchangeClient(live.url, party.client_id, party.client_secret) as client:
        yield client


class Published:
    """A file inferred and registered with the commands, converted with to_record,
    and published in batches through the SDK."""

    def __init__(
        self,
        live: Live,
        client: ExchangeClient,
        path: Path,
        slug: str,
        *,
        id_column: str | None,
        workdir: Path,
    ) -> None:
        definition_file = workdir / f"{slug}.json"
        inferred = invoke("infer", str(path), "--slug", slug, "--out", str(definition_file))
        assert inferred.exit_code == 0, inferred.output
        self.notes = inferred.stderr
        self.definition = json.loads(definition_file.read_text(encoding="utf-8"))
        registered = invoke("register", str(definition_file), env=live.environment("fleet"))
        assert registered.exit_code == 0, registered.output
        fields = [spec.model_dump() for spec in client.product(slug).fields]
        self.rows: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.failures: list[RowError] = []
        for row in rows(path):
            assert row.error is None
            self.rows.append(row.values)
            try:
                self.records.append(
                    to_record(row.values, fields, id_column=id_column, zone=NEW_YORK)
                )
            except RowError as error:
                self.failures.append(error)
        self.accepted = self.unchanged = 0
        for start in range(0, len(self.records), BATCH):
            outcome = client.publish(slug, self.records[start : start + BATCH], atomic=False)
            assert outcome.rejected == []
            self.accepted += outcome.accepted
            self.unchanged += outcome.unchanged
        self.count = client.product(slug).record_count
        self.ids = [record["id"] for record in self.records]
        assert self.count == len(set(self.ids))  # every distinct valid row, once

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        return by_name(self.definition)


def test_montgomery_traffic_stops(live: Live, fleet: ExchangeClient, tmp_path: Path) -> None:
    stops = Published(live, fleet, MONTGOMERY, "montgomery-stops", id_column=None, workdir=tmp_path)

    assert len(stops.rows) == 4991  # 5,000 lines: 8 descriptions hold a line break
    assert stops.failures == []
    assert len(set(stops.ids)) == 4989  # two rows repeat others exactly: one record each
    assert (stops.accepted, stops.unchanged, stops.count) == (4989, 2, 4989)

    fields = stops.fields
    assert stops.definition["tier"] == "regulated"
    assert "subject_field" not in stops.definition  # no plates in this file
    assert fields["date_of_stop"]["type"] == "timestamp"
    assert {"time_of_stop", "latitude", "longitude"}.isdisjoint(fields)
    assert (fields["coordinates"]["type"], fields["coordinates"]["required"]) == (
        "geo_point",
        False,
    )
    assert fields["description"]["sensitivity"] == "sensitive"
    for person in ("race", "gender", "driver_city", "driver_state", "dl_state"):
        assert fields[person]["sensitivity"] == "personal"
    assert (fields["year"]["type"], fields["year"]["required"]) == ("integer", False)

    multiline = [i for i, row in enumerate(stops.rows) if "\n" in row["description"]]
    assert len(multiline) == 8
    for i in multiline[:2]:
        read = fleet.record("montgomery-stops", stops.ids[i], purpose="research").record
        assert read["description"] == stops.rows[i]["description"]

    # Year 2202 (and 0) are impossible but whole numbers: published as the county gave them.
    future = [i for i, row in enumerate(stops.rows) if row["year"] == "2202"]
    assert len(future) == 11
    read = fleet.record("montgomery-stops", stops.ids[future[0]], purpose="research").record
    assert read["year"] == 2202
    first = fleet.record("montgomery-stops", stops.ids[0], purpose="research").record
    assert (stops.rows[0]["date_of_stop"], stops.rows[0]["time_of_stop"]) == (
        "09/30/2014",
        "23:51:00",
    )
    assert first["date_of_stop"] == "2014-10-01T03:51:00Z"
    assert "coordinates" not in first  # this stop has no latitude or longitude


def test_nyc_parking_violations(live: Live, fleet: ExchangeClient, tmp_path: Path) -> None:
    tickets = Published(live, fleet, NYC_PARKING, "nyc-parking", id_column=None, workdir=tmp_path)

    assert len(tickets.rows) == 4999
    assert tickets.failures == []
    assert (tickets.accepted, tickets.unchanged, tickets.count) == (4999, 0, 4999)

    fields = tickets.fields
    empty = [
        "violation_description",
        "no_standing_or_stopping_violation",
        "hydrant_violation",
        "double_parking_violation",
        "latitude",
        "longitude",
        "community_board",
        "community_council",
        "census_tract",
        "bin",
        "bbl",
        "nta",
    ]
    assert set(empty).isdisjoint(fields)
    assert "coordinates" not in fields
    assert f"note: dropped 12 columns with no values: {', '.join(empty)}" in tickets.notes
    assert (
        fields["days_parking_in_effect"]["description"] == 'From column "Days Parking In Effect".'
    )
    assert fields["unregistered_vehicle"]["type"] == "integer"
    assert fields["plate_id"]["sensitivity"] == "personal"
    assert tickets.definition["subject_field"] == "plate_id"
    assert tickets.definition["tier"] == "regulated"
    assert (fields["violation_time"]["type"], fields["issue_date"]["type"]) == (
        "string",
        "timestamp",
    )
    assert fields["street_name"]["sensitivity"] == "location"
    assert "note: unique and never blank: summons_number" in tickets.notes

    first = fleet.record("nyc-parking", tickets.ids[0], purpose="research").record
    assert (first["plate_id"], first["violation_time"]) == ("GBB9093", "0752A")
    assert first["issue_date"] == "2013-08-04T04:00:00Z"  # 08/04/2013, New York midnight


def test_nyc_camera_tickets(live: Live, fleet: ExchangeClient, tmp_path: Path) -> None:
    tickets = Published(
        live, fleet, NYC_CAMERA, "nyc-camera", id_column="summons_number", workdir=tmp_path
    )

    assert tickets.failures == []
    assert (tickets.accepted, tickets.count) == (1000, 1000)
    fields = tickets.fields
    assert list(fields) == [
        "summons_number",
        "plate_id",
        "registration_state",
        "plate_type",
        "issue_date",
        "violation_code",
        "vehicle_body_type",
        "vehicle_make",
        "violation_description",
    ]
    assert fields["plate_id"]["sensitivity"] == "personal"
    assert fields["plate_type"]["sensitivity"] == "none"
    assert (
        fields["violation_description"]["sensitivity"],
        fields["violation_description"]["required"],
    ) == ("none", False)

    first = fleet.record("nyc-camera", "4006478550", purpose="research").record
    assert first["issue_date"] == "2016-10-05T04:00:00Z"  # 10/5/2016: M/D/YYYY unpadded
    assert (first["plate_id"], first["violation_description"]) == ("VAD7274", "BUS LANE VIOLATION")
    cameras = [
        row
        for row in tickets.rows
        if row["violation_description"] == "PHTO SCHOOL ZN SPEED VIOLATION"
    ]
    assert len(cameras) == 140
