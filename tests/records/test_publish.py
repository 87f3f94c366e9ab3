"""Publishing records: validation, atomicity, idempotency, bodies, size, access, audit."""

import json
from typing import Any

import pytest

from tests.conftest import Exchange
from tests.products import capture, captures_product

PRODUCT = "violation-captures"
RECORDS = f"/v1/products/{PRODUCT}/records"
PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The exchange with the fleet's captures product registered and empty."""
    exchange.register("fleet", captures_product())
    return exchange


def record_count(exchange: Exchange, product: str = PRODUCT) -> int:
    response = exchange.get("fleet", f"/v1/products/{product}")
    assert response.status_code == 200, response.text
    return response.json()["record_count"]


def stored(exchange: Exchange, product: str = PRODUCT) -> list[dict[str, Any]]:
    """Every stored record, read back by the owner in the raw view."""
    response = exchange.get(
        "fleet",
        f"/v1/products/{product}/records",
        params={"purpose": "research", "limit": 1000},
    )
    assert response.status_code == 200, response.text
    assert response.json()["view"] == "raw"
    return response.json()["records"]


def stored_ids(exchange: Exchange, product: str = PRODUCT) -> list[str]:
    return [record["id"] for record in stored(exchange, product)]


def assert_nothing_written(exchange: Exchange, product: str = PRODUCT) -> None:
    assert record_count(exchange, product) == 0
    assert stored(exchange, product) == []


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != name}


