"""A subject's view: every read that returned records about one plate, found through a
keyed index so that the log never holds the plate."""

import json

from sqlalchemy import create_engine, text

from tests.conftest import Exchange
from tests.products import capture, captures_product

RECORDS = "/v1/products/violation-captures/records"
PLATE = "粤A·77777"


def _day(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product(subject_field="plate"))
    records = [capture(n) for n in range(1, 21)]
    records[4]["plate"] = PLATE  # cap-000005
    records[14]["plate"] = PLATE  # cap-000015
    assert exchange.publish("fleet", "violation-captures", records).status_code == 200


def _about(exchange: Exchange, subject: str, who: str = "auditor") -> object:
    return exchange.post(
        who, "/v1/audit/subjects", json={"product": "violation-captures", "subject": subject}
    )


def test_the_auditor_finds_every_read_that_returned_the_subject(exchange: Exchange) -> None:
    _day(exchange)
    first_page = exchange.get("police", RECORDS, params={"purpose": "law_enforcement", "limit": 10})
    second_page = exchange.get(
        "mapco",
        RECORDS,
        params={"purpose": "navigation_safety", "cursor": first_page.json()["next_cursor"]},
    )
    exchange.get("police", f"{RECORDS}/cap-000003", params={"purpose": "law_enforcement"})
    exchange.get("police", f"{RECORDS}/cap-000015", params={"purpose": "law_enforcement"})

    found = _about(exchange, PLATE)

    assert found.status_code == 200, found.text
    reads = [
        (e["entry"]["organization"], e["entry"]["request_id"]) for e in found.json()["entries"]
    ]
    assert [org for org, _ in reads] == ["gz-traffic-police", "lingnan-maps", "gz-traffic-police"]
    assert reads[0][1] == first_page.headers["x-request-id"]
    assert reads[1][1] == second_page.headers["x-request-id"]
    assert _about(exchange, "粤B·00000").json()["entries"] == []


def test_the_log_holds_no_plate_and_the_query_logs_only_a_keyed_hash(
    exchange: Exchange, settings: object
) -> None:
    _day(exchange)
    exchange.get("police", RECORDS, params={"purpose": "law_enforcement"})
    searched = exchange.get(
        "police", RECORDS, params={"purpose": "law_enforcement", "filter": f"plate={PLATE}"}
    )
    assert [r["id"] for r in searched.json()["records"]] == ["cap-000005", "cap-000015"]
    _about(exchange, PLATE)
    engine = create_engine(settings.resolved_database_url)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        subjects = [row[0] for row in connection.execute(text("SELECT subject FROM audit_subject"))]
        bodies = [
            bytes(row[0]).decode()
            for row in connection.execute(text("SELECT body FROM audit_entry"))
        ]
    engine.dispose()
    assert subjects and all(len(s) == 64 and PLATE not in s for s in subjects)
    assert not any(PLATE in body or json.dumps(PLATE) in body for body in bodies)
    query = exchange.get("auditor", "/v1/audit/entries", params={"action": "audit.subject"})
    (entry,) = [e["entry"] for e in query.json()["entries"]]
    assert len(entry["details"]["subject"]) == 64


def test_only_auditors_may_ask(exchange: Exchange) -> None:
    _day(exchange)
    for party in ("police", "mapco", "fleet", "steward"):
        assert _about(exchange, PLATE, who=party).status_code == 403


def test_a_subject_field_must_be_a_string_field(exchange: Exchange) -> None:
    response = exchange.post(
        "fleet", "/v1/products", json=captures_product(slug="other", subject_field="speed_kmh")
    )
    assert response.status_code == 400
    assert "subject_field" in response.text
