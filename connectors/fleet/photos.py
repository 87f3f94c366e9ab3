"""Generated road photos: a car's plate and a pedestrian's face to hide.

Every photo is drawn, not taken: the street, the car, its plate and the person are
invented and show no real place, vehicle or person. A scene is a plain drawing
with Pillow (sky, buildings with windows, a road in perspective with lane
markings, the rear of a car on it, a pedestrian on the pavement), drawn from
`random.Random(seed)` alone, so the same seed and plate give the same JPEG bytes.

The plate is light-coloured (the pale green of new-energy plates for six-character
tails, else pale yellow) with the plate's ASCII characters on it: Pillow's
built-in font has no glyph for the province character, which is left out (the
separator dot becomes a space). The boxes returned lie tightly around the plate
and around the head, in the image's pixel grid (top-left origin): what a record's
image field declares (`{"ref": …, "boxes": [box.as_dict(), …]}`) for the
exchange to fill in its redacted copies.
"""

import io
import random
from functools import lru_cache
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

MIN_WIDTH, MIN_HEIGHT = 160, 90
JPEG_QUALITY = 85

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class Box(NamedTuple):
    """A region to hide, in pixels: `kind` is "plate" or "face"."""

    kind: str
    x: int
    y: int
    w: int
    h: int

    def as_dict(self) -> dict[str, object]:
        """The box as a record's image field lists it."""
        return dict(self._asdict())


_SKIES: tuple[tuple[Colour, Colour], ...] = (
    ((118, 164, 214), (196, 218, 236)),  # clear
    ((150, 160, 172), (205, 208, 212)),  # overcast
    ((222, 150, 110), (246, 212, 160)),  # evening
)
_CAR_PAINTS: tuple[Colour, ...] = (
    (235, 235, 232),
    (30, 32, 36),
    (150, 154, 160),
    (160, 28, 30),
    (28, 62, 128),
    (214, 170, 40),
)
_SKINS: tuple[Colour, ...] = ((241, 204, 170), (224, 178, 140), (198, 146, 108), (150, 104, 72))
_CLOTHES: tuple[Colour, ...] = ((40, 60, 110), (190, 40, 50), (60, 110, 70), (60, 60, 64))
_NEW_ENERGY_PLATE: Colour = (196, 236, 196)
_PLATE: Colour = (244, 226, 120)
_INK: Colour = (20, 20, 20)