def publish_entries(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get(
        "auditor",
        "/v1/audit/entries",
        params={"action": "publish", "product": PRODUCT, **filters},
    )
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


# --- A bad batch is rejected whole ---------------------------------------------------------

BAD_RECORDS = [
    pytest.param(
        capture(1, speed_kmh="fast"), "speed_kmh", "expected a number", id="string-for-number"
    ),
    pytest.param(without(capture(1), "plate"), "plate", "required", id="missing-required"),
    pytest.param(capture(1, plate=None), "plate", "required", id="required-null"),
    pytest.param(capture(1, colour="red"), "colour", "not a field", id="unknown-field"),
    pytest.param(
        capture(1, captured_at="2026-11-21T08:01:00"),
        "captured_at",
        "offset",
        id="timestamp-no-zone",
    ),
    pytest.param(capture(1, captured_at="yesterday"), "captured_at", "", id="timestamp-not-a-time"),
    pytest.param(
        capture(1, captured_at="0001-01-01T00:00:00+01:00"),
        "captured_at",
        "",
        id="timestamp-before-year-1-in-utc",
    ),
    pytest.param(
        capture(1, location={"lat": 91.0, "lon": 113.36}), "location", "latitude", id="lat-range"
    ),
    pytest.param(
        capture(1, location={"lat": 23.12, "lon": -180.5}), "location", "longitude", id="lon-range"
    ),
    pytest.param(capture(1, location=[23.12, 113.36]), "location", "lat", id="point-as-list"),
    pytest.param(
        capture(1, location={"lat": 23.12, "lng": 113.36}), "location", "lat", id="point-keys"
    ),
    pytest.param(
        capture(1, location={"lat": "23.12", "lon": 113.36}), "location", "number", id="point-str"
    ),
    pytest.param(capture(1, night="true"), "night", "true or false", id="boolean-as-string"),
    pytest.param(capture(1, lane=1.5), "lane", "integer", id="integer-as-fraction"),
    pytest.param(capture(1, lane=True), "lane", "integer", id="integer-as-boolean"),
    pytest.param(without(capture(1), "id"), "id", "string id", id="id-missing"),
    pytest.param(capture(1, id=""), "id", "string id", id="id-empty"),
    pytest.param(capture(1, id="   "), "id", "string id", id="id-blank"),
    pytest.param(capture(1, id=42), "id", "string id", id="id-number"),
    pytest.param(capture(1, id="x" * 201), "id", "string id", id="id-too-long"),
    pytest.param(capture(1, id="cap\u0000001"), "id", "", id="id-with-nul"),
    pytest.param(capture(1, photo=""), "photo", "non-empty", id="image-ref-empty"),
    pytest.param(capture(1, speed_kmh=10**400), "speed_kmh", "64-bit", id="number-too-large"),
    *(
        pytest.param(capture(1, photo={"boxes": [box]}), "photo", reason, id=name)
        for name, box, reason in [
            ("box-kind-a-list", {"kind": [], "x": 1, "y": 1, "w": 2, "h": 2}, "kind"),
            ("box-kind-unknown", {"kind": "car", "x": 1, "y": 1, "w": 2, "h": 2}, "kind"),
            ("box-zero-size", {"kind": "face", "x": 1, "y": 1, "w": 0, "h": 2}, "width"),
            ("box-negative", {"kind": "face", "x": -1, "y": 1, "w": 2, "h": 2}, "whole"),
            ("box-extra-key", {"kind": "face", "x": 1, "y": 1, "w": 2, "h": 2, "z": 0}, "expected"),
        ]
    ),
    pytest.param(capture(1, photo={"ref": "a.jpg"}), "photo", "boxes", id="image-without-boxes"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), BAD_RECORDS)
def test_one_bad_record_rejects_the_batch_and_is_named(
    world: Exchange, bad: dict[str, Any], field: str, reason: str
) -> None:
    response = world.publish("fleet", PRODUCT, [capture(10), bad, capture(12)])

    body = problem(response, 422)
    assert body["type"] == "urn:exchange:problem:validation_failed"
    assert "nothing was written" in body["detail"]
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["index"] == 1
    assert error["field"] == field
    assert reason in error["reason"]
    assert_nothing_written(world)


def test_text_that_is_not_unicode_is_named(world: Exchange) -> None:
    """JSON can escape a lone surrogate (\\ud800); no UTF-8 text can hold one."""
    body = json.dumps([capture(1, plate="粤A\ud800")])  # ASCII, with the escape
    response = world.post(
        "fleet",
        f"/v1/products/{PRODUCT}/records",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    error = problem(response, 422)["errors"][0]
    assert (error["index"], error["field"]) == (0, "plate")
    assert "Unicode" in error["reason"]
    assert_nothing_written(world)


@pytest.mark.parametrize("bad", ["cap-000001", 17, None, [capture(1)], True])
def test_a_record_that_is_not_an_object_is_named_by_index(world: Exchange, bad: Any) -> None:
    response = world.publish("fleet", PRODUCT, [capture(1), capture(2), bad])

    body = problem(response, 422)
    assert body["errors"] == [{"index": 2, "reason": "a record is a JSON object"}]
    assert_nothing_written(world)


def test_every_bad_record_of_a_batch_is_reported_in_index_order(world: Exchange) -> None:
    batch = [
        capture(0),
        capture(1, speed_kmh="fast"),
        capture(2),
        "not a record",
        capture(4, captured_at="2026-11-21 08:00"),
        capture(5),
        without(capture(6), "id"),
        capture(7, night="false"),
    ]

    body = problem(world.publish("fleet", PRODUCT, batch), 422)

    assert [error["index"] for error in body["errors"]] == [1, 3, 4, 6, 7]
    assert [error.get("field") for error in body["errors"]] == [
        "speed_kmh",
        None,
        "captured_at",
        "id",
        "night",
    ]
    assert all(error["reason"] for error in body["errors"])
    assert body["detail"].startswith("5 of 8 records rejected")
    assert_nothing_written(world)


def test_conflicts_and_invalid_records_together_are_422_in_index_order(world: Exchange) -> None:
    assert world.publish("fleet", PRODUCT, [capture(1)]).status_code == 200

    # The conflict (index 0) is found after validation, yet listed first.
    batch = [capture(1, speed_kmh=99.0), capture(2), capture(3, lane="two")]
    body = problem(world.publish("fleet", PRODUCT, batch), 422)

    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "id"), (2, "lane")]
    assert "already published" in body["errors"][0]["reason"]
    assert stored_ids(world) == ["cap-000001"]


# --- atomic=false ---------------------------------------------------------------------------


