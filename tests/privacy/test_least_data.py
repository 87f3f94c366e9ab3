"""A company never receives a raw plate, a face or a precise point, through any route.

Every GET route under a product is walked for the map company and the lab, for
every purpose they may use (the regulated product under an approved grant): the
records as JSON and NDJSON, one record, its image and aggregates. No response may
hold a plate in any spelling, a published coordinate, or the photo's plate and
face pixels. A route added later without being added here fails the coverage test.
"""

import io
import json
from typing import Any

import pytest
from PIL import Image

from connectors.fleet.photos import scene
from tests.conftest import Exchange
from tests.products import capture, captures_product

OPEN, REGULATED = "violation-captures", "near-misses"
COMPANIES = {"mapco": ("navigation_safety", "research", "traffic_management"), "lab": ("research",)}
COUNT = 12
PHOTOS: dict[str, tuple[bytes, list[Any]]] = {
    f"cap-{n:06d}": scene(n, capture(n)["plate"], width=320, height=180) for n in range(1, 4)
}


def _records() -> list[dict[str, Any]]:
    records = []
    for n in range(1, COUNT + 1):
        record = capture(n, location={"lat": 23.123456 + n * 1e-4, "lon": 113.265432})
        if record["id"] in PHOTOS:
            boxes = [box.as_dict() for box in PHOTOS[record["id"]][1]]
            record["photo"] = {"ref": record["photo"], "boxes": boxes}
        records.append(record)
    return records


RECORDS = _records()
PLATES = {r["plate"] for r in RECORDS}
SPELLINGS = PLATES | {p.replace("·", "") for p in PLATES} | {p.split("·")[1] for p in PLATES}
POINTS = {r["location"]["lat"] for r in RECORDS} | {r["location"]["lon"] for r in RECORDS}


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    for slug, tier in ((OPEN, "open"), (REGULATED, "regulated")):
        exchange.register("fleet", captures_product(slug, tier))
        assert exchange.publish("fleet", slug, RECORDS).status_code == 200
        for record_id, (photo, _) in PHOTOS.items():
            path = f"/v1/products/{slug}/records/{record_id}/image"
            assert exchange.put("fleet", path, content=photo).status_code == 200
    request = exchange.post(
        "lab",
        "/v1/access-requests",
        json={
            "product": REGULATED,
            "purpose": "research",
            "justification": "Near-miss hot spots for a road-safety study",
            "days": 30,
        },
    )
    assert request.status_code == 201, request.text
    approved = exchange.post(
        "steward",
        f"/v1/access-requests/{request.json()['id']}/approve",
        json={"reason": "Study protocol checked"},
    )
    assert approved.status_code == 200, approved.text
    return exchange


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, float) else []


def _check_text(where: str, text: str) -> None:
    assert not [p for p in SPELLINGS if p in text], f"{where} holds a plate"


def _check_json(where: str, body: Any) -> None:
    _check_text(where, json.dumps(body, ensure_ascii=False))
    assert not POINTS & set(_numbers(body)), f"{where} holds a published coordinate"


def _check_image(where: str, data: bytes, record_id: str) -> None:
    original, boxes = PHOTOS[record_id]
    assert data != original, f"{where} is the original photo"
    shown = Image.open(io.BytesIO(data)).convert("L")
    for box in boxes:
        inside = shown.crop((box.x, box.y, box.x + box.w, box.y + box.h))
        low, high = inside.getextrema()
        assert high <= 20, f"{where}: the {box.kind} is still visible ({low}-{high})"


def _reads(world: Exchange) -> list[tuple[str, str, str]]:
    """(who, product, purpose) for every read a company may make."""
    reads = [(who, OPEN, purpose) for who, purposes in COMPANIES.items() for purpose in purposes]
    return [*reads, ("lab", REGULATED, "research")]


def _walk(world: Exchange) -> set[str]:
    """Every company read on every product route; the route templates exercised."""
    walked: set[str] = set()
    for who, product, purpose in _reads(world):
        base = f"/v1/products/{product}/records"
        where = f"{who} {product} {purpose}"
        listed = world.get(who, base, params={"purpose": purpose, "limit": COUNT})
        assert listed.status_code == 200, listed.text
        _check_json(f"{where} records", listed.json())
        streamed = world.get(
            who, base, params={"purpose": purpose}, headers={"Accept": "application/x-ndjson"}
        )
        assert streamed.status_code == 200
        for line in streamed.text.splitlines():
            _check_json(f"{where} ndjson", json.loads(line))
        for record_id in PHOTOS:
            one = world.get(who, f"{base}/{record_id}", params={"purpose": purpose})
            assert one.status_code == 200, one.text
            _check_json(f"{where} one record", one.json())
            image = world.get(who, f"{base}/{record_id}/image", params={"purpose": purpose})
            assert image.status_code == 200, image.text
            assert image.headers["exchange-treatment"] == "redacted"
            _check_image(f"{where} image {record_id}", image.content, record_id)
            _check_text(f"{where} image headers", json.dumps(dict(image.headers)))
        for by in ("cell", "day", "violation_type"):
            counted = world.get(
                who,
                f"/v1/products/{product}/aggregates",
                params={"purpose": purpose, "by": by, "epsilon": 0.5},
            )
            assert counted.status_code == 200, counted.text
            _check_json(f"{where} aggregates by {by}", counted.json())
        walked |= {
            "/v1/products/{product}/records",
            "/v1/products/{product}/records/{record_id}",
            "/v1/products/{product}/records/{record_id}/image",
            "/v1/products/{product}/aggregates",
        }
    for who in COMPANIES:
        for product in (OPEN, REGULATED):
            details = world.get(who, f"/v1/products/{product}")
            assert details.status_code == 200
            _check_json(f"{who} {product} details", details.json())
    walked.add("/v1/products/{product}")
    return walked


def test_no_company_read_returns_a_plate_a_point_or_a_face(world: Exchange) -> None:
    walked = _walk(world)
    product_reads = {
        route.path
        for route in world.client.app.routes
        if "{product}" in getattr(route, "path", "") and "GET" in getattr(route, "methods", ())
    }
    assert product_reads <= walked, f"routes not checked for least data: {product_reads - walked}"


def test_companies_cannot_read_for_law_enforcement_or_reidentify(world: Exchange) -> None:
    for who in COMPANIES:
        for path in ("records", "records/cap-000001", "records/cap-000001/image", "aggregates"):
            refused = world.get(
                who,
                f"/v1/products/{OPEN}/{path}",
                params={"purpose": "law_enforcement", "by": "day"},
            )
            assert refused.status_code == 403, (who, path, refused.text)
            _check_text(f"{who} {path} refusal", refused.text)
        reidentified = world.post(
            who,
            f"/v1/products/{OPEN}/reidentify",
            params={"purpose": "law_enforcement"},
            json={
                "pseudonym": "ps_" + "a" * 26,
                "consumer": "lingnan-maps",
                "case_reference": "X-1",
            },
        )
        assert reidentified.status_code == 403
        _check_text(f"{who} reidentify", reidentified.text)
