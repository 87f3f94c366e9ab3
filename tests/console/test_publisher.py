"""The publisher's console pages over HTTP: my products with records per day, who
used my data, my images next to what companies see of them — and everyone else
kept out, with the refusal in the audit log."""

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from connectors.fleet.photos import scene
from tests.conftest import Exchange, run_cli
from tests.console.conftest import text_of
from tests.products import capture, captures_product
from tests.responses import ok

PRODUCT = "violation-captures"
REGULATED = "near-misses"
# The console's "today"; records are published at times around it.
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CELL = re.compile(r'data-product="([^"]+)" data-day="([^"]+)"[^>]*>(\d+)<')


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params={"limit": 1000, **filters}))
    return [item["entry"] for item in page["entries"]]


def published_at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr("exchange.records.publishing.utcnow", lambda: moment)


def publish(exchange: Exchange, product: str, numbers: range) -> None:
    body = ok(exchange.publish("fleet", product, [capture(n) for n in numbers]))
    assert body["accepted"] == len(numbers), body


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr("exchange.console.publisher.utcnow", lambda: NOW)
    return NOW


# --- my products --------------------------------------------------------------------------------


def test_the_fleet_sees_its_products_with_what_it_published_each_day(
    exchange, browser, monkeypatch, today
):
    exchange.register("fleet", captures_product())
    exchange.register("fleet", captures_product(REGULATED, "regulated", title="Near misses"))
    exchange.register("hotline", captures_product("hotline-tickets", "government_only"))
    midnight = today.replace(hour=0, minute=0)
    batches = [
        (PRODUCT, range(1, 3), midnight - timedelta(microseconds=1)),  # yesterday, last instant
        (PRODUCT, range(3, 6), midnight),  # today, first instant
        (PRODUCT, range(6, 7), midnight - timedelta(days=13)),  # first day of the window
        (PRODUCT, range(7, 9), midnight - timedelta(days=13, seconds=1)),  # before it
        (REGULATED, range(1, 5), midnight - timedelta(days=5, hours=-12)),
    ]
    for product, numbers, moment in batches:
        published_at(monkeypatch, moment)
        publish(exchange, product, numbers)

    response = browser("fleet").get("/console/publisher/products")

    assert response.status_code == 200, text_of(response.text)[:500]
    cells = {(slug, day): int(count) for slug, day, count in CELL.findall(response.text)}
    assert len(cells) == 2 * 14
    nonzero = {key: count for key, count in cells.items() if count}
    assert nonzero == {
        (PRODUCT, "2026-11-27"): 2,
        (PRODUCT, "2026-11-28"): 3,
        (PRODUCT, "2026-11-15"): 1,
        (REGULATED, "2026-11-23"): 4,
    }
    assert min(day for _, day in cells) == "2026-11-15"
    row = re.search(r'id="product-violation-captures".*?</tr>', response.text, re.S)
    assert row and 'href="/console/catalog/violation-captures"' in row.group(0)
    assert '<td class="record-count">8</td>' in row.group(0)  # all of them, in or out of window
    assert "hotline-tickets" not in response.text


def test_a_publisher_sees_no_other_organisation_s_products(exchange, browser, today):
    exchange.register("fleet", captures_product())
    ok(exchange.publish("fleet", PRODUCT, [capture(1)]))

    response = browser("hotline").get("/console/publisher/products")

    assert response.status_code == 200
    assert PRODUCT not in response.text
    assert not CELL.findall(response.text)


def test_the_section_opens_on_the_products_page(exchange, browser):
    response = browser("fleet").get("/console/publisher")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/publisher/products"


# --- usage --------------------------------------------------------------------------------------