def test_non_atomic_stores_the_good_and_lists_the_bad(world: Exchange) -> None:
    batch = [
        capture(0),
        capture(1, speed_kmh="fast"),
        capture(2),
        ["not", "an", "object"],
        capture(4, location={"lat": -91.0, "lon": 0.0}),
        capture(5),
    ]

    response = world.publish("fleet", PRODUCT, batch, atomic="false")

    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["accepted"] == 3
    assert outcome["unchanged"] == 0
    assert outcome["first_seq"] == 1
    assert outcome["last_seq"] == 3
    rejected = outcome["rejected"]
    assert [(e["index"], e.get("field")) for e in rejected] == [
        (1, "speed_kmh"),
        (3, None),
        (4, "location"),
    ]
    assert all(e["reason"] for e in rejected)
    assert stored_ids(world) == ["cap-000000", "cap-000002", "cap-000005"]
    assert [r["seq"] for r in stored(world)] == [1, 2, 3]
    assert record_count(world) == 3


def test_non_atomic_lists_a_conflict_and_stores_the_rest(world: Exchange) -> None:
    world.publish("fleet", PRODUCT, [capture(1)])

    batch = [capture(2), capture(1, violation_type="speeding")]
    response = world.publish("fleet", PRODUCT, batch, atomic="false")

    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["accepted"] == 1
    assert [(e["index"], e["field"]) for e in outcome["rejected"]] == [(1, "id")]
    assert "already published" in outcome["rejected"][0]["reason"]
    records = {r["id"]: r for r in stored(world)}
    assert set(records) == {"cap-000001", "cap-000002"}
    assert records["cap-000001"]["violation_type"] == capture(1)["violation_type"]


def test_non_atomic_with_only_bad_records_writes_nothing(world: Exchange) -> None:
    response = world.publish("fleet", PRODUCT, [1, 2], atomic="false")

    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["accepted"] == 0
    assert outcome["first_seq"] is None
    assert outcome["last_seq"] is None
    assert [e["index"] for e in outcome["rejected"]] == [0, 1]
    assert_nothing_written(world)


# --- Idempotency ------------------------------------------------------------------------------


def test_publishing_the_same_batch_twice_changes_nothing(world: Exchange) -> None:
    batch = [capture(n) for n in range(1, 21)]
    first = world.publish("fleet", PRODUCT, batch)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "accepted": 20,
        "unchanged": 0,
        "rejected": [],
        "first_seq": 1,
        "last_seq": 20,
    }

    again = world.publish("fleet", PRODUCT, batch)

    assert again.status_code == 200, again.text
    assert again.json() == {
        "accepted": 0,
        "unchanged": 20,
        "rejected": [],
        "first_seq": None,
        "last_seq": None,
    }
    assert record_count(world) == 20
    assert [r["seq"] for r in stored(world)] == list(range(1, 21))


def test_a_batch_of_old_and_new_records_stores_only_the_new(world: Exchange) -> None:
    world.publish("fleet", PRODUCT, [capture(n) for n in range(1, 4)])

    response = world.publish("fleet", PRODUCT, [capture(n) for n in range(2, 6)])

    assert response.status_code == 200, response.text
    outcome = response.json()
    assert (outcome["accepted"], outcome["unchanged"]) == (2, 2)
    assert (outcome["first_seq"], outcome["last_seq"]) == (4, 5)
    assert stored_ids(world) == [capture(n)["id"] for n in range(1, 6)]


def test_same_id_with_other_content_is_a_conflict_and_nothing_is_written(
    world: Exchange,
) -> None:
    world.publish("fleet", PRODUCT, [capture(n) for n in range(1, 4)])

    batch = [capture(10), capture(2, speed_kmh=99.0), capture(11)]
    response = world.publish("fleet", PRODUCT, batch)

    body = problem(response, 409)
    assert body["type"] == "urn:exchange:problem:conflict"
    assert "nothing was written" in body["detail"]
    assert len(body["errors"]) == 1
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["field"] == "id"
    assert "already published" in body["errors"][0]["reason"]
    assert record_count(world) == 3
    records = stored(world)
    assert [r["id"] for r in records] == ["cap-000001", "cap-000002", "cap-000003"]
    assert records[1]["speed_kmh"] == 42.5


def test_same_id_twice_in_one_batch_with_other_content_is_rejected(world: Exchange) -> None:
    batch = [capture(1), capture(2), capture(1, plate="粤B·99999")]

    body = problem(world.publish("fleet", PRODUCT, batch), 422)

    assert len(body["errors"]) == 1
    assert body["errors"][0]["index"] == 2
    assert body["errors"][0]["field"] == "id"
    assert "repeated" in body["errors"][0]["reason"]
    assert_nothing_written(world)


