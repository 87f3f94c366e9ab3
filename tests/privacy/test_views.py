"""The raw and protected views: masking, generalising, redacting, withholding. Pure
functions."""

import copy
from datetime import UTC, datetime
from typing import Any

import h3
import pytest

from exchange.catalog.models import FieldSpec
from exchange.privacy.views import (
    Bands,
    Shaping,
    apply,
    bucket_start,
    bucket_time,
    fitting,
    generalize_point,
    label,
    mask,
    redact_image,
    round_to,
    treatments,
)

SHAPING = Shaping(pseudonymize=lambda value: f"ps_of_{value}", resolution=8)

# --- mask ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plate", "masked"),
    [
        ("粤A·12345", "粤A·1****"),
        ("粤A·D12345", "粤A·D*****"),
        ("粤A12345", "粤A·1****"),
        ("粤AD12345", "粤A·D*****"),
        ("粤B·A8K21", "粤B·A****"),
        ("京C-99999", "京C·9****"),
        ("沪A.12345", "沪A·1****"),
        ("粤A 12345", "粤A·1****"),
        (" 粤A·12345 ", "粤A·1****"),
    ],
)
def test_mask_keeps_province_city_and_first_character_of_a_plate(plate: str, masked: str) -> None:
    assert mask(plate) == masked


