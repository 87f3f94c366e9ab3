"""The raw and protected views: masking, generalising, withholding. Pure functions."""

import copy
from typing import Any

import h3
import pytest

from exchange.catalog.models import FieldSpec
from exchange.privacy.views import Shaping, apply, generalize_point, label, mask, treatments

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
    "image": "withheld",
}


def test_the_raw_view_treats_every_field_as_raw() -> None:
    assert treatments("raw", FIELDS, DEFAULT) == {spec.name: "raw" for spec in FIELDS}


def test_the_protected_view_treats_fields_by_sensitivity() -> None:
    assert treatments("protected", FIELDS, DEFAULT) == {
        "captured_at": "raw",
        "location": "generalized",
        "plate": "pseudonymized",
        "driver_note": "withheld",
        "photo": "withheld",
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
