"""Plates and faces removed from photos: solid fill with a margin, re-encoded bare.

Invariants, and why:

- **Solid fill, never blur or pixelation.** A blurred or pixelated plate can be
  read back: deblurring undoes a known kernel, and a plate comes from a small
  alphabet, so rendering every candidate and comparing its pixelation finds it
  (the same search that reverses an unkeyed plate hash in under a minute). The
  pixels of every region are replaced by one colour (black) *before*
  encoding, so the output holds nothing of them.
- **With a margin.** Detector boxes are tight and sometimes a little off; the
  edge of a character, an ear or the hairline outside the box can be enough.
  Each box grows by `max(min_margin, ceil(margin × its width))` left and right
  and `max(min_margin, ceil(margin × its height))` above and below, clamped to
  the image.
- **Whole codec blocks for lossy formats.** JPEG (written 4:2:0) and lossy WebP
  code the picture in 16×16 blocks; a block holding both filled and kept pixels
  rings, smearing the fill's edge into the kept part and the kept part into the
  fill. The filled region is therefore grown outwards to the 16-pixel grid
  (clamped): every block is either all fill or untouched. In a JPEG an
  untouched block comes out as a plain re-encode would give it, but for the
  decoder's chroma interpolation across the one pixel next to the fill; WebP
  tunes its filters for the whole picture, so its other pixels move slightly.
  PNG is lossless and fills exactly.
- **Nothing of the upload but its pixels.** The output is encoded from a fresh
  RGB buffer, so no EXIF (GPS position, time, camera serial, and the EXIF
  thumbnail, which would show the picture unredacted), XMP, ICC profile, JPEG
  comment or PNG text chunk survives. Transparency is flattened onto white
  (what a viewer saw): the output has no alpha channel that could hide or
  reveal anything.
- **The stored pixel grid.** Boxes are in the pixels as stored, top-left
  origin; the EXIF orientation is not applied (it would move the boxes) and,
  being metadata, is dropped with the rest.
- **Deterministic, with a receipt.** The same bytes, boxes and parameters give
  the same output bytes (with the same Pillow and codec build). The receipt
  names the SHA-256 of the exact uploaded bytes and of the exact output bytes
  and the regions actually filled: the police, holding the evidence, check
  that its hash is `original_sha256`, and that
  `redact(evidence, receipt.boxes, margin=0, min_margin=0)` hashes to
  `output_sha256` (or, with another codec build, that only the filled regions
  differ) — proof that the public copy derives from their evidence.

Refusals (fail closed) all raise `InvalidImage`, a `ValueError`, with a message
for the API user: bytes that are not a single-frame JPEG, PNG or WebP image;
corrupt or truncated data; more than `MAX_PIXELS` pixels (checked from the
header, before decoding; Pillow's own decompression-bomb warning and error
become `InvalidImage` too); a box of unknown kind, of zero or negative size, or
not wholly inside the image.

Pure: bytes in, bytes out, no I/O. Turning Pillow's bomb warning into an error
uses `warnings.catch_warnings`, which is process-wide; our limit lies below
Pillow's, so whatever a concurrent thread sees, an oversized image is refused.
"""

import hashlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

__all__ = [
    "KINDS",
    "MAX_PIXELS",
    "Box",
    "ImageInfo",
    "InvalidImage",
    "Receipt",
    "Redacted",
    "check_boxes",
    "inspect",
    "redact",
]

MAX_PIXELS = 24_000_000  # 6000×4000; each redacted read holds about two RGB copies
"""Larger images are refused from their header, before any decoding."""

KINDS = frozenset({"plate", "face"})
METHOD = "solid-fill"
FILL = (0, 0, 0)
JPEG_QUALITY = 90
WEBP_QUALITY = 90

_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_BLOCK = {"JPEG": 16, "PNG": 1, "WEBP": 16}  # the lossy codecs' 4:2:0 block size
_BACKGROUND = (255, 255, 255)  # under transparent pixels


class InvalidImage(ValueError):
    """The image or its boxes cannot be accepted; the message says why."""


@dataclass(frozen=True)
class Box:
    """A region to hide, in pixels of the stored grid, top-left origin."""

    kind: str  # "plate" or "face"
    x: int
    y: int
    w: int
    h: int

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "x": self.x, "y": self.y, "w": self.w, "h": self.h}


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "JPEG", "PNG" or "WEBP"
    media_type: str
    width: int
    height: int

    def as_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "media_type": self.media_type,
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True)
class Receipt:
    """What was done to which bytes, to produce which bytes."""

    method: str
    margin: float
    boxes: tuple[Box, ...]  # the regions filled: grown, block-aligned, clamped
    original_sha256: str
    output_sha256: str
    width: int
    height: int
    media_type: str

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "margin": self.margin,
            "boxes": [box.as_dict() for box in self.boxes],
            "original_sha256": self.original_sha256,
            "output_sha256": self.output_sha256,
            "width": self.width,
            "height": self.height,
            "media_type": self.media_type,
        }


@dataclass(frozen=True)
class Redacted:
    data: bytes
    media_type: str
    receipt: Receipt


def inspect(data: bytes) -> ImageInfo:
    """Format and size of an upload, after decoding it in full.

    Raises `InvalidImage` for anything `redact` would refuse for the image itself."""
    return _decode(data)[1]


