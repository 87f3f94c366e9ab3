"""The day on the exchange, steps 1–3 and 5, through the HTTP API."""

from tests.conftest import Exchange
from tests.products import capture, captures_product


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
    first = mapco.json()["records"][0]
    assert first["plate"] == "粤A·1****"
    assert "photo" not in first
    assert first["location"]["cell"].startswith("grid")

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
