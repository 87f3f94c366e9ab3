"""The raw and protected views: masking, generalising, withholding. Pure functions."""

import copy
import math
from typing import Any

import pytest

from exchange.catalog.models import FieldSpec
from exchange.privacy.views import GRID_DEGREES, apply, generalize_point, mask, treatments

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


# --- generalize_point ---------------------------------------------------------------------------


def test_nearby_points_fall_in_the_same_cell() -> None:
    points = [
        {"lat": 23.1246, "lon": 113.3612},
        {"lat": 23.1201, "lon": 113.3699},
        {"lat": 23.1299, "lon": 113.3601},
    ]

    cells = [generalize_point(point) for point in points]

    assert cells[0] == cells[1] == cells[2]
    assert cells[0] == {"lat": 23.125, "lon": 113.365, "cell": "grid0.01:2312:11336"}


def test_points_in_other_cells_get_other_centres() -> None:
    here = generalize_point({"lat": 23.1246, "lon": 113.3612})
    north = generalize_point({"lat": 23.1346, "lon": 113.3612})
    east = generalize_point({"lat": 23.1246, "lon": 113.3712})

    assert len({here["cell"], north["cell"], east["cell"]}) == 3
    assert north["lat"] == pytest.approx(here["lat"] + GRID_DEGREES)
    assert east["lon"] == pytest.approx(here["lon"] + GRID_DEGREES)


@pytest.mark.parametrize(
    "point",
    [
        {"lat": 23.1246, "lon": 113.3612},
        {"lat": 0.0, "lon": 0.0},
        {"lat": 89.9999, "lon": 179.9999},
        {"lat": -89.9999, "lon": -179.9999},
        {"lat": 51.5007, "lon": -0.1246},
    ],
)
def test_the_centre_is_within_half_a_cell_of_the_point(point: dict[str, float]) -> None:
    cell = generalize_point(point)

    for axis in ("lat", "lon"):
        assert abs(cell[axis] - point[axis]) <= GRID_DEGREES / 2 + 1e-9
        halves = cell[axis] / (GRID_DEGREES / 2)
        assert math.isclose(halves, round(halves), abs_tol=1e-6)
        assert round(halves) % 2 == 1  # an odd multiple of 0.005: a centre, never an edge


def test_negative_coordinates_generalise_to_their_own_cell() -> None:
    sydney = generalize_point({"lat": -33.8688, "lon": 151.2093})
    london = generalize_point({"lat": 51.5074, "lon": -0.1278})
    nearby = generalize_point({"lat": -33.8612, "lon": 151.2001})

    assert sydney == {"lat": -33.865, "lon": 151.205, "cell": "grid0.01:-3387:15120"}
    assert nearby == sydney
    assert london == {"lat": 51.505, "lon": -0.125, "cell": "grid0.01:5150:-13"}


def test_points_either_side_of_zero_are_in_different_cells() -> None:
    south = generalize_point({"lat": -0.001, "lon": -0.001})
    north = generalize_point({"lat": 0.001, "lon": 0.001})

    assert south == {"lat": -0.005, "lon": -0.005, "cell": "grid0.01:-1:-1"}
    assert north == {"lat": 0.005, "lon": 0.005, "cell": "grid0.01:0:0"}


def test_generalize_point_drops_the_exact_coordinates() -> None:
    point = {"lat": 23.124613, "lon": 113.361247}
    cell = generalize_point(point)
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
    "personal": "masked",
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
        "plate": "masked",
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
    assert apply(treatments("raw", FIELDS, DEFAULT), CONTENT) == CONTENT


def test_apply_protected_masks_generalises_and_withholds() -> None:
    shown = apply(treatments("protected", FIELDS, DEFAULT), CONTENT)

    assert shown == {
        "captured_at": "2026-11-21T08:01:00Z",
        "location": {"lat": 23.125, "lon": 113.365, "cell": "grid0.01:2312:11336"},
        "plate": "粤A·1****",
        "speed_kmh": 42.5,
    }


def test_apply_does_not_change_the_content() -> None:
    before = copy.deepcopy(CONTENT)
    apply(treatments("protected", FIELDS, DEFAULT), CONTENT)
    assert before == CONTENT


def test_apply_withholds_a_field_without_a_treatment() -> None:
    content = {**CONTENT, "added_later": "secret"}
    assert "added_later" not in apply(treatments("raw", FIELDS, DEFAULT), content)
    assert "added_later" not in apply({}, content)
    assert apply({}, content) == {}


def test_apply_leaves_out_fields_the_record_does_not_have() -> None:
    shown = apply(treatments("protected", FIELDS, DEFAULT), {"plate": "粤A·10001"})
    assert shown == {"plate": "粤A·1****"}


@pytest.mark.parametrize("treatment", ["hashed", "RAW", "", "generalised"])
def test_apply_with_an_unknown_treatment_raises(treatment: str) -> None:
    with pytest.raises(ValueError, match="no such treatment"):
        apply({"plate": treatment}, {"plate": "粤A·10001"})