def test_same_id_twice_in_one_batch_with_same_content_is_stored_once(world: Exchange) -> None:
    response = world.publish("fleet", PRODUCT, [capture(1), capture(2), capture(1)])

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert response.json()["unchanged"] == 1, "accepted + unchanged + rejected = batch size"
    assert response.json()["rejected"] == []
    assert (response.json()["first_seq"], response.json()["last_seq"]) == (1, 2)
    assert stored_ids(world) == ["cap-000001", "cap-000002"]
    assert record_count(world) == 2


def test_a_timestamp_with_an_offset_is_the_same_instant_in_utc(world: Exchange) -> None:
    shanghai = capture(1, captured_at="2026-11-21T16:01:00.500+08:00")
    first = world.publish("fleet", PRODUCT, [shanghai])
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    assert stored(world)[0]["captured_at"] == "2026-11-21T08:01:00.5Z"

    for same_instant in ("2026-11-21T08:01:00.5Z", "2026-11-21T08:01:00.500000+00:00"):
        again = world.publish("fleet", PRODUCT, [capture(1, captured_at=same_instant)])
        assert again.status_code == 200, again.text
        assert (again.json()["accepted"], again.json()["unchanged"]) == (0, 1)

    other_instant = world.publish(
        "fleet", PRODUCT, [capture(1, captured_at="2026-11-21T16:01:00.500Z")]
    )
    assert problem(other_instant, 409)["errors"][0]["index"] == 0
    assert record_count(world) == 1


# --- Bodies -------------------------------------------------------------------------------------


