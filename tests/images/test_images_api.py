"""A record's image over HTTP: the owner uploads it once; the police get the evidence
byte for byte; everyone else gets a copy with plates and faces filled black and no
metadata, with a receipt binding it to the original; and whoever may not see images
gets none. Photos are the demo's generated street scenes; pixels are checked with
Pillow."""

import hashlib
import io
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text

from connectors.fleet.photos import scene
from exchange.main import create_app
from exchange.settings import Settings
from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.responses import ok, problem

PRODUCT = "violation-captures"
RECORDS = f"/v1/products/{PRODUCT}/records"
LAW = {"purpose": "law_enforcement"}  # police: raw
NAVIGATION = {"purpose": "navigation_safety"}  # mapco: protected
PURPOSES = ["law_enforcement", "traffic_management", "navigation_safety", "research"]
WIDTH, HEIGHT = 640, 360
GPS = {1: "N", 2: (23.0, 7.0, 28.0), 3: "E", 4: (113.0, 21.0, 40.0)}

# Records 1–6 carry the boxes of their scene; 7 has a plain reference (no boxes);
# 8 declares a box that runs past the right edge of a 640×360 photo.
WITH_BOXES = range(1, 7)
NO_BOXES = 7  # a bare reference: the record does not say where plates and faces are
OUTSIDE = 8
NONE_THERE = 9  # "boxes": []: the publisher declares there is nothing to hide


@cache
def scene_of(n: int) -> tuple[bytes, list[dict[str, Any]]]:
    data, boxes = scene(n, capture(n)["plate"], width=WIDTH, height=HEIGHT)
    return data, [box.as_dict() for box in boxes]


@cache
def photo(n: int) -> bytes:
    """Record n's scene as a camera would send it: with EXIF (GPS, make, model)."""
    image = Image.open(io.BytesIO(scene_of(n)[0]))
    exif = Image.Exif()
    exif[0x010F] = "Pearl Robotaxi"  # Make
    exif[0x0110] = "RoofCam 3"  # Model
    exif[0x8825] = GPS  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def boxes(n: int) -> list[dict[str, Any]]:
    return scene_of(n)[1]


def record(n: int) -> dict[str, Any]:
    if n == NO_BOXES:
        return capture(n)
    if n == NONE_THERE:
        return capture(n, photo={"ref": f"captures/{n}.jpg", "boxes": []})
    if n == OUTSIDE:
        outside = {"kind": "plate", "x": 600, "y": 300, "w": 100, "h": 30}
        return capture(n, photo={"ref": f"captures/{n}.jpg", "boxes": [outside]})
    return capture(n, photo={"ref": f"captures/{n}.jpg", "boxes": boxes(n)})


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    exchange.register("fleet", captures_product())
    published = exchange.publish("fleet", PRODUCT, [record(n) for n in range(1, 9)])
    assert published.status_code == 200, published.text
    return exchange


def image_path(n: int | str, product: str = PRODUCT) -> str:
    record_id = n if isinstance(n, str) else f"cap-{n:06d}"
    return f"/v1/products/{product}/records/{record_id}/image"


def put(
    exchange: Exchange,
    n: int | str,
    data: bytes,
    who: str = "fleet",
    product: str = PRODUCT,
    media_type: str = "image/jpeg",
) -> Any:
    return exchange.put(
        who, image_path(n, product), content=data, headers={"Content-Type": media_type}
    )


def get(exchange: Exchange, who: str, n: int | str, purpose: dict[str, str]) -> Any:
    return exchange.get(who, image_path(n), params=purpose)


def uploaded(exchange: Exchange, n: int, data: bytes | None = None) -> bytes:
    data = photo(n) if data is None else data
    response = put(exchange, n, data)
    assert response.status_code == 200, response.text
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def corners(box: dict[str, int]) -> tuple[int, int, int, int]:
    return box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]


def brightest(image: Image.Image, box: dict[str, int], inset: int = 0, mode: str = "RGB") -> int:
    """The largest channel value inside `box`, `inset` pixels in from its edges."""
    x0, y0, x1, y1 = corners(box)
    extrema = image.convert(mode).crop((x0 + inset, y0 + inset, x1 - inset, y1 - inset))
    values = extrema.getextrema()
    return int(values[1]) if mode == "L" else max(high for _, high in values)


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


def stored_images(settings: Settings) -> list[dict[str, Any]]:
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM record_image ORDER BY id"))
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


# --- uploading ----------------------------------------------------------------------------------