def check_boxes(info: ImageInfo, boxes: Sequence[Box]) -> None:
    """Raises `InvalidImage`, naming the first bad box by its index, for a box of
    unknown kind, of non-positive or non-integer size, or not wholly in the image."""
    for index, box in enumerate(boxes):
        if box.kind not in KINDS:
            raise InvalidImage(f"box {index}: kind must be 'face' or 'plate', not {box.kind!r}")
        numbers = (box.x, box.y, box.w, box.h)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise InvalidImage(f"box {index}: x, y, w and h must be whole numbers of pixels")
        if box.w <= 0 or box.h <= 0:
            raise InvalidImage(f"box {index}: width and height must be positive: {box.w}×{box.h}")
        inside = box.x >= 0 and box.y >= 0 and box.x + box.w <= info.width
        if not (inside and box.y + box.h <= info.height):
            raise InvalidImage(
                f"box {index} (x={box.x}, y={box.y}, {box.w}×{box.h}) is not inside "
                f"the {info.width}×{info.height} image"
            )


def redact(
    data: bytes, boxes: Sequence[Box], *, margin: float = 0.15, min_margin: int = 6
) -> Redacted:
    """The image with every box, grown by its margin, filled black; re-encoded in
    its own format without metadata, and the receipt. No boxes: a bare re-encode.

    Raises `InvalidImage` (see the module) and `ValueError` for a negative or
    non-finite margin."""
    if not (math.isfinite(margin) and margin >= 0) or min_margin < 0:
        raise ValueError("margin and min_margin must be finite and not negative")
    image, info = _decode(data)
    check_boxes(info, boxes)
    filled = tuple(_filled(box, info, margin, min_margin) for box in boxes)
    canvas = _bare_rgb(image)
    for region in filled:
        canvas.paste(FILL, (region.x, region.y, region.x + region.w, region.y + region.h))
    output = _encode(canvas, info.format)
    receipt = Receipt(
        method=METHOD,
        margin=margin,
        boxes=filled,
        original_sha256=hashlib.sha256(data).hexdigest(),
        output_sha256=hashlib.sha256(output).hexdigest(),
        width=info.width,
        height=info.height,
        media_type=info.media_type,
    )
    return Redacted(output, info.media_type, receipt)


def _open(data: bytes) -> Image.Image:
    """The image from its header, refused if it is not one we take or is too large."""
    if not data:
        raise InvalidImage("the image is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=tuple(_MEDIA_TYPES))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise InvalidImage(f"the image is too large: at most {MAX_PIXELS:,} pixels") from error
        except UnidentifiedImageError as error:
            raise InvalidImage("not a JPEG, PNG or WebP image, or its header is corrupt") from error
        except Exception as error:
            raise InvalidImage("the image header is corrupt") from error
    if image.format not in _MEDIA_TYPES:  # e.g. "MPO", a JPEG holding several pictures
        raise InvalidImage(f"{image.format} images are not accepted: send a JPEG, PNG or WebP")
    if getattr(image, "n_frames", 1) != 1:
        raise InvalidImage("animated or multi-frame images are not accepted: send one still")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise InvalidImage(
            f"the image is too large: {width}×{height} is {width * height:,} pixels, "
            f"at most {MAX_PIXELS:,}"
        )
    return image


def _decode(data: bytes) -> tuple[Image.Image, ImageInfo]:
    """The fully decoded image: `verify` checks the file's structure (PNG chunk
    checksums), `load` decodes every pixel, refusing truncated data."""
    probe = _open(data)
    try:
        probe.verify()
    except Exception as error:
        raise InvalidImage("the image data is corrupt") from error
    image = _open(data)  # a verified image cannot be loaded; open it again
    try:
        image.load()
    except Exception as error:
        raise InvalidImage("the image data is corrupt or truncated") from error
    assert image.format is not None  # _open admits only known formats
    info = ImageInfo(image.format, _MEDIA_TYPES[image.format], image.width, image.height)
    return image, info


def _filled(box: Box, info: ImageInfo, margin: float, min_margin: int) -> Box:
    """The region filled for `box`: grown, out to the codec's block grid, clamped."""
    # round() first: 0.15 × 100 is 15.000000000000002 in floating point, not 16 pixels
    dx = max(min_margin, math.ceil(round(margin * box.w, 6)))
    dy = max(min_margin, math.ceil(round(margin * box.h, 6)))
    block = _BLOCK[info.format]
    left = max(0, box.x - dx) // block * block
    top = max(0, box.y - dy) // block * block
    right = min(info.width, -(-(box.x + box.w + dx) // block) * block)
    bottom = min(info.height, -(-(box.y + box.h + dy) // block) * block)
    return Box(box.kind, left, top, right - left, bottom - top)


def _bare_rgb(image: Image.Image) -> Image.Image:
    """The pixels alone, as RGB, in a new image carrying no `info` (Pillow's encoders
    copy some of it, such as a JPEG comment, from the image they save)."""
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: scale, do not clip
        image = image.convert("I").point(lambda value: value / 257).convert("L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        pixels = Image.new("RGB", image.size, _BACKGROUND)
        pixels.paste(rgba, mask=rgba.getchannel("A"))
    elif image.mode != "RGB":
        pixels = image.convert("RGB")
    else:
        pixels = image
    bare = Image.new("RGB", image.size)
    bare.paste(pixels)
    return bare


def _encode(image: Image.Image, format: str) -> bytes:
    """The image in `format`, with no metadata: none is passed, and `image` has none."""
    out = io.BytesIO()
    if format == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    elif format == "WEBP":
        image.save(out, "WEBP", quality=WEBP_QUALITY)
    else:
        image.save(out, "PNG")
    return out.getvalue()