def ndjson(records: list[Any]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def test_an_ndjson_body_is_published(world: Exchange) -> None:
    body = ndjson([capture(1), capture(2)]) + "\n   \n" + ndjson([capture(3)])

    response = world.post(
        "fleet",
        RECORDS,
        content=body.encode(),
        headers={"Content-Type": f"{NDJSON}; charset=utf-8"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    records = stored(world)
    assert [r["id"] for r in records] == ["cap-000001", "cap-000002", "cap-000003"]
    assert records[0]["plate"] == capture(1)["plate"]


def test_an_ndjson_body_is_validated_like_an_array(world: Exchange) -> None:
    body = ndjson([capture(1), capture(2, lane=1.5)])

    response = world.post("fleet", RECORDS, content=body, headers={"Content-Type": NDJSON})

    errors = problem(response, 422)["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "lane")]
    assert_nothing_written(world)


def test_an_ndjson_line_that_does_not_parse_is_named(world: Exchange) -> None:
    body = json.dumps(capture(1)) + '\n{"id": "cap-2", "plate": \n' + json.dumps(capture(3))

    response = world.post("fleet", RECORDS, content=body, headers={"Content-Type": NDJSON})

    problem_body = problem(response, 400)
    assert len(problem_body["errors"]) == 1
    assert "line 2" in problem_body["errors"][0]["reason"]
    assert "nothing was written" in problem_body["detail"]
    assert_nothing_written(world)


def test_a_json_body_that_is_not_an_array_is_rejected(world: Exchange) -> None:
    response = world.post("fleet", RECORDS, json=capture(1))

    body = problem(response, 400)
    assert "array" in body["detail"]
    assert_nothing_written(world)


def test_invalid_json_is_rejected_with_its_line_and_column(world: Exchange) -> None:
    text = '[\n  {"id": "cap-1", "speed_kmh": 4},\n  {"id": "cap-2", oops}\n]'

    response = world.post(
        "fleet", RECORDS, content=text, headers={"Content-Type": "application/json"}
    )

    body = problem(response, 400)
    assert "not valid JSON" in body["detail"]
    assert "line 3 column 19" in body["detail"]
    assert_nothing_written(world)


def test_a_body_that_is_not_utf8_is_rejected(world: Exchange) -> None:
    text = json.dumps([capture(1)], ensure_ascii=False).encode("gb18030")

    response = world.post(
        "fleet", RECORDS, content=text, headers={"Content-Type": "application/json"}
    )

    body = problem(response, 400)
    assert "UTF-8" in body["detail"]
    assert_nothing_written(world)


# --- Size ---------------------------------------------------------------------------------------


def test_ten_thousand_records_in_one_request_get_dense_seqs(world: Exchange) -> None:
    batch = [capture(n) for n in range(1, 10_001)]

    response = world.publish("fleet", PRODUCT, batch)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 10_000,
        "unchanged": 0,
        "rejected": [],
        "first_seq": 1,
        "last_seq": 10_000,
    }
    assert record_count(world) == 10_000
    seqs, ids, cursor = [], [], None
    while True:
        params: dict[str, Any] = {"purpose": "research", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = world.get("fleet", RECORDS, params=params).json()
        seqs += [r["seq"] for r in page["records"]]
        ids += [r["id"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seqs == list(range(1, 10_001))
    assert ids == [record["id"] for record in batch]

    more = world.publish("fleet", PRODUCT, [capture(n) for n in range(10_001, 10_006)])

    assert more.status_code == 200, more.text
    assert (more.json()["first_seq"], more.json()["last_seq"]) == (10_001, 10_005)
    assert record_count(world) == 10_005
    assert [entry["records"] for entry in publish_entries(world)] == [
        [[1, 10_000]],
        [[10_001, 10_005]],
    ]


# --- Who may publish ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["mapco", "hotline", "police", "auditor"])
def test_only_the_owning_publisher_may_publish(world: Exchange, who: str) -> None:
    response = world.publish(who, PRODUCT, [capture(1)])

    body = problem(response, 403)
    assert body["type"] == "urn:exchange:problem:access_denied"
    assert_nothing_written(world)
    denials = publish_entries(world, decision="deny")
    assert [(e["organization"], e["record_count"]) for e in denials] == [
        (world.parties[who].organization, 0)
    ]


def test_publishing_to_an_unknown_product_is_not_found(world: Exchange) -> None:
    response = world.publish("fleet", "no-such-product", [capture(1)])

    body = problem(response, 404)
    assert "no-such-product" in body["detail"]


def test_publishing_needs_a_token(world: Exchange) -> None:
    response = world.client.post(RECORDS, json=[capture(1)])

    problem(response, 401)
    assert_nothing_written(world)


# --- Audit --------------------------------------------------------------------------------------


def test_every_publish_is_audited_with_its_records(world: Exchange) -> None:
    world.publish("fleet", PRODUCT, [capture(n) for n in range(1, 21)])
    world.publish("fleet", PRODUCT, [capture(n) for n in range(1, 26)])
    world.publish("fleet", PRODUCT, [capture(n) for n in range(1, 4)])
    world.publish("fleet", PRODUCT, [capture(30), {"id": "bad"}, capture(31)], atomic="false")

    entries = publish_entries(world)

    fleet = world.parties["fleet"]
    assert [(e["actor"], e["organization"], e["decision"]) for e in entries] == [
        (fleet.client_id, "pearl-robotaxi", "allow")
    ] * 4
    assert [(e["record_count"], e["records"]) for e in entries] == [
        (20, [[1, 20]]),
        (5, [[21, 25]]),
        (0, []),
        (2, [[26, 27]]),
    ]
    assert [e["details"]["unchanged"] for e in entries] == [0, 20, 3, 0]
    assert [e["details"]["rejected"] for e in entries] == [0, 0, 0, 1]
    assert all(e["details"]["version"] == 1 for e in entries)
    assert all(e["product"] == PRODUCT for e in entries)


def test_a_rejected_publish_is_audited_as_a_denial_and_stores_nothing(world: Exchange) -> None:
    bad = world.publish("fleet", PRODUCT, [capture(1), {"id": "x"}])
    problem(bad, 422)
    world.publish("fleet", PRODUCT, [capture(2)])
    conflict = world.publish("fleet", PRODUCT, [capture(2, speed_kmh=99.0)])
    problem(conflict, 409)

    entries = publish_entries(world)

    assert [(e["decision"], e["record_count"]) for e in entries] == [
        ("deny", 0),
        ("allow", 1),
        ("deny", 0),
    ]
    assert "1 of 2 records rejected" in entries[0]["reason"]
    assert entries[0]["request_id"] == bad.headers["x-request-id"]
    assert "1 of 1 records rejected" in entries[2]["reason"]
    assert stored_ids(world) == ["cap-000002"]
