"""A publisher sees who used its products, for which purposes, how much — and only its own."""

from tests.conftest import Exchange
from tests.products import capture, captures_product

RECORDS = "/v1/products/violation-captures/records"


def _day(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product())
    exchange.publish("fleet", "violation-captures", [capture(n) for n in range(1, 31)])
    exchange.get("police", RECORDS, params={"purpose": "law_enforcement", "limit": 10})
    exchange.get("police", RECORDS, params={"purpose": "law_enforcement", "limit": 5})
    exchange.get("mapco", RECORDS, params={"purpose": "navigation_safety", "limit": 30})
    exchange.get("mapco", RECORDS, params={"purpose": "commercial"})


def test_the_owner_sees_requests_and_records_by_consumer_and_purpose(exchange: Exchange) -> None:
    _day(exchange)
    response = exchange.get("fleet", "/v1/usage")
    assert response.status_code == 200, response.text
    rows = {
        (r["organization"], r["purpose"], r["decision"]): (r["requests"], r["records"])
        for r in response.json()["usage"]
    }
    assert rows == {
        ("gz-traffic-police", "law_enforcement", "allow"): (2, 15),
        ("lingnan-maps", "navigation_safety", "allow"): (1, 30),
        ("lingnan-maps", "commercial", "deny"): (1, 0),
    }


def test_another_publisher_sees_nothing_of_products_it_does_not_own(exchange: Exchange) -> None:
    _day(exchange)
    response = exchange.get("hotline", "/v1/usage")
    assert response.status_code == 200, response.text
    assert response.json()["usage"] == []


def test_a_product_filter_and_a_time_window_narrow_the_summary(exchange: Exchange) -> None:
    _day(exchange)
    later = exchange.get("fleet", "/v1/usage", params={"from": "2999-01-01T00:00:00Z"})
    assert later.json()["usage"] == []
    other = exchange.get("fleet", "/v1/usage", params={"product": "something-else"})
    assert other.json()["usage"] == []
    bad = exchange.get("fleet", "/v1/usage", params={"from": "yesterday"})
    assert bad.status_code == 400


def test_only_publishers_see_usage_and_every_look_is_audited(exchange: Exchange) -> None:
    _day(exchange)
    for party in ("police", "mapco", "auditor", "steward"):
        assert exchange.get(party, "/v1/usage").status_code == 403
    exchange.get("fleet", "/v1/usage")
    entries = exchange.get("auditor", "/v1/audit/entries", params={"action": "usage.read"})
    seen = [(e["entry"]["organization"], e["entry"]["decision"]) for e in entries.json()["entries"]]
    assert seen == [
        ("gz-traffic-police", "deny"),
        ("lingnan-maps", "deny"),
        ("gz-audit-office", "deny"),
        ("gz-data-bureau", "deny"),
        ("pearl-robotaxi", "allow"),
    ]