def test_the_owner_uploads_an_image_once(world: Exchange) -> None:
    data = photo(1)

    response = put(world, 1, data)

    assert ok(response) == {
        "id": "cap-000001",
        "stored": True,
        "media_type": "image/jpeg",
        "width": WIDTH,
        "height": HEIGHT,
        "bytes": len(data),
        "boxes": 2,
        "original_sha256": sha256(data),
    }
    (entry,) = audit(world, action="image.upload")
    assert (entry["decision"], entry["product"], entry["records"]) == ("allow", PRODUCT, [[1, 1]])
    assert sha256(data) in json.dumps(entry["details"])


def test_the_same_bytes_again_are_stored_once(world: Exchange, settings: Settings) -> None:
    data = uploaded(world, 1)

    again = ok(put(world, 1, data))

    assert again["stored"] is False
    assert again["original_sha256"] == sha256(data)
    assert len(stored_images(settings)) == 1
    assert [e["decision"] for e in audit(world, action="image.upload")] == ["allow", "allow"]


def test_other_bytes_for_an_imaged_record_are_a_conflict(
    world: Exchange, settings: Settings
) -> None:
    original = uploaded(world, 1)
    other = scene_of(1)[0]  # the same scene without EXIF: other bytes

    response = put(world, 1, other)

    problem(response, 409, "conflict")
    assert get(world, "police", 1, LAW).content == original
    assert len(stored_images(settings)) == 1
    denied = audit(world, action="image.upload", decision="deny")
    assert len(denied) == 1 and denied[0]["product"] == PRODUCT