def test_a_masked_plate_hides_the_rest_of_the_tail() -> None:
    assert mask("粤A·12345") == mask("粤A·19999") == mask("粤A19876")
    assert mask("粤A·D12345") != mask("粤A·12345")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("ABCDEFGH", "AB******"),
        ("Zhang Wei", "Zh*******"),
        ("13800138000", "13*********"),
        ("abc", "***"),
        ("x", "*"),
        ("", ""),
        ("粤A·1234", "粤******"),  # too short for a plate: a generic string
    ],
)
def test_mask_keeps_a_quarter_of_other_text(text: str, masked: str) -> None:
    assert mask(text) == masked
    assert len(mask(text)) == len(text)
    assert mask(text)[: len(text) // 4] == text[: len(text) // 4]


@pytest.mark.parametrize("value", [12345, 1.5, True, None, {"plate": "粤A·12345"}, ["粤A·12345"]])
def test_mask_of_a_non_string_is_none(value: Any) -> None:
    assert mask(value) is None


# --- generalize_point (H3) ------------------------------------------------------------------


def test_nearby_points_fall_in_the_same_cell_given_by_id_and_centre() -> None:
    here = generalize_point({"lat": 23.1246, "lon": 113.3612}, 8)
    near = generalize_point({"lat": 23.1250, "lon": 113.3615}, 8)
    assert here == near
    assert here["cell"] == "h3:" + h3.latlng_to_cell(23.1246, 113.3612, 8)
    lat, lon = h3.cell_to_latlng(here["cell"].removeprefix("h3:"))
    assert (here["lat"], here["lon"]) == (round(lat, 6), round(lon, 6))


def test_points_far_apart_get_other_cells() -> None:
    here = generalize_point({"lat": 23.1246, "lon": 113.3612}, 8)
    across_town = generalize_point({"lat": 23.1646, "lon": 113.3112}, 8)
    assert here["cell"] != across_town["cell"]


@pytest.mark.parametrize("resolution", [6, 7, 8, 9, 10])
def test_the_centre_is_within_a_cell_of_the_point(resolution: int) -> None:
    point = {"lat": 23.124613, "lon": 113.361247}
    cell = generalize_point(point, resolution)
    edge_km = h3.average_hexagon_edge_length(resolution, "km")
    distance = h3.great_circle_distance((point["lat"], point["lon"]), (cell["lat"], cell["lon"]))
    assert distance <= edge_km * 1.2
    assert h3.get_resolution(cell["cell"].removeprefix("h3:")) == resolution


def test_a_coarser_resolution_gives_the_parent_cell() -> None:
    point = {"lat": 23.124613, "lon": 113.361247}
    fine = generalize_point(point, 9)["cell"].removeprefix("h3:")
    coarse = generalize_point(point, 7)["cell"].removeprefix("h3:")
    assert h3.cell_to_parent(fine, 7) == coarse


def test_generalize_point_drops_the_exact_coordinates() -> None:
    point = {"lat": 23.124613, "lon": 113.361247}
    cell = generalize_point(point, 8)
    assert point["lat"] not in cell.values()
    assert point["lon"] not in cell.values()


# --- treatments ---------------------------------------------------------------------------------

FIELDS = [
    FieldSpec(name="captured_at", type="timestamp"),
    FieldSpec(name="location", type="geo_point", sensitivity="location"),
    FieldSpec(name="plate", type="string", sensitivity="personal"),
    FieldSpec(name="driver_note", type="string", sensitivity="sensitive"),
    FieldSpec(name="photo", type="image_ref", sensitivity="image"),
    FieldSpec(name="speed_kmh", type="number"),
]


# What the default policy's p2 lines give a protected view.
DEFAULT = {
    "personal": "pseudonymized",
    "location": "generalized",
    "sensitive": "withheld",
    "image": "redacted",
}


def test_the_raw_view_treats_every_field_as_raw() -> None:
    assert treatments("raw", FIELDS, DEFAULT) == {spec.name: "raw" for spec in FIELDS}


def test_the_protected_view_treats_fields_by_sensitivity() -> None:
    assert treatments("protected", FIELDS, DEFAULT) == {
        "captured_at": "raw",
        "location": "generalized",
        "plate": "pseudonymized",
        "driver_note": "withheld",
        "photo": "redacted",
        "speed_kmh": "raw",
    }


@pytest.mark.parametrize("view", ["", "-", "public", "Protected", "RAW", "anonymous"])
def test_an_unknown_view_raises(view: str) -> None:
    with pytest.raises(ValueError, match="no such view"):
        treatments(view, FIELDS, DEFAULT)


def test_the_protected_view_follows_the_policy_and_withholds_what_it_does_not_shape() -> None:
    shaped = treatments("protected", FIELDS, {"personal": "raw", "location": "withheld"})
    assert shaped == {
        "captured_at": "raw",
        "location": "withheld",
        "plate": "raw",
        "driver_note": "withheld",
        "photo": "withheld",
        "speed_kmh": "raw",
    }


def test_no_fields_no_treatments() -> None:
    assert treatments("raw", [], DEFAULT) == {}
    assert treatments("protected", [], DEFAULT) == {}


# --- apply --------------------------------------------------------------------------------------

CONTENT = {
    "captured_at": "2026-11-21T08:01:00Z",
    "location": {"lat": 23.1246, "lon": 113.3612},
    "plate": "粤A·10001",
    "driver_note": "looked tired",
    "photo": "captures/cap-000001.jpg",
    "speed_kmh": 42.5,
}


def test_apply_raw_shows_the_content_as_stored() -> None:
    assert apply(treatments("raw", FIELDS, DEFAULT), CONTENT, SHAPING) == CONTENT


def test_apply_protected_masks_generalises_and_withholds() -> None:
    shown = apply(treatments("protected", FIELDS, DEFAULT), CONTENT, SHAPING)

    assert shown == {
        "captured_at": "2026-11-21T08:01:00Z",
        "location": generalize_point(CONTENT["location"], 8),
        "plate": "ps_of_粤A·10001",
        "photo": {"ref": "captures/cap-000001.jpg", "redacted": True},
        "speed_kmh": 42.5,
    }


def test_apply_does_not_change_the_content() -> None:
    before = copy.deepcopy(CONTENT)
    apply(treatments("protected", FIELDS, DEFAULT), CONTENT, SHAPING)
    assert before == CONTENT


def test_apply_withholds_a_field_without_a_treatment() -> None:
    content = {**CONTENT, "added_later": "secret"}
    assert "added_later" not in apply(treatments("raw", FIELDS, DEFAULT), content, SHAPING)
    assert "added_later" not in apply({}, content, SHAPING)
    assert apply({}, content, SHAPING) == {}


def test_apply_leaves_out_fields_the_record_does_not_have() -> None:
    shown = apply(treatments("protected", FIELDS, DEFAULT), {"plate": "粤A·10001"}, SHAPING)
    assert shown == {"plate": "ps_of_粤A·10001"}


@pytest.mark.parametrize("treatment", ["hashed", "RAW", "", "generalised"])
def test_apply_with_an_unknown_treatment_raises(treatment: str) -> None:
    with pytest.raises(ValueError, match="no such treatment"):
        apply({"plate": treatment}, {"plate": "粤A·10001"}, SHAPING)


def test_apply_masks_where_the_policy_says_masked() -> None:
    shaped = treatments("protected", FIELDS, {**DEFAULT, "personal": "masked"})
    assert apply(shaped, CONTENT, SHAPING)["plate"] == "粤A·1****"


def test_a_pseudonymized_field_without_pseudonyms_raises() -> None:
    with pytest.raises(ValueError, match="pseudonyms"):
        apply({"plate": "pseudonymized"}, {"plate": "粤A·10001"}, Shaping())


def test_a_result_is_raw_only_if_every_field_is() -> None:
    assert label(treatments("raw", FIELDS, DEFAULT)) == "raw"
    assert label(treatments("protected", FIELDS, DEFAULT)) == "deidentified"
    assert label({"a": "raw", "b": "withheld"}) == "deidentified"


# --- time buckets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "bucket", "start", "end"),
    [
        ("2026-11-21T08:01:00Z", "minute", "2026-11-21T08:01:00Z", "2026-11-21T08:02:00Z"),
        ("2026-11-21T08:01:59.999999Z", "minute", "2026-11-21T08:01:00Z", "2026-11-21T08:02:00Z"),
        ("2026-11-21T08:00:00Z", "hour", "2026-11-21T08:00:00Z", "2026-11-21T09:00:00Z"),
        ("2026-11-21T08:59:59.9Z", "hour", "2026-11-21T08:00:00Z", "2026-11-21T09:00:00Z"),
        ("2026-11-21T23:59:59Z", "hour", "2026-11-21T23:00:00Z", "2026-11-22T00:00:00Z"),
        ("2026-11-21T00:00:00Z", "day", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"),
        ("2026-11-21T23:59:59Z", "day", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"),
        ("2026-12-31T23:59:59Z", "day", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"),
        # Offsets: the bucket is the UTC one, whatever the offset the time was given in.
        ("2026-11-21T16:30:12+08:00", "hour", "2026-11-21T08:00:00Z", "2026-11-21T09:00:00Z"),
        ("2026-11-22T01:00:00+08:00", "day", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"),
        ("2026-12-31T23:30:00-02:00", "day", "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"),
        ("2026-11-21T08:30:00+05:30", "hour", "2026-11-21T03:00:00Z", "2026-11-21T04:00:00Z"),
        ("2026-11-21T08:30:00+05:45", "hour", "2026-11-21T02:00:00Z", "2026-11-21T03:00:00Z"),
        ("2026-11-21T08:30:30+05:45", "minute", "2026-11-21T02:45:00Z", "2026-11-21T02:46:00Z"),
        ("2026-11-21t08:01:30z", "minute", "2026-11-21T08:01:00Z", "2026-11-21T08:02:00Z"),
    ],
)
def test_a_time_is_shown_as_the_utc_bucket_holding_it(
    value: str, bucket: str, start: str, end: str
) -> None:
    assert bucket_time(value, bucket) == {"from": start, "to": end, "bucket": bucket}


@pytest.mark.parametrize("value", [1_700_000_000, None, "", "yesterday", "2026-11-21T08:00:00"])
def test_a_value_that_is_not_a_time_with_an_offset_is_not_bucketed(value: Any) -> None:
    assert bucket_time(value, "hour") is None


@pytest.mark.parametrize("bucket", ["week", "Hour", "second", ""])
def test_an_unknown_bucket_raises(bucket: str) -> None:
    with pytest.raises(ValueError, match="no such time bucket"):
        bucket_time("2026-11-21T08:00:00Z", bucket)
    with pytest.raises(ValueError, match="no such time bucket"):
        bucket_start(datetime(2026, 11, 21, tzinfo=UTC), bucket)


@pytest.mark.parametrize(
    ("moment", "bucket", "aligned"),
    [
        (datetime(2026, 11, 21, 8, tzinfo=UTC), "hour", True),
        (datetime(2026, 11, 21, 8, 30, tzinfo=UTC), "hour", False),
        (datetime(2026, 11, 21, 8, 30, tzinfo=UTC), "minute", True),
        (datetime(2026, 11, 21, 8, 30, 0, 1, tzinfo=UTC), "minute", False),
        (datetime(2026, 11, 21, tzinfo=UTC), "day", True),
        (datetime(2026, 11, 21, 8, tzinfo=UTC), "day", False),
    ],
)
def test_bucket_start_tells_an_aligned_bound(moment: datetime, bucket: str, aligned: bool) -> None:
    assert (bucket_start(moment, bucket) == moment) is aligned


# --- rounding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "step", "shown"),
    [
        (42.5, 5, 45),
        (42.4, 5, 40),
        (47.5, 5, 50),
        (0, 5, 0),
        (-2.5, 5, 0),  # halves up, also below zero
        (-2.6, 5, -5),
        (7, 5, 5),
        (8, 5, 10),
        (5, 10, 10),
        (-5, 10, 0),
        (10**18 + 4, 10, 10**18),  # integers exactly, beyond a float's precision
        (10**18 + 5, 10, 10**18 + 10),
        (123, 5.0, 125),
        (0.25, 0.1, 0.3),
        (0.349, 0.1, 0.3),
        (1.26, 0.25, 1.25),
        (12.0, 0.5, 12.0),
        (99.99, 0.05, 100.0),
    ],
)
def test_round_to_gives_the_nearest_multiple(value: float, step: float, shown: float) -> None:
    rounded = round_to(value, step)
    assert rounded == shown
    assert isinstance(rounded, int) == float(step).is_integer()


@pytest.mark.parametrize("value", ["42", True, None, float("nan"), float("inf"), [42]])
def test_round_to_of_a_non_number_is_none(value: Any) -> None:
    assert round_to(value, 5) is None


# --- bands --------------------------------------------------------------------------------------

SPEED_BANDS = Bands.of([0, 20, 30, 40, 50, 60, 80])


@pytest.mark.parametrize(
    ("value", "band", "low", "high"),
    [
        (-0.1, "<0", None, 0),
        (0, "0-20", 0, 20),
        (19.99, "0-20", 0, 20),
        (20, "20-30", 20, 30),
        (42.5, "40-50", 40, 50),
        (60, "60-80", 60, 80),
        (79.9, "60-80", 60, 80),
        (80, ">=80", 80, None),
        (250, ">=80", 80, None),
        (-40, "<0", None, 0),
    ],
)
def test_a_number_is_shown_as_its_band(value: float, band: str, low: Any, high: Any) -> None:
    assert SPEED_BANDS(value) == {"band": band, "min": low, "max": high}


@pytest.mark.parametrize(
    ("edges", "value", "band"),
    [
        ([50], 49.9, "<50"),
        ([50], 50, ">=50"),
        ([2.5, 5], 3, "2.5-5"),
        ([2.5, 5], 2.4, "<2.5"),
        ([-10, 0, 10], -5, "-10-0"),
        ([0.1, 0.2], 0.15, "0.1-0.2"),
    ],
)
def test_band_labels(edges: list[float], value: float, band: str) -> None:
    assert Bands.of(edges)(value)["band"] == band  # type: ignore[index]


@pytest.mark.parametrize("edges", [[], [1, 1], [3, 2, 1], [0, 20, 10]])
def test_bands_need_ascending_edges(edges: list[float]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        Bands.of(edges)


@pytest.mark.parametrize("value", ["42", True, None, float("nan"), {"kmh": 42}])
def test_the_band_of_a_non_number_is_none(value: Any) -> None:
    assert SPEED_BANDS(value) is None


def test_a_shown_band_is_a_fresh_object() -> None:
    first = SPEED_BANDS(42)
    assert first is not None
    first["band"] = "changed"
    assert SPEED_BANDS(42) == {"band": "40-50", "min": 40, "max": 50}


# --- redacted images ----------------------------------------------------------------------------

BOXES = [{"kind": "plate", "x": 10, "y": 20, "w": 200, "h": 80}, {"kind": "face", "x": 1, "y": 2}]


@pytest.mark.parametrize(
    ("value", "ref"),
    [
        ("captures/cap-000001.jpg", "captures/cap-000001.jpg"),
        ({"ref": "captures/cap-000001.jpg", "boxes": BOXES}, "captures/cap-000001.jpg"),
        ({"ref": "captures/cap-000001.jpg"}, "captures/cap-000001.jpg"),
        ({"boxes": BOXES}, None),
        ({"ref": None, "boxes": BOXES}, None),
        ({"ref": 7, "boxes": BOXES}, None),
        (42, None),
        (["captures/cap-000001.jpg"], None),
    ],
)
def test_a_redacted_image_keeps_its_reference_and_drops_its_boxes(value: Any, ref: Any) -> None:
    assert redact_image(value) == {"ref": ref, "redacted": True}


# --- which treatment fits which field -----------------------------------------------------------

BUCKETED = {"time_bucket": "hour"}
BANDED = {"bands": [0, 30, 60]}
ROUNDED = {"round_to": 5}


# (field type, its generalization, the treatment the policy gives, the treatment it gets)
FIT = [
    ("string", None, "masked", "masked"),
    ("string", None, "pseudonymized", "pseudonymized"),
    ("string", None, "generalized", "withheld"),
    ("string", None, "redacted", "withheld"),
    ("integer", None, "masked", "pseudonymized"),
    ("integer", None, "pseudonymized", "pseudonymized"),
    ("integer", None, "generalized", "withheld"),
    ("integer", BANDED, "generalized", "generalized"),
    ("integer", ROUNDED, "masked", "pseudonymized"),
    ("number", None, "masked", "withheld"),
    ("number", None, "pseudonymized", "withheld"),
    ("number", BANDED, "masked", "generalized"),
    ("number", ROUNDED, "pseudonymized", "generalized"),
    ("number", ROUNDED, "redacted", "withheld"),
    ("timestamp", None, "generalized", "withheld"),
    ("timestamp", BUCKETED, "generalized", "generalized"),
    ("timestamp", BUCKETED, "pseudonymized", "generalized"),
    ("timestamp", None, "masked", "withheld"),
    ("boolean", None, "pseudonymized", "withheld"),
    ("boolean", None, "masked", "withheld"),
    ("geo_point", None, "generalized", "generalized"),
    ("geo_point", None, "pseudonymized", "generalized"),
    ("geo_point", {"resolution": 6}, "masked", "generalized"),
    ("geo_point", None, "redacted", "withheld"),
    ("image_ref", None, "redacted", "redacted"),
    ("image_ref", None, "generalized", "redacted"),
    ("image_ref", None, "pseudonymized", "redacted"),
    ("image_ref", None, "masked", "redacted"),
]
EVERY_TYPE = ["string", "integer", "number", "timestamp", "boolean", "geo_point", "image_ref"]


@pytest.mark.parametrize(("type_", "generalization", "given", "gets"), FIT)
def test_a_treatment_that_does_not_fit_falls_to_a_more_protective_one(
    type_: str, generalization: dict[str, Any] | None, given: str, gets: str
) -> None:
    spec = FieldSpec(name="f", type=type_, sensitivity="sensitive", generalization=generalization)
    assert fitting(given, spec) == gets


@pytest.mark.parametrize("type_", EVERY_TYPE)
@pytest.mark.parametrize("treatment", ["raw", "withheld"])
def test_raw_and_withheld_fit_every_field(type_: str, treatment: str) -> None:
    assert fitting(treatment, FieldSpec(name="f", type=type_, sensitivity="sensitive")) == treatment


@pytest.mark.parametrize("treatment", ["hashed", "", "generalised", "Redacted"])
def test_fitting_an_unknown_treatment_raises(treatment: str) -> None:
    with pytest.raises(ValueError, match="no such treatment"):
        fitting(treatment, FIELDS[0])
    with pytest.raises(ValueError, match="no such treatment"):
        treatments("protected", FIELDS, {**DEFAULT, "personal": treatment})


NEAR_MISS_FIELDS = [
    FieldSpec(
        name="occurred_at", type="timestamp", sensitivity="location", generalization=BUCKETED
    ),
    FieldSpec(name="location", type="geo_point", sensitivity="location"),
    FieldSpec(
        name="area", type="geo_point", sensitivity="location", generalization={"resolution": 6}
    ),
    FieldSpec(name="speed_kmh", type="number", sensitivity="personal", generalization=BANDED),
    FieldSpec(name="distance_m", type="number", sensitivity="personal", generalization=ROUNDED),
    FieldSpec(name="age", type="integer", sensitivity="personal"),
    FieldSpec(name="seen_again", type="boolean", sensitivity="personal"),
    FieldSpec(name="weight_kg", type="number", sensitivity="personal"),
    FieldSpec(name="plate", type="string", sensitivity="personal"),
    FieldSpec(name="photo", type="image_ref", sensitivity="image"),
    FieldSpec(name="road", type="string"),
]
NEAR_MISS = {
    "occurred_at": "2026-11-21T08:47:13.5Z",
    "location": {"lat": 23.1246, "lon": 113.3612},
    "area": {"lat": 23.1246, "lon": 113.3612},
    "speed_kmh": 42.5,
    "distance_m": 12.4,
    "age": 34,
    "seen_again": True,
    "weight_kg": 71.5,
    "plate": "粤A·10001",
    "photo": {"ref": "near-misses/nm-000001.jpg", "boxes": BOXES},
    "road": "Tianhe Road",
}


def test_the_protected_view_gives_each_field_the_treatment_that_fits_it() -> None:
    assert treatments("protected", NEAR_MISS_FIELDS, DEFAULT) == {
        "occurred_at": "generalized",
        "location": "generalized",
        "area": "generalized",
        "speed_kmh": "generalized",
        "distance_m": "generalized",
        "age": "pseudonymized",
        "seen_again": "withheld",
        "weight_kg": "withheld",
        "plate": "pseudonymized",
        "photo": "redacted",
        "road": "raw",
    }


def test_apply_generalises_each_field_as_it_declares() -> None:
    shaping = Shaping.of(NEAR_MISS_FIELDS, resolution=8, pseudonymize=lambda v: f"ps_of_{v}")
    shown = apply(treatments("protected", NEAR_MISS_FIELDS, DEFAULT), NEAR_MISS, shaping)

    assert shown == {
        "occurred_at": {
            "from": "2026-11-21T08:00:00Z",
            "to": "2026-11-21T09:00:00Z",
            "bucket": "hour",
        },
        "location": generalize_point(NEAR_MISS["location"], 8),
        "area": generalize_point(NEAR_MISS["area"], 6),
        "speed_kmh": {"band": "30-60", "min": 30, "max": 60},
        "distance_m": 10,
        "age": "ps_of_34",
        "plate": "ps_of_粤A·10001",
        "photo": {"ref": "near-misses/nm-000001.jpg", "redacted": True},
        "road": "Tianhe Road",
    }
    assert "boxes" not in str(shown)


def test_the_raw_view_shows_declared_generalizations_as_stored() -> None:
    shaping = Shaping.of(NEAR_MISS_FIELDS)
    assert apply(treatments("raw", NEAR_MISS_FIELDS, DEFAULT), NEAR_MISS, shaping) == NEAR_MISS


def test_a_generalized_value_without_its_generalizer_raises() -> None:
    with pytest.raises(ValueError, match="no generalization"):
        apply({"occurred_at": "generalized"}, NEAR_MISS, Shaping())
    # A point has its default: the shaping's resolution.
    shown = apply({"location": "generalized"}, NEAR_MISS, Shaping(resolution=7))
    assert shown == {"location": generalize_point(NEAR_MISS["location"], 7)}


def test_a_generalized_or_redacted_result_is_deidentified() -> None:
    assert label(treatments("protected", NEAR_MISS_FIELDS, DEFAULT)) == "deidentified"
    assert label({"photo": "redacted"}) == "deidentified"
    assert label({"speed_kmh": "generalized", "road": "raw"}) == "deidentified"