def scene(seed: int, plate: str, *, width: int = 640, height: int = 360) -> tuple[bytes, list[Box]]:
    """A JPEG of a street and `[Box("plate", …), Box("face", …)]` around the plate
    and the pedestrian's head. Raises `ValueError` below 160×90 pixels."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"a scene is at least {MIN_WIDTH}×{MIN_HEIGHT} pixels")
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.38, 0.48))
    _sky(draw, rng, width, horizon)
    _buildings(draw, rng, width, horizon)
    road = _road(draw, rng, width, height, horizon)
    car_left = rng.random() < 0.5
    plate_box = _car(draw, rng, plate, width, height, horizon, car_left)
    face_box = _pedestrian(draw, rng, width, height, horizon, road, not car_left)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), [plate_box, face_box]


def _sky(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, horizon: int) -> None:
    """Bands from the zenith colour to the horizon colour."""
    top, bottom = rng.choice(_SKIES)
    bands = 12
    for band in range(bands):
        t = band / (bands - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        y0, y1 = horizon * band // bands, horizon * (band + 1) // bands
        draw.rectangle((0, y0, width, y1), fill=colour)


def _buildings(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, horizon: int) -> None:
    """A skyline standing on the horizon, each block with rows of windows."""
    x = -rng.randrange(width // 20 + 1)
    while x < width:
        w = rng.randint(width // 14, width // 6)
        h = rng.randint(horizon // 3, horizon - horizon // 10)
        grey = rng.randint(120, 200)
        tint = rng.randint(-20, 20)
        wall = (grey + tint // 2, grey, grey - tint)
        draw.rectangle((x, horizon - h, x + w, horizon), fill=wall)
        pane = max(2, w // 10)
        lit = (250, 236, 170) if rng.random() < 0.3 else (70, 90, 110)
        for wy in range(horizon - h + pane, horizon - 2 * pane, 2 * pane):
            for wx in range(x + pane, x + w - pane, 2 * pane):
                draw.rectangle((wx, wy, wx + pane - 1, wy + pane - 1), fill=lit)
        x += w + rng.randint(0, width // 40)


def _road(
    draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int, horizon: int
) -> tuple[float, float, float]:
    """Pavement, then the road narrowing to a vanishing point, with dashed lanes:
    (vanishing x, the road's left and right edges at the bottom of the image)."""
    draw.rectangle((0, horizon, width, height), fill=(176, 172, 164))
    vanish = width / 2 + rng.uniform(-0.1, 0.1) * width
    left, right = width * rng.uniform(0.06, 0.12), width * rng.uniform(0.88, 0.94)
    asphalt = (72 + rng.randint(-8, 8),) * 3
    draw.polygon(
        [(vanish - 2, horizon), (vanish + 2, horizon), (right, height), (left, height)],
        fill=asphalt,
    )
    for lane in (1 / 3, 2 / 3):
        bottom_x = left + (right - left) * lane
        for step in range(8):
            t0, t1 = (step + 0.25) / 8, (step + 0.65) / 8
            y0, y1 = horizon + (height - horizon) * t0**2, horizon + (height - horizon) * t1**2
            x0, x1 = vanish + (bottom_x - vanish) * t0**2, vanish + (bottom_x - vanish) * t1**2
            half0, half1 = 0.5 + t0**2 * width / 200, 0.5 + t1**2 * width / 200
            polygon = [(x0 - half0, y0), (x0 + half0, y0), (x1 + half1, y1), (x1 - half1, y1)]
            draw.polygon(polygon, fill=(232, 232, 224))
    return vanish, left, right


def _car(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    plate: str,
    width: int,
    height: int,
    horizon: int,
    left: bool,
) -> Box:
    """The rear of a car on the road; the box around its plate."""
    car_w = int(width * rng.uniform(0.26, 0.34))
    car_h = int(car_w * rng.uniform(0.62, 0.72))
    centre = width * (rng.uniform(0.3, 0.42) if left else rng.uniform(0.58, 0.7))
    x0 = int(centre - car_w / 2)
    bottom = int(height - (height - horizon) * rng.uniform(0.08, 0.22))
    y0 = bottom - car_h
    paint = rng.choice(_CAR_PAINTS)
    wheel = car_w // 7
    draw.rectangle(
        (x0 + wheel // 2, bottom - wheel, x0 + 2 * wheel, bottom + wheel // 3), fill=_INK
    )
    draw.rectangle(
        (x0 + car_w - 2 * wheel, bottom - wheel, x0 + car_w - wheel // 2, bottom + wheel // 3),
        fill=_INK,
    )
    roof = car_w // 6
    draw.polygon(
        [
            (x0 + roof, y0),
            (x0 + car_w - roof, y0),
            (x0 + car_w, y0 + car_h // 2),
            (x0, y0 + car_h // 2),
        ],
        fill=paint,
    )
    glass = car_h // 12
    draw.polygon(
        [
            (x0 + roof + glass, y0 + glass),
            (x0 + car_w - roof - glass, y0 + glass),
            (x0 + car_w - 2 * glass, y0 + car_h // 2 - glass),
            (x0 + 2 * glass, y0 + car_h // 2 - glass),
        ],
        fill=(40, 52, 64),
    )
    draw.rounded_rectangle(
        (x0, y0 + car_h // 2, x0 + car_w, bottom - wheel // 3),
        radius=max(1, car_w // 20),
        fill=paint,
    )
    light_y = y0 + car_h // 2 + car_h // 10
    light_w, light_h = car_w // 6, max(2, car_h // 10)
    for lx in (x0 + car_w // 20, x0 + car_w - car_w // 20 - light_w):
        draw.rectangle((lx, light_y, lx + light_w, light_y + light_h), fill=(200, 24, 28))
    return _plate(draw, plate, x0 + car_w // 2, bottom - wheel // 3 - car_h // 7, car_w)


def _plate(draw: ImageDraw.ImageDraw, plate: str, centre: int, middle: int, car_w: int) -> Box:
    """The plate centred at (`centre`, `middle`), 440:140 like a real one."""
    plate_w = max(12, int(car_w * 0.3))
    plate_h = max(4, round(plate_w * 140 / 440))
    x, y = centre - plate_w // 2, middle - plate_h // 2
    text = "".join(ch if ch.isascii() else " " for ch in plate).strip()
    new_energy = len(text.replace(" ", "")) >= 7
    draw.rectangle(
        (x, y, x + plate_w - 1, y + plate_h - 1),
        fill=_NEW_ENERGY_PLATE if new_energy else _PLATE,
        outline=_INK,
    )
    if text:
        font = _font(_fitting_size(text, plate_w * 0.86, plate_h * 0.78))
        draw.text((x + plate_w / 2, y + plate_h / 2), text, fill=_INK, font=font, anchor="mm")
    return Box("plate", x, y, plate_w, plate_h)


def _pedestrian(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    width: int,
    height: int,
    horizon: int,
    road: tuple[float, float, float],
    left: bool,
) -> Box:
    """A person on the pavement beside the road, sized by perspective (the camera
    is a little lower than a head); the box around the head."""
    vanish, road_left, road_right = road
    depth = rng.uniform(0.45, 0.8)  # of the way from the horizon to the image's bottom
    feet = int(horizon + (height - horizon) * depth)
    tall = int((feet - horizon) * rng.uniform(1.05, 1.2))
    head = max(6, tall // 7)
    head_w = max(5, head * 4 // 5)
    shoulders = max(head_w + 2, head * 3 // 2)
    edge = vanish + ((road_left if left else road_right) - vanish) * depth
    gap = shoulders * rng.uniform(1.0, 3.0)
    centre = int(edge - gap if left else edge + gap)
    centre = min(max(centre, shoulders), width - shoulders)
    skin, shirt, trousers = rng.choice(_SKINS), rng.choice(_CLOTHES), rng.choice(_CLOTHES)
    top = feet - tall
    hip = top + head + (tall - head) * 9 // 20
    leg = max(2, shoulders * 2 // 5)
    half = shoulders // 2
    draw.rectangle((centre - half + 1, hip, centre - half + leg, feet), fill=trousers)
    draw.rectangle((centre + half - leg, hip, centre + half - 1, feet), fill=trousers)
    draw.rounded_rectangle(
        (centre - half, top + head, centre + half, hip + leg),
        radius=max(1, leg // 2),
        fill=shirt,
    )
    hx, hy = centre - head_w // 2, top
    draw.ellipse((hx, hy, hx + head_w - 1, hy + head - 1), fill=skin)
    draw.chord((hx, hy, hx + head_w - 1, hy + head - 1), 180, 360, fill=(34, 26, 22))
    eye = max(1, head // 14)
    for ex in (hx + head_w // 3, hx + head_w * 2 // 3):
        draw.ellipse((ex - eye, hy + head // 2, ex + eye, hy + head // 2 + eye), fill=_INK)
    mouth = hy + head * 3 // 4
    draw.line((hx + head_w * 2 // 5, mouth, hx + head_w * 3 // 5, mouth), fill=(150, 70, 70))
    return Box("face", hx, hy, head_w, head)


@lru_cache(maxsize=64)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _fitting_size(text: str, width: float, height: float) -> int:
    """The largest font size, at most `height` pixels, at which `text` fits `width`."""
    size = max(4, int(height))
    length = _font(size).getlength(text)
    if length > width:
        size = max(4, int(size * width / length))
    return size
