"""Redaction of plates and faces: the fill covers box and margin, nothing else changes,
no metadata survives, the receipt proves the derivation, and bad input is refused.
Pure; images are made in memory from seeded generators."""

import hashlib
import io
import json
import random
import struct
import zlib

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from exchange.privacy import redaction
from exchange.privacy.redaction import (
    Box,
    ImageInfo,
    InvalidImage,
    check_boxes,
    inspect,
    redact,
)

WIDTH, HEIGHT = 320, 240
PLATE = Box("plate", 101, 77, 50, 17)
FACE = Box("face", 230, 30, 24, 30)
BLACK = (0, 0, 0)


def photo(size: tuple[int, int] = (WIDTH, HEIGHT), seed: int = 1) -> Image.Image:
    """Smooth colourful content with detail: seeded noise, enlarged, plus fine noise."""
    rng = random.Random(seed)
    coarse = Image.frombytes("RGB", (20, 15), rng.randbytes(20 * 15 * 3))
    smooth = coarse.resize(size, Image.Resampling.BICUBIC)
    fine = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    return Image.blend(smooth, fine, 0.15)


def encoded(image: Image.Image, format: str, **params: object) -> bytes:
    out = io.BytesIO()
    if format == "JPEG":
        params = {"quality": 90, "subsampling": "4:2:0"} | params
    if format == "WEBP":
        params = {"quality": 90} | params
    image.save(out, format, **params)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def corners(box: Box) -> tuple[int, int, int, int]:
    return box.x, box.y, box.x + box.w, box.y + box.h


def brightest(image: Image.Image, box: Box, inset: int = 0, mode: str = "RGB") -> int:
    """The largest channel value inside `box`, `inset` pixels in from its edges, in
    `mode` ("L" for luma)."""
    x0, y0, x1, y1 = corners(box)
    region = image.convert(mode).crop((x0 + inset, y0 + inset, x1 - inset, y1 - inset))
    extrema = region.getextrema()
    if mode == "L":
        return int(extrema[1])
    return max(high for _, high in extrema)


def largest_difference_outside(
    a: Image.Image, b: Image.Image, regions: tuple[Box, ...], grow: int
) -> int:
    """The largest channel difference between `a` and `b` outside `regions`, each
    grown by `grow` pixels."""
    difference = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    for region in regions:
        x0, y0, x1, y1 = corners(region)
        difference.paste(BLACK, (x0 - grow, y0 - grow, x1 + grow, y1 + grow))
    return max(high for _, high in difference.getextrema())


# --- the fill -----------------------------------------------------------------------------------


def test_png_fills_box_and_margin_exactly_and_touches_nothing_else() -> None:
    original = photo()
    result = redact(encoded(original, "PNG"), [PLATE, FACE])
    # plate 50×17: margins max(6, ceil(7.5)) = 8 across, max(6, ceil(2.55)) = 6 down
    # face 24×30: margins max(6, ceil(3.6)) = 6 across, max(6, ceil(4.5)) = 6 down
    assert result.receipt.boxes == (
        Box("plate", 93, 71, 66, 29),
        Box("face", 224, 24, 36, 42),
    )
    expected = original.copy()
    for region in result.receipt.boxes:
        expected.paste(BLACK, corners(region))
    output = decoded(result.data)
    assert (output.format, output.mode, output.size) == ("PNG", "RGB", (WIDTH, HEIGHT))
    assert output.tobytes() == expected.tobytes()


def test_margin_grows_with_the_box_and_is_clamped_at_the_edges() -> None:
    data = encoded(photo(), "PNG")
    big = Box("face", 100, 100, 100, 60)  # margin 15 across, 9 down
    corner = Box("plate", 0, 0, 10, 10)  # 6 all round, clamped at top-left
    edge = Box("plate", WIDTH - 40, HEIGHT - 12, 40, 12)  # clamped at bottom-right
    receipt = redact(data, [big, corner, edge]).receipt
    assert receipt.boxes == (
        Box("face", 85, 91, 130, 78),
        Box("plate", 0, 0, 16, 16),
        Box("plate", WIDTH - 46, HEIGHT - 18, 46, 18),
    )
    wider = redact(data, [big], margin=0.5, min_margin=0).receipt.boxes
    assert wider == (Box("face", 50, 70, 200, 120),)
    assert redact(data, [big], margin=0, min_margin=0).receipt.boxes == (big,)