def test_usage_shows_mapco_s_read_with_its_purpose_and_its_refusals(exchange, browser):
    exchange.register("fleet", captures_product())
    ok(exchange.publish("fleet", PRODUCT, [capture(n) for n in range(1, 4)]))
    records = f"/v1/products/{PRODUCT}/records"
    ok(exchange.get("mapco", records, params={"purpose": "navigation_safety"}))
    ok(exchange.get("mapco", records, params={"purpose": "navigation_safety", "limit": 1}))
    assert exchange.get("mapco", records, params={"purpose": "commercial"}).status_code == 403
    ok(exchange.get("police", records, params={"purpose": "law_enforcement"}))

    fleet = browser("fleet")
    response = fleet.get("/console/publisher/usage")

    assert response.status_code == 200, text_of(response.text)[:500]
    section = re.search(r'id="usage-violation-captures".*?</section>', response.text, re.S)
    assert section
    rows = [
        text_of(row)
        for row in re.findall(r"<tr>\s*<td class=\"organization\">.*?</tr>", section.group(0), re.S)
    ]
    assert "lingnan-maps navigation safety 2 4 0" in rows
    assert "lingnan-maps commercial 0 0 1" in rows
    assert "gz-traffic-police law enforcement 1 3 0" in rows
    assert ">read<" not in section.group(0)  # the answer says nothing of the action
    (entry,) = audit(exchange, action="usage.read", actor=exchange.parties["fleet"].client_id)
    assert entry["decision"] == "allow"


def test_usage_is_for_one_product_when_asked(exchange, browser):
    exchange.register("fleet", captures_product())
    exchange.register("fleet", captures_product(REGULATED, "regulated"))
    ok(exchange.publish("fleet", PRODUCT, [capture(1)]))
    ok(exchange.get("mapco", f"/v1/products/{PRODUCT}/records", params={"purpose": "research"}))
    exchange.get("mapco", f"/v1/products/{REGULATED}/records", params={"purpose": "research"})

    response = browser("fleet").get("/console/publisher/usage", params={"product": REGULATED})

    assert f'id="usage-{REGULATED}"' in response.text
    assert f'id="usage-{PRODUCT}"' not in response.text


# --- images -------------------------------------------------------------------------------------

WIDTH, HEIGHT = 640, 360


def scene_of(n: int) -> tuple[bytes, list[dict[str, Any]]]:
    data, boxes = scene(n, capture(n)["plate"], width=WIDTH, height=HEIGHT)
    return data, [box.as_dict() for box in boxes]


def with_photo(n: int) -> dict[str, Any]:
    return capture(n, photo={"ref": f"captures/{n}.jpg", "boxes": scene_of(n)[1]})


