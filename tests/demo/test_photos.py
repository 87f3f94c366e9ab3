"""The fleet's generated road photos, which the demo uses: valid JPEGs of the size
asked, boxes inside the image around something worth hiding (as the exchange's
redaction reads them), the same bytes for the same seed."""

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from connectors.fleet import photos
from exchange.privacy.redaction import Box, check_boxes, inspect, redact

PLATE = "粤A·3K7Q2"
NEW_ENERGY = "粤B·D12345"


def scene(seed: int, plate: str, **size: int) -> tuple[bytes, list[Box]]:
    """The fleet's scene, with its boxes as the exchange reads them from a record."""
    data, boxes = photos.scene(seed, plate, **size)
    return data, [Box(**box.as_dict()) for box in boxes]


def pixels(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def region(image: Image.Image, box: Box) -> Image.Image:
    return image.crop((box.x, box.y, box.x + box.w, box.y + box.h))


@pytest.mark.parametrize(("width", "height"), [(640, 360), (1920, 1080), (160, 90), (400, 600)])
def test_a_scene_is_a_jpeg_of_the_size_asked_with_boxes_inside(width: int, height: int) -> None:
    data, boxes = scene(3, PLATE, width=width, height=height)
    info = inspect(data)
    assert (info.format, info.width, info.height) == ("JPEG", width, height)
    assert [box.kind for box in boxes] == ["plate", "face"]
    check_boxes(info, boxes)


def test_boxes_are_inside_and_apart_over_many_seeds() -> None:
    for seed in range(300):
        data, (plate, face) = scene(seed, NEW_ENERGY if seed % 2 else PLATE)
        check_boxes(inspect(data), [plate, face])
        apart = (
            plate.x + plate.w <= face.x
            or face.x + face.w <= plate.x
            or plate.y + plate.h <= face.y
            or face.y + face.h <= plate.y
        )
        assert apart, seed
        assert plate.w > 2 * plate.h  # a plate's shape, 440:140
        assert face.h >= face.w


def test_there_is_something_to_hide_in_each_box() -> None:
    data, boxes = scene(11, PLATE)
    original, hidden = pixels(data), pixels(redact(data, boxes).data)
    plate, face = (region(original, box) for box in boxes)
    # a light plate with dark characters on it
    low, high = plate.convert("L").getextrema()
    assert low < 80 and high > 180
    # a face: skin, hair and eyes, not a flat patch
    assert max(ImageStat.Stat(face).stddev) > 20
    for box in boxes:
        difference = ImageChops.difference(region(original, box), region(hidden, box))
        assert min(ImageStat.Stat(difference).mean) > 30, box.kind


def test_the_same_seed_gives_the_same_bytes() -> None:
    first, boxes = scene(42, PLATE)
    assert scene(42, PLATE) == (first, boxes)
    assert scene(43, PLATE)[0] != first
    other, other_boxes = scene(42, "粤A·7HX31")
    assert other != first and other_boxes == boxes  # only the characters differ


def test_a_plate_without_ascii_characters_is_still_drawn() -> None:
    data, boxes = scene(5, "粤")
    check_boxes(inspect(data), boxes)


def test_too_small_a_scene_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 160×90"):
        scene(1, PLATE, width=100, height=90)