@pytest.mark.parametrize(("format", "media_type"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_are_taken_too(world: Exchange, format: str, media_type: str) -> None:
    out = io.BytesIO()
    Image.open(io.BytesIO(scene_of(2)[0])).save(out, format)
    data = out.getvalue()

    stored = ok(put(world, 2, data, media_type=media_type))

    assert (stored["media_type"], stored["width"], stored["height"]) == (media_type, WIDTH, HEIGHT)
    assert get(world, "police", 2, LAW).content == data
    redacted = get(world, "mapco", 2, NAVIGATION)
    assert redacted.status_code == 200, redacted.text
    assert redacted.headers["content-type"] == media_type
    shown = decoded(redacted.content)
    assert shown.format == format
    receipt = json.loads(redacted.headers["exchange-redaction"])
    for region in receipt["boxes"]:
        if format == "PNG":  # lossless: exactly black
            assert brightest(shown, region) == 0
        else:
            assert brightest(shown, region, mode="L") <= 20


def test_the_image_is_stored_as_ciphertext(world: Exchange, settings: Settings) -> None:
    data = uploaded(world, 1)

    (row,) = stored_images(settings)

    sealed = bytes(row["sealed"])
    assert sealed != data and not sealed.startswith(b"\xff\xd8")
    assert b"Pearl Robotaxi" not in sealed and b"Exif" not in sealed
    assert all(data[i : i + 16] not in sealed for i in range(0, len(data) - 16, 501))
    assert (row["media_type"], row["width"], row["height"], row["size"]) == (
        "image/jpeg",
        WIDTH,
        HEIGHT,
        len(data),
    )
    assert sha256(data) not in json.dumps({k: str(v) for k, v in row.items()})


# --- serving ------------------------------------------------------------------------------------


def test_the_police_get_the_exact_original_bytes(world: Exchange) -> None:
    data = uploaded(world, 1)

    response = get(world, "police", 1, LAW)

    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["exchange-view"] == "raw"
    assert response.headers["exchange-treatment"] == "raw"
    assert response.headers["exchange-label"] == "raw"
    assert "exchange-redaction" not in response.headers
    assert response.headers["cache-control"] == "private, no-store"
    assert dict(decoded(response.content).getexif())  # the evidence keeps its metadata


def test_mapco_gets_plates_and_faces_filled_and_no_metadata(world: Exchange) -> None:
    data = uploaded(world, 1)
    original = decoded(data)
    for box in boxes(1):
        assert brightest(original, box, mode="L") > 100  # something there to hide

    response = get(world, "mapco", 1, NAVIGATION)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["exchange-view"] == "protected"
    assert response.headers["exchange-treatment"] == "redacted"
    assert response.headers["exchange-label"] == "deidentified"
    assert response.headers["cache-control"] == "private, no-store"
    shown = decoded(response.content)
    assert (shown.format, shown.size) == ("JPEG", (WIDTH, HEIGHT))
    assert not dict(shown.getexif())
    assert b"Pearl Robotaxi" not in response.content and b"Exif" not in response.content

    receipt = json.loads(response.headers["exchange-redaction"])
    assert receipt["original_sha256"] == sha256(data)
    assert receipt["output_sha256"] == sha256(response.content)
    assert (receipt["width"], receipt["height"], receipt["media_type"]) == (
        WIDTH,
        HEIGHT,
        "image/jpeg",
    )
    assert [region["kind"] for region in receipt["boxes"]] == ["plate", "face"]
    for declared, region in zip(boxes(1), receipt["boxes"], strict=True):
        x0, y0, x1, y1 = corners(region)
        dx0, dy0, dx1, dy1 = corners(declared)
        assert x0 <= dx0 and y0 <= dy0 and x1 >= dx1 and y1 >= dy1  # covers, with a margin
        assert brightest(shown, region, mode="L") <= 20
        assert brightest(shown, region, inset=1) <= 4
    assert max(high for _, high in shown.getextrema()) > 200  # the rest is still a picture


def test_the_redacted_read_is_audited_with_the_receipt_hashes(world: Exchange) -> None:
    data = uploaded(world, 3)
    served = get(world, "mapco", 3, NAVIGATION)
    receipt = json.loads(served.headers["exchange-redaction"])
    assert get(world, "police", 3, LAW).status_code == 200

    (read,) = audit(world, action="read", product=PRODUCT, organization="lingnan-maps")
    (evidence,) = audit(world, action="read", product=PRODUCT, organization="gz-traffic-police")

    assert (read["decision"], read["purpose"], read["view"]) == (
        "allow",
        "navigation_safety",
        "protected",
    )
    assert (read["record_count"], read["records"]) == (1, [[3, 3]])
    assert read["details"] == {
        "id": "cap-000003",
        "image": "redacted",
        "receipt": {
            "original_sha256": sha256(data),
            "output_sha256": sha256(served.content),
            "boxes": 2,
        },
    }
    assert receipt["output_sha256"] == read["details"]["receipt"]["output_sha256"]
    assert evidence["details"] == {"id": "cap-000003", "image": "raw"}
    assert evidence["view"] == "raw"


@pytest.mark.parametrize("who", ["mapco", "lab"])
@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_company_or_lab_never_gets_the_original(world: Exchange, who: str, purpose: str) -> None:
    data = uploaded(world, 2)

    response = get(world, who, 2, {"purpose": purpose})

    assert response.content != data
    assert sha256(data) != sha256(response.content)
    if purpose == "law_enforcement":
        problem(response, 403, "access_denied")
        return
    assert response.status_code == 200, response.text
    assert response.headers["exchange-treatment"] == "redacted"
    assert not dict(decoded(response.content).getexif())


def test_where_the_view_withholds_images_the_read_is_refused_and_audited(
    world: Exchange,
) -> None:
    uploaded(world, 1)
    current = world.get("steward", "/v1/policies").json()["lines"]
    line = "p2, *, *, *, image, redacted"
    assert line in current
    lines = ["p2, *, *, *, image, withheld" if item == line else item for item in current]
    changed = world.put("steward", "/v1/policies", json={"lines": lines, "reason": "no photos"})
    assert changed.status_code == 200, changed.text

    response = get(world, "mapco", 1, NAVIGATION)

    body = problem(response, 403, "access_denied")
    assert "photo" in body["detail"]
    assert response.content[:2] != b"\xff\xd8"
    (entry,) = audit(world, action="read", product=PRODUCT, organization="lingnan-maps")
    assert (entry["decision"], entry["purpose"], entry["record_count"]) == (
        "deny",
        "navigation_safety",
        0,
    )
    one = world.get("mapco", f"{RECORDS}/cap-000001", params=NAVIGATION).json()
    assert "photo" not in one["record"]
    assert get(world, "police", 1, LAW).content == photo(1)  # the evidence still there


@pytest.mark.parametrize(
    ("who", "tier", "purpose", "status"),
    [
        pytest.param("mapco", "government_only", "navigation_safety", 403, id="company-gov-only"),
        pytest.param("lab", "government_only", "research", 403, id="lab-gov-only"),
        pytest.param("mapco", "regulated", "navigation_safety", 403, id="company-no-grant"),
        pytest.param("lab", "regulated", "research", 403, id="lab-no-grant"),
        pytest.param("mapco", "open", "marketing", 403, id="undeclared-purpose"),
        pytest.param("fleet", "open", "navigation_safety", 403, id="publisher-of-another"),
        pytest.param("auditor", "open", "research", 403, id="auditor"),
    ],
)
def test_who_may_not_read_the_product_gets_no_image(
    exchange: Exchange, who: str, tier: str, purpose: str, status: int
) -> None:
    product = f"hotline-{tier.replace('_', '-')}"
    exchange.register("hotline", captures_product(product, tier=tier))
    assert exchange.publish("hotline", product, [record(1)]).status_code == 200
    assert put(exchange, 1, photo(1), who="hotline", product=product).status_code == 200

    response = exchange.get(who, image_path(1, product), params={"purpose": purpose})

    problem(response, status, "access_denied")
    assert photo(1) not in response.content
    police = exchange.get("police", image_path(1, product), params=LAW)
    assert police.content == photo(1)


def test_an_image_read_needs_a_purpose(world: Exchange) -> None:
    uploaded(world, 1)
    problem(world.get("police", image_path(1)), 400, "purpose_required")


def test_missing_records_and_images_are_not_found(world: Exchange) -> None:
    problem(get(world, "police", "cap-999999", LAW), 404, "not_found")
    problem(get(world, "police", 2, LAW), 404, "not_found")  # a record without an image
    problem(get(world, "mapco", 2, NAVIGATION), 404, "not_found")


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["mapco", "police", "lab", "hotline", "steward", "auditor"])
def test_only_the_owner_may_upload(world: Exchange, settings: Settings, who: str) -> None:
    problem(put(world, 1, photo(1), who=who), 403, "access_denied")
    assert stored_images(settings) == []


def _truncated() -> bytes:
    data = photo(1)
    return data[: len(data) // 2]


def _gif() -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(scene_of(1)[0])).save(out, "GIF")
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not an image at all", id="text"),
        pytest.param(b"\xff\xd8\xff\xe0" + b"\x00" * 64, id="jpeg-header-only"),
        pytest.param(_truncated(), id="truncated-jpeg"),
        pytest.param(_gif(), id="gif"),
    ],
)
def test_an_unreadable_image_is_refused_naming_the_body(
    world: Exchange, settings: Settings, data: bytes
) -> None:
    body = problem(put(world, 1, data), 422, "validation_failed")

    assert body["errors"][0]["field"] == "body"
    assert stored_images(settings) == []
    (entry,) = audit(world, action="image.upload")
    assert entry["decision"] == "deny"