def test_jpeg_fill_is_whole_blocks_and_black_within_tolerance() -> None:
    result = redact(encoded(photo(), "JPEG"), [PLATE, FACE])
    output = decoded(result.data)
    assert output.format == "JPEG"
    for box, region in zip((PLATE, FACE), result.receipt.boxes, strict=True):
        x0, y0, x1, y1 = corners(region)
        # grown by the margin, then out to the 16-pixel grid of JPEG's 4:2:0 blocks
        assert x0 <= box.x - 6 and y0 <= box.y - 6
        assert x1 >= box.x + box.w + 6 and y1 >= box.y + box.h + 6
        assert x0 % 16 == y0 % 16 == 0
        assert x1 % 16 == 0 or x1 == WIDTH
        assert y1 % 16 == 0 or y1 == HEIGHT
        # the decoder interpolates chroma across the block edge, tinting the outermost
        # pixels (one channel up to ~40 of 255) while they stay dark
        assert brightest(output, region, mode="L") <= 20
        assert brightest(output, region, inset=1) <= 4


def test_jpeg_outside_the_fill_is_a_plain_re_encode() -> None:
    """Every 16×16 block is either all fill or untouched, so away from the fill the
    output equals a plain decode and re-encode at the same quality."""
    data = encoded(photo(), "JPEG")
    result = redact(data, [PLATE, FACE])
    plain = decoded(encoded(decoded(data), "JPEG"))
    output = decoded(result.data)
    # one pixel around the fill: chroma is interpolated across the block edge
    assert largest_difference_outside(output, plain, result.receipt.boxes, grow=1) <= 2
    assert largest_difference_outside(output, plain, result.receipt.boxes, grow=16) == 0


def test_webp_fill_is_black_and_the_rest_close_to_a_plain_re_encode() -> None:
    data = encoded(photo(), "WEBP")
    result = redact(data, [PLATE, FACE])
    output = decoded(result.data)
    assert (output.format, result.media_type) == ("WEBP", "image/webp")
    for region in result.receipt.boxes:
        assert brightest(output, region, mode="L") <= 20
        assert brightest(output, region, inset=1) <= 4
    # WebP tunes its segments and filters for the whole picture: a fill anywhere moves
    # every pixel a little (about 1.5 of 255 on average, here)
    plain = decoded(encoded(decoded(data), "WEBP"))
    outside = ImageChops.difference(output.convert("RGB"), plain.convert("RGB"))
    for region in result.receipt.boxes:
        x0, y0, x1, y1 = corners(region)
        outside.paste(BLACK, (x0 - 1, y0 - 1, x1 + 1, y1 + 1))
    assert max(ImageStat.Stat(outside).mean) <= 3
    assert largest_difference_outside(output, plain, result.receipt.boxes, grow=1) <= 32


def test_no_boxes_is_a_bare_re_encode() -> None:
    original = photo()
    result = redact(encoded(original, "PNG"), [])
    assert result.receipt.boxes == ()
    assert decoded(result.data).tobytes() == original.tobytes()


