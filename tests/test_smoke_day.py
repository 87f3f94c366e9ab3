"""The day on the exchange, steps 1–3 and 5, through the HTTP API."""

from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, pseudonym_for


def test_police_raw_mapco_protected_commercial_denied_auditor_sees_all(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product())
    published = exchange.publish("fleet", "violation-captures", [capture(n) for n in range(1, 21)])
    assert published.status_code == 200, published.text
    assert published.json()["accepted"] == 20

    police = exchange.get(
        "police", "/v1/products/violation-captures/records", params={"purpose": "law_enforcement"}
    )
    assert police.status_code == 200, police.text
    assert police.json()["view"] == "raw"
    assert police.json()["records"][0]["plate"] == "粤A·10001"

    mapco = exchange.get(
        "mapco", "/v1/products/violation-captures/records", params={"purpose": "navigation_safety"}
    )
    assert mapco.status_code == 200
    page = mapco.json()
    first = page["records"][0]
    assert (page["fields"]["plate"], page["label"]) == ("pseudonymized", "deidentified")
    assert PSEUDONYM.fullmatch(first["plate"])
    assert first["plate"] == pseudonym_for(
        exchange.settings,
        "lingnan-maps",
        "violation-captures",
        "粤A·10001",
        page["pseudonyms_until"],
    )
    assert first["photo"] == {"ref": "captures/cap-000001.jpg", "redacted": True}
    assert first["location"]["cell"].startswith("h3:")

    denied = exchange.get(
        "mapco", "/v1/products/violation-captures/records", params={"purpose": "commercial"}
    )
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"

    entries = exchange.get(
        "auditor", "/v1/audit/entries", params={"product": "violation-captures", "action": "read"}
    ).json()["entries"]
    outcomes = [(e["entry"]["organization"], e["entry"]["decision"]) for e in entries]
    assert outcomes == [
        ("gz-traffic-police", "allow"),
        ("lingnan-maps", "allow"),
        ("lingnan-maps", "deny"),
    ]