def test_boxes_outside_the_image_are_refused_naming_the_field(
    world: Exchange, settings: Settings
) -> None:
    outside = problem(put(world, OUTSIDE, photo(OUTSIDE)), 422, "validation_failed")
    # Record 1's boxes fit a 640×360 scene, not the same scene at a quarter of the size.
    small, _ = scene(1, capture(1)["plate"], width=WIDTH // 2, height=HEIGHT // 2)
    smaller = problem(put(world, 1, small), 422, "validation_failed")

    for body in (outside, smaller):
        assert body["errors"][0]["field"] == "photo.boxes"
        assert "inside" in body["errors"][0]["reason"]
    assert stored_images(settings) == []
    assert [e["decision"] for e in audit(world, action="image.upload")] == ["deny", "deny"]


def test_an_unknown_record_is_not_found(world: Exchange, settings: Settings) -> None:
    problem(put(world, "cap-999999", photo(1)), 404, "not_found")
    assert stored_images(settings) == []


def test_a_product_without_an_image_field_takes_no_image(exchange: Exchange) -> None:
    definition = captures_product("no-photos")
    definition["fields"] = [f for f in definition["fields"] if f["type"] != "image_ref"]
    exchange.register("fleet", definition)
    plain = {k: v for k, v in capture(1).items() if k != "photo"}
    assert exchange.publish("fleet", "no-photos", [plain]).status_code == 200

    body = problem(put(exchange, 1, photo(1), product="no-photos"), 422, "validation_failed")

    assert body["errors"][0]["field"] == "product"


@pytest.fixture
def small_limit(exchange: Exchange, settings: Settings) -> Iterator[Exchange]:
    """The exchange served by an app that takes images of at most 4 KiB."""
    limited = Settings(
        database_url=settings.database_url, data_dir=settings.data_dir, max_image_bytes=4096
    )
    exchange.register("fleet", captures_product())
    assert exchange.publish("fleet", PRODUCT, [record(1), record(NONE_THERE)]).status_code == 200
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        original, exchange.client = exchange.client, client
        yield exchange
        exchange.client = original


def test_an_image_past_the_size_limit_is_refused(small_limit: Exchange, settings: Settings) -> None:
    data = photo(1)
    assert len(data) > 4096

    declared = put(small_limit, 1, data)
    streamed = small_limit.put(
        "fleet",
        image_path(1),
        content=iter([data[i : i + 1024] for i in range(0, len(data), 1024)]),
        headers={"Content-Type": "image/jpeg"},
    )

    problem(declared, 413, "payload_too_large")
    problem(streamed, 413, "payload_too_large")
    assert stored_images(settings) == []
    tiny = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), (90, 120, 150)).save(tiny, "PNG")
    assert len(tiny.getvalue()) <= 4096
    assert ok(put(small_limit, NONE_THERE, tiny.getvalue(), media_type="image/png"))["stored"]