def test_exif_orientation_is_not_applied() -> None:
    """Boxes are in the stored pixel grid; the output keeps that grid."""
    original = photo((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    result = redact(encoded(original, "PNG", exif=exif), [Box("plate", 150, 10, 30, 10)])
    output = decoded(result.data)
    assert output.size == (200, 100)
    assert brightest(output, Box("plate", 144, 4, 42, 22)) == 0


def test_transparency_is_flattened_onto_white() -> None:
    image = photo().convert("RGBA")
    image.putalpha(0)
    result = redact(encoded(image, "PNG"), [PLATE])
    output = decoded(result.data)
    assert output.mode == "RGB"
    assert output.getpixel((5, 5)) == (255, 255, 255)
    assert brightest(output, result.receipt.boxes[0]) == 0


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = Image.new("I;16", (64, 64), 32896)  # 50 % of 65535
    output = decoded(redact(encoded(grey, "PNG"), []).data)
    assert output.getpixel((0, 0)) == (128, 128, 128)


# --- metadata -----------------------------------------------------------------------------------


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PearlCam"  # Make
    exif[0xA431] = "SN-00042-SECRET"  # BodySerialNumber (in the EXIF IFD in practice)
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (23.0, 7.0, 28.5)
    gps[3], gps[4] = "E", (113.0, 21.0, 40.25)
    gps[0x12] = "WGS-84-TEST-DATUM"  # GPSMapDatum, easy to find in the bytes
    return exif


SECRETS = (b"Exif", b"WGS-84-TEST-DATUM", b"PearlCam", b"SN-00042", b"ICC_PROFILE", b"xap/1.0")


def srgb_profile() -> bytes:
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def test_jpeg_loses_exif_gps_icc_xmp_and_comment() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = encoded(
        photo(),
        "JPEG",
        exif=gps_exif(),
        icc_profile=srgb_profile(),
        comment=b"officer 4711, Tianhe",
        xmp=xmp,
    )
    source = decoded(data)
    assert source.getexif().get_ifd(0x8825)  # the upload does carry them
    assert {"exif", "icc_profile", "comment", "xmp"} <= source.info.keys()

    result = redact(data, [PLATE])
    output = decoded(result.data)
    assert not output.getexif()
    assert not output.info.keys() & {"exif", "icc_profile", "comment", "xmp"}
    for secret in (*SECRETS, b"officer 4711"):
        assert secret not in result.data, secret


def png_chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG file, in order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kinds.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return kinds


def test_png_loses_text_chunks_exif_and_icc() -> None:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Author", "officer 4711")
    text.add_text("Location", "Tianhe, 23.1246 N", zip=True)
    text.add_itxt("Comment", "粤A·3K7Q2 seen here", lang="zh")
    data = encoded(photo(), "PNG", pnginfo=text, exif=gps_exif(), icc_profile=srgb_profile())
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"} <= set(png_chunks(data))

    result = redact(data, [PLATE])
    assert set(png_chunks(result.data)) == {b"IHDR", b"IDAT", b"IEND"}
    output = decoded(result.data)
    assert not output.getexif() and not output.text
    assert not output.info.keys() & {"exif", "icc_profile", "Author", "Location", "Comment"}


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    kinds, offset = [], 12
    while offset < len(data):
        kinds.append(data[offset : offset + 4])
        (length,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        offset += 8 + length + (length & 1)
    return kinds


def test_webp_loses_exif_icc_and_xmp() -> None:
    data = encoded(
        photo(), "WEBP", exif=gps_exif(), icc_profile=srgb_profile(), xmp=b"<x:xmpmeta/>"
    )
    assert {b"EXIF", b"ICCP", b"XMP "} <= set(webp_chunks(data))
    result = redact(data, [FACE])
    assert set(webp_chunks(result.data)) <= {b"VP8 ", b"VP8L"}
    for secret in SECRETS:
        assert secret not in result.data, secret


# --- the receipt and determinism ----------------------------------------------------------------


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_receipt_names_the_exact_bytes_and_the_regions_filled(format: str) -> None:
    data = encoded(photo(), format)
    result = redact(data, [PLATE, FACE])
    receipt = result.receipt
    assert receipt.original_sha256 == hashlib.sha256(data).hexdigest()
    assert receipt.output_sha256 == hashlib.sha256(result.data).hexdigest()
    assert (receipt.method, receipt.margin) == ("solid-fill", 0.15)
    assert (receipt.width, receipt.height) == (WIDTH, HEIGHT)
    assert receipt.media_type == result.media_type == f"image/{format.lower()}"
    as_json = json.loads(json.dumps(receipt.as_dict()))
    assert as_json["boxes"] == [region.as_dict() for region in receipt.boxes]
    plate = receipt.boxes[0]
    assert as_json["boxes"][0] == {"kind": "plate", "x": plate.x, "y": plate.y} | {
        "w": plate.w,
        "h": plate.h,
    }
    assert as_json["output_sha256"] == receipt.output_sha256


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_same_input_same_bytes_and_the_receipt_reproduces_them(format: str) -> None:
    """What the police do: from their evidence and the receipt's regions, with no
    further margin, they get the public copy's exact bytes."""
    data = encoded(photo(seed=7), format)
    first = redact(data, [PLATE, FACE])
    assert redact(data, [PLATE, FACE]).data == first.data
    again = redact(data, first.receipt.boxes, margin=0, min_margin=0)
    assert again.data == first.data
    assert again.receipt.boxes == first.receipt.boxes
    assert redact(encoded(photo(seed=8), format), [PLATE, FACE]).data != first.data


def test_inspect_reports_format_and_size() -> None:
    formats = (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"))
    for format, media_type in formats:
        info = inspect(encoded(photo(), format))
        assert info == ImageInfo(format, media_type, WIDTH, HEIGHT)
        assert info.as_dict()["media_type"] == media_type


# --- refusals -----------------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height` (its pixel data is empty)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + checksum

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    data = bytearray(encoded(photo(), "PNG"))
    data[len(data) // 2] ^= 0xFF  # inside IDAT: its checksum no longer matches
    return bytes(data)


def animated_png() -> bytes:
    frames = [photo(seed=1), photo(seed=2)]
    return encoded(frames[0], "PNG", save_all=True, append_images=frames[1:])


def mpo() -> bytes:
    """A JPEG holding two pictures, as some phones write; only the first could be redacted."""
    return encoded(photo(seed=1), "MPO", save_all=True, append_images=[photo(seed=2)])


BAD_IMAGES = {
    "empty": (b"", "empty"),
    "not an image": ("plate 粤A·3K7Q2 seen at 08:15".encode(), "not a JPEG, PNG or WebP"),
    "a GIF": (encoded(photo().convert("P"), "GIF"), "not a JPEG, PNG or WebP"),
    "a truncated JPEG": (encoded(photo(), "JPEG")[:5000], "corrupt or truncated"),
    "a JPEG cut after its header": (encoded(photo(), "JPEG")[:700], "corrupt"),
    "a corrupt PNG": (corrupt_png(), "corrupt"),
    "an animated PNG": (animated_png(), "animated"),
    "an MPO, two pictures in a JPEG": (mpo(), "MPO images are not accepted"),
    "60 MP, over our limit": (png_header(10_000, 6_000), "too large"),
    "100 MP, over Pillow's warning": (png_header(10_000, 10_000), "too large"),
    "900 MP, a decompression bomb": (png_header(30_000, 30_000), "too large"),
}


@pytest.mark.parametrize(("data", "message"), BAD_IMAGES.values(), ids=BAD_IMAGES.keys())
def test_bad_images_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        inspect(data)
    with pytest.raises(InvalidImage, match=message):
        redact(data, [])


def test_the_pixel_limit_can_be_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encoded(photo(), "JPEG")
    monkeypatch.setattr(redaction, "MAX_PIXELS", WIDTH * HEIGHT - 1)
    with pytest.raises(InvalidImage, match="320×240 is 76,800 pixels, at most 76,799"):
        redact(data, [PLATE])
    monkeypatch.setattr(redaction, "MAX_PIXELS", WIDTH * HEIGHT)
    assert inspect(data).width == WIDTH


BAD_BOXES = {
    "outside on the right": ([Box("plate", 300, 10, 30, 10)], "box 0 .* not inside the 320×240"),
    "outside at the bottom": ([PLATE, Box("face", 10, 230, 20, 20)], "box 1 .* not inside"),
    "negative x": ([Box("face", -1, 10, 20, 20)], "box 0 .* not inside"),
    "zero width": ([Box("plate", 10, 10, 0, 10)], "box 0: width and height must be positive"),
    "negative height": ([PLATE, Box("face", 10, 10, 5, -5)], "box 1: width and height"),
    "unknown kind": ([Box("person", 10, 10, 5, 5)], "box 0: kind must be 'face' or 'plate'"),
    "fractional pixels": ([Box("face", 10.5, 10, 5, 5)], "box 0: .* whole numbers"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize(("boxes", "message"), BAD_BOXES.values(), ids=BAD_BOXES.keys())
def test_bad_boxes_are_refused(boxes: list[Box], message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        check_boxes(ImageInfo("PNG", "image/png", WIDTH, HEIGHT), boxes)
    with pytest.raises(InvalidImage, match=message):
        redact(encoded(photo(), "PNG"), boxes)


@pytest.mark.parametrize("margin", [-0.1, float("nan"), float("inf")])
def test_bad_margins_are_refused(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        redact(encoded(photo(), "PNG"), [PLATE], margin=margin)
    with pytest.raises(ValueError, match="margin"):
        redact(encoded(photo(), "PNG"), [PLATE], min_margin=-1)


def test_invalid_image_is_a_value_error() -> None:
    assert issubclass(InvalidImage, ValueError)


def test_public_names() -> None:
    assert set(redaction.__all__) >= {"Box", "ImageInfo", "InvalidImage", "Receipt", "Redacted"}
    assert all(hasattr(redaction, name) for name in redaction.__all__)