def with_photos(exchange: Exchange, product: str = PRODUCT, tier: str = "open") -> None:
    """Records 1–3 with boxes; 1 and 2 have their photo uploaded."""
    exchange.register("fleet", captures_product(product, tier))
    ok(exchange.publish("fleet", product, [with_photo(n) for n in range(1, 4)]))
    for n in (1, 2):
        response = exchange.put(
            "fleet",
            f"/v1/products/{product}/records/cap-{n:06d}/image",
            content=scene_of(n)[0],
            headers={"Content-Type": "image/jpeg"},
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def imaged(exchange: Exchange) -> Exchange:
    with_photos(exchange)
    return exchange


def console_image(record: int, view: str, purpose: str = "navigation_safety") -> str:
    return f"/console/publisher/images/{PRODUCT}/cap-{record:06d}?view={view}&purpose={purpose}"


def brightest(data: bytes, box: dict[str, int], inset: int = 2) -> int:
    image = Image.open(io.BytesIO(data)).convert("L")
    x, y, w, h = box["x"], box["y"], box["w"], box["h"]
    return int(image.crop((x + inset, y + inset, x + w - inset, y + h - inset)).getextrema()[1])


def test_the_images_page_shows_recent_records_raw_and_as_companies_see_them(imaged, browser):
    response = browser("fleet").get("/console/publisher/images")

    assert response.status_code == 200, text_of(response.text)[:500]
    for n in (1, 2, 3):
        assert f'id="record-cap-{n:06d}"' in response.text
        assert console_image(n, "raw").replace("&", "&amp;") in response.text
        assert console_image(n, "protected").replace("&", "&amp;") in response.text
    # the fleet (a company too) never reads for law enforcement: not offered
    assert '<option value="navigation_safety" selected>' in response.text
    assert 'value="law_enforcement"' not in response.text


def test_the_preview_is_what_mapco_gets_and_differs_from_the_raw_where_the_plate_is(
    imaged, browser
):
    fleet = browser("fleet")
    original, boxes = scene_of(1)

    raw = fleet.get(console_image(1, "raw"))
    preview = fleet.get(console_image(1, "protected"))

    assert raw.status_code == 200 and preview.status_code == 200, preview.text[:300]
    assert raw.content == original
    assert preview.headers["content-type"] == "image/jpeg"
    assert preview.headers["exchange-treatment"] == "redacted"
    assert "exchange-redaction" in preview.headers
    plate = next(box for box in boxes if box["kind"] == "plate")
    assert brightest(original, plate) > 60
    assert brightest(preview.content, plate) <= 20  # filled
    mapco = imaged.get(
        "mapco",
        f"/v1/products/{PRODUCT}/records/cap-000001/image",
        params={"purpose": "navigation_safety"},
    )
    assert mapco.status_code == 200
    assert preview.content == mapco.content  # the same redaction, byte for byte
    fleet_id = imaged.parties["fleet"].client_id
    (read,) = audit(imaged, action="read", actor=fleet_id, decision="allow")
    assert (read["view"], read["details"]["image"]) == ("raw", "raw")


def test_the_preview_is_logged_as_a_preview_under_the_publisher_s_own_decision(imaged, browser):
    fleet_id = imaged.parties["fleet"].client_id

    assert browser("fleet").get(console_image(1, "protected")).status_code == 200

    assert not audit(imaged, action="read", actor=fleet_id)
    (entry,) = audit(imaged, action="image.preview", actor=fleet_id)
    assert (entry["decision"], entry["view"], entry["purpose"]) == (
        "allow",
        "raw",  # what the fleet's own rule gives it, not the company's view
        "navigation_safety",
    )
    assert entry["details"]["image"] == "redacted"  # the treatment applied: the stricter
    assert entry["details"]["receipt"]["boxes"] == len(scene_of(1)[1])
    preview = entry["details"]["preview"]
    assert preview["as"] == {
        "kind": "enterprise",
        "roles": ["subscriber"],
        "organization": None,
        "granted": [],  # an open product: companies read it without a grant
    }
    assert (preview["purpose"], preview["allowed"], preview["view"], preview["image"]) == (
        "navigation_safety",
        True,
        "protected",
        "redacted",
    )
    assert preview["rule"][:2] == ["kind:enterprise+role:subscriber", "tier:open"]


def dry_run_of_the_unchanged_policy(exchange: Exchange) -> dict[str, Any]:
    lines = ok(exchange.get("steward", "/v1/policies"))["lines"]
    result = ok(
        exchange.post(
            "steward",
            "/v1/policies/dry-run",
            json={"lines": lines, "matrix": False, "replay": {}},
        )
    )
    return dict(result["replay"])


def test_a_preview_makes_no_false_flip_in_a_dry_run_of_the_unchanged_policy(imaged, browser):
    fleet = browser("fleet")
    assert fleet.get("/console/publisher/images").status_code == 200
    assert fleet.get(console_image(1, "protected")).status_code == 200
    assert fleet.get(console_image(1, "raw")).status_code == 200

    replay = dry_run_of_the_unchanged_policy(imaged)

    assert replay["flipped"] == 0, replay["groups"]
    assert replay["groups"] == []
    assert replay["replayed"] >= 2  # the page's read of the records and the raw image
    assert replay["skipped"]["action image.preview is not replayed"] == 1


def test_a_preview_refused_for_a_purpose_companies_never_get_is_not_replayed(exchange, browser):
    government_only_with_a_photo(exchange, "hotline")
    hotline = browser("hotline")
    preview = "/console/publisher/images/city-only/cap-000001?view=protected&purpose=research"

    assert hotline.get(preview).status_code == 404

    (entry,) = audit(exchange, actor=exchange.parties["hotline"].client_id, decision="deny")
    assert (entry["action"], entry["view"]) == ("image.preview", "raw")
    assert dry_run_of_the_unchanged_policy(exchange)["flipped"] == 0


def test_a_regulated_product_is_previewed_as_a_company_holding_a_grant(exchange, browser):
    with_photos(exchange, REGULATED, "regulated")
    path = f"/console/publisher/images/{REGULATED}/cap-000001?view=protected&purpose=research"

    preview = browser("fleet").get(path)

    assert preview.status_code == 200, text_of(preview.text)[:300]
    assert preview.headers["exchange-treatment"] == "redacted"
    (entry,) = audit(exchange, action="image.preview")
    company = entry["details"]["preview"]
    assert company["as"]["granted"] == ["research"]
    assert company["rule"][:4] == ["role:subscriber", "tier:regulated", "read", "@granted"]
    assert not audit(exchange, action="access_request.create")  # nothing was asked or granted
    assert not ok(exchange.get("steward", "/v1/grants"))["grants"]


def test_an_open_product_is_previewed_as_a_company_holding_no_grant(imaged, browser):
    """Under a policy where companies read open products only with a grant, a
    company without one gets nothing: so the preview shows nothing either."""
    lines = ok(imaged.get("steward", "/v1/policies"))["lines"]
    declared = "p, kind:enterprise+role:subscriber, tier:open, read, @declared, protected, allow"
    granted = "p, role:subscriber, tier:open, read, @granted, protected, allow"
    assert declared in lines
    lines = [line for line in lines if line != declared] + [granted]
    changed = imaged.put(
        "steward", "/v1/policies", json={"lines": lines, "reason": "open data by grant only"}
    )
    assert changed.status_code == 200, changed.text
    fleet = browser("fleet")

    listed = fleet.get("/console/publisher/images")
    preview = fleet.get(console_image(1, "protected"))

    assert "view=protected" not in listed.text
    assert "Companies get no protected view" in text_of(listed.text)
    assert preview.status_code == 404, preview.headers
    assert fleet.get(console_image(1, "raw")).status_code == 200


def test_the_images_page_shows_the_newest_records_after_newer_ones_are_gone(
    exchange, browser, settings
):
    """Records 4–9 were published last but captured long ago: retention removes
    them, and the page still shows the newest records there are (1–3)."""
    with_photos(exchange)
    old = [capture(n, captured_at="2025-01-01T08:00:00Z") for n in range(4, 10)]
    ok(exchange.publish("fleet", PRODUCT, old))
    removed = json.loads(run_cli(settings, "retention", "run"))
    assert [(each["product"], each["records"]) for each in removed] == [(PRODUCT, 6)]

    response = browser("fleet").get("/console/publisher/images")

    assert response.status_code == 200, text_of(response.text)[:500]
    shown = re.findall(r'id="record-(cap-\d+)"', response.text)
    assert shown == ["cap-000003", "cap-000002", "cap-000001"]


def test_the_images_page_shows_only_the_newest_records(exchange, browser):
    with_photos(exchange)
    ok(exchange.publish("fleet", PRODUCT, [with_photo(n) for n in range(4, 12)]))

    response = browser("fleet").get("/console/publisher/images")

    shown = re.findall(r'id="record-(cap-\d+)"', response.text)
    assert shown == [f"cap-{n:06d}" for n in range(11, 5, -1)]


def test_a_purpose_that_is_not_a_purpose_name_is_a_bad_request(imaged, browser):
    response = browser("fleet").get(console_image(1, "raw", "Not a purpose!"))
    assert response.status_code == 400
    assert "purpose" in text_of(response.text)
    (entry,) = audit(imaged, action="read", actor=imaged.parties["fleet"].client_id)
    assert (entry["decision"], entry["purpose"]) == ("deny", "Not a purpose!")


def test_an_unknown_product_s_image_is_not_found_and_the_refusal_logged(imaged, browser):
    response = browser("fleet").get(
        "/console/publisher/images/nope/cap-000001?view=raw&purpose=research"
    )
    assert response.status_code == 404
    (entry,) = audit(imaged, actor=imaged.parties["fleet"].client_id, decision="deny")
    assert (entry["action"], entry["product"]) == ("read", "nope")


def test_a_record_without_an_uploaded_photo_is_not_found(imaged, browser):
    response = browser("fleet").get(console_image(3, "protected"))
    assert response.status_code == 404


def test_mapco_cannot_have_the_raw_image_through_the_console(imaged, browser):
    mapco = browser("mapco")

    for view in ("raw", "protected"):
        response = mapco.get(console_image(1, view))
        assert response.status_code == 403, response.text[:300]
        assert response.headers["content-type"].startswith("text/html")
    refused = audit(imaged, actor=imaged.parties["mapco"].client_id, decision="deny")
    assert [entry["action"] for entry in refused] == ["catalog.register", "catalog.register"]


def test_another_publisher_cannot_see_the_fleet_s_raw_image(imaged, browser):
    response = browser("hotline").get(console_image(1, "raw", "traffic_management"))

    assert response.status_code == 403
    (entry,) = audit(imaged, actor=imaged.parties["hotline"].client_id, decision="deny")
    assert (entry["action"], entry["product"], entry["purpose"]) == (
        "read",
        PRODUCT,
        "traffic_management",
    )


def test_no_purpose_no_image(imaged, browser):
    response = browser("fleet").get(f"/console/publisher/images/{PRODUCT}/cap-000001?view=raw")
    assert response.status_code == 400
    assert "purpose" in text_of(response.text)
    (entry,) = audit(imaged, actor=imaged.parties["fleet"].client_id, decision="deny")
    assert entry["action"] == "read"


def test_a_view_that_is_neither_raw_nor_protected_is_a_bad_request(imaged, browser):
    response = browser("fleet").get(console_image(1, "pseudonymized"))
    assert response.status_code == 400
    assert "view" in text_of(response.text)


def government_only_with_a_photo(exchange: Exchange, who: str) -> None:
    exchange.register(who, captures_product("city-only", "government_only"))
    ok(exchange.publish(who, "city-only", [with_photo(1)]))
    ok(
        exchange.put(
            who,
            "/v1/products/city-only/records/cap-000001/image",
            content=scene_of(1)[0],
            headers={"Content-Type": "image/jpeg"},
        )
    )


def test_no_preview_of_a_product_companies_never_get(exchange, browser):
    government_only_with_a_photo(exchange, "hotline")
    hotline = browser("hotline")

    listed = hotline.get("/console/publisher/images", params={"product": "city-only"})
    raw = hotline.get("/console/publisher/images/city-only/cap-000001?view=raw&purpose=research")
    preview = hotline.get(
        "/console/publisher/images/city-only/cap-000001?view=protected&purpose=research"
    )

    assert listed.status_code == 200, text_of(listed.text)[:500]
    assert "Companies get no protected view" in text_of(listed.text)
    assert 'id="record-cap-000001"' in listed.text
    assert "view=protected" not in listed.text
    assert raw.status_code == 200 and raw.content == scene_of(1)[0]
    assert preview.status_code == 404
    assert "companies get no protected view" in text_of(preview.text)


def test_a_product_its_owner_may_not_read_shows_no_images(exchange, browser):
    """An enterprise may not read government-only data, not even its own."""
    government_only_with_a_photo(exchange, "fleet")

    listed = browser("fleet").get("/console/publisher/images", params={"product": "city-only"})

    assert listed.status_code == 200, text_of(listed.text)[:500]
    assert 'id="unreadable"' in listed.text
    assert "/console/publisher/images/city-only/" not in listed.text
    assert not audit(exchange, actor=exchange.parties["fleet"].client_id, action="read")


# --- who may open the section -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/console/publisher", "catalog.register"),
        ("/console/publisher/products", "catalog.register"),
        ("/console/publisher/usage", "usage.read"),
        ("/console/publisher/images", "catalog.register"),
    ],
)
def test_a_subscriber_cannot_open_publisher_pages(exchange, browser, path, logged):
    response = browser("mapco").get(path)

    assert response.status_code == 403
    assert "Access denied" in text_of(response.text)
    (entry,) = audit(exchange, actor=exchange.parties["mapco"].client_id, decision="deny")
    assert entry["action"] == logged


def test_pages_without_anything_to_show_say_so(exchange, browser):
    hotline = browser("hotline")

    images = hotline.get("/console/publisher/images")
    usage = hotline.get("/console/publisher/usage")

    assert images.status_code == 200 and usage.status_code == 200
    assert "None of your products has an image field." in text_of(images.text)
    assert 'id="usage-none"' in usage.text


def test_asking_for_another_organisation_s_images_page_is_not_found(imaged, browser):
    response = browser("hotline").get("/console/publisher/images", params={"product": PRODUCT})
    assert response.status_code == 404
    assert not audit(imaged, actor=imaged.parties["hotline"].client_id, action="read")