def test_no_image_is_taken_for_a_record_that_does_not_say_where_its_plates_and_faces_are(
    world: Exchange, settings: Settings
) -> None:
    """Without boxes nothing says what a redacted copy must hide, so there would be no
    safe copy to give a company: the upload is refused (and audited)."""
    refused = put(world, NO_BOXES, photo(NO_BOXES))

    body = problem(refused, 422, "validation_failed")
    assert body["errors"][0]["field"] == "photo"
    assert "boxes" in body["errors"][0]["reason"]
    assert f"cap-{NO_BOXES:06d}" not in {row["record_id"] for row in stored_images(settings)}


# --- boxes, checked when the record is published ------------------------------------------------

PLATE_BOX = {"kind": "plate", "x": 10, "y": 10, "w": 40, "h": 12}


@pytest.mark.parametrize(
    ("image_ref", "where"),
    [
        pytest.param({"boxes": [PLATE_BOX | {"kind": "licence"}]}, "boxes[0]", id="unknown-kind"),
        pytest.param({"boxes": [PLATE_BOX | {"kind": "PLATE"}]}, "boxes[0]", id="kind-case"),
        pytest.param({"boxes": [PLATE_BOX | {"w": 0}]}, "boxes[0]", id="zero-width"),
        pytest.param({"boxes": [PLATE_BOX | {"h": 0}]}, "boxes[0]", id="zero-height"),
        pytest.param({"boxes": [PLATE_BOX | {"x": -1}]}, "boxes[0]", id="negative-x"),
        pytest.param({"boxes": [PLATE_BOX | {"y": -5}]}, "boxes[0]", id="negative-y"),
        pytest.param({"boxes": [PLATE_BOX | {"w": -40}]}, "boxes[0]", id="negative-width"),
        pytest.param({"boxes": [PLATE_BOX | {"x": 1.5}]}, "boxes[0]", id="fraction"),
        pytest.param({"boxes": [PLATE_BOX | {"x": "10"}]}, "boxes[0]", id="string"),
        pytest.param({"boxes": [PLATE_BOX | {"x": True}]}, "boxes[0]", id="boolean"),
        pytest.param({"boxes": [PLATE_BOX | {"w": 2**20}]}, "boxes[0]", id="huge"),
        pytest.param({"boxes": [PLATE_BOX | {"colour": "red"}]}, "boxes[0]", id="extra-key"),
        pytest.param(
            {"boxes": [{k: v for k, v in PLATE_BOX.items() if k != "h"}]}, "boxes[0]", id="no-h"
        ),
        pytest.param({"boxes": ["plate"]}, "boxes[0]", id="box-not-an-object"),
        pytest.param({"boxes": [PLATE_BOX, PLATE_BOX | {"w": 0}]}, "boxes[1]", id="second-box"),
        pytest.param({"boxes": PLATE_BOX}, "boxes", id="boxes-not-a-list"),
        pytest.param({"boxes": [PLATE_BOX] * 101}, "boxes", id="too-many-boxes"),
        pytest.param({"ref": "captures/1.jpg"}, "", id="no-boxes-key"),
        pytest.param({"ref": "a.jpg", "boxes": [], "exif": {}}, "", id="extra-top-level-key"),
        pytest.param({"ref": "", "boxes": []}, "", id="empty-ref"),
        pytest.param({"ref": 7, "boxes": []}, "", id="ref-not-text"),
    ],
)
def test_invalid_boxes_are_refused_at_publish_naming_record_and_field(
    exchange: Exchange, image_ref: Any, where: str
) -> None:
    exchange.register("fleet", captures_product())
    batch = [record(1), capture(2, photo=image_ref)]

    body = problem(exchange.publish("fleet", PRODUCT, batch), 422, "validation_failed")

    (error,) = body["errors"]
    assert (error["index"], error["field"]) == (1, "photo")
    assert where in error["reason"]
    page = exchange.get("police", RECORDS, params=LAW).json()
    assert page["records"] == []


def test_valid_boxes_are_kept_as_published(world: Exchange) -> None:
    one = ok(world.get("police", f"{RECORDS}/cap-000001", params=LAW))
    assert one["record"]["photo"] == {"ref": "captures/1.jpg", "boxes": boxes(1)}
    shown = ok(world.get("mapco", f"{RECORDS}/cap-000001", params=NAVIGATION))
    assert shown["record"]["photo"] == {"ref": "captures/1.jpg", "redacted": True}
