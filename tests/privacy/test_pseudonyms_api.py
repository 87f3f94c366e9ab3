"""Pseudonyms through HTTP: each consumer reads its own, stable pseudonyms of the plates
(never a raw plate), the police read raw, and the police alone turn a consumer's
pseudonym back into the plate inside the exchange, with a case reference, on record."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exchange.timeutil import parse_rfc3339, to_rfc3339
from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, pseudonym_for
from tests.responses import ok, problem

PRODUCT = "violation-captures"
DAILY = "daily-captures"  # the same captures, pseudonyms changing every day
RECORDS = f"/v1/products/{PRODUCT}/records"
NDJSON = "application/x-ndjson"
CASE = "GZ-TP-2026-0412"
RESEARCH = {"purpose": "research"}
LAW = {"purpose": "law_enforcement"}

# Captures 1..6, then three more of capture 2's plate: one written without the dot.
REPEATED = capture(2)["plate"]  # 粤A·10002
BATCH = [
    *(capture(n) for n in range(1, 7)),
    capture(7, plate=REPEATED),
    capture(8, plate=REPEATED),
    capture(9, plate="粤A10002"),
]
REPEATS = ["cap-000002", "cap-000007", "cap-000008", "cap-000009"]
SPELLINGS = {REPEATED, "粤A10002"}  # a re-identified value is the plate as one record has it
PLATES = {record["plate"] for record in BATCH}


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The fleet's open captures product with BATCH published."""
    exchange.register("fleet", captures_product(PRODUCT))
    published = exchange.publish("fleet", PRODUCT, BATCH)
    assert published.status_code == 200, published.text
    assert published.json()["accepted"] == len(BATCH)
    return exchange


def read(exchange: Exchange, who: str, purpose: dict[str, str] = RESEARCH, **kw: Any) -> Any:
    return exchange.get(who, RECORDS, params={**purpose, "limit": 100}, **kw)


def plates(page: dict[str, Any]) -> dict[str, str]:
    """Record id → the plate as shown."""
    return {record["id"]: record["plate"] for record in page["records"]}


def reidentify(
    exchange: Exchange,
    body: dict[str, Any],
    who: str = "police",
    product: str = PRODUCT,
    purpose: str = "law_enforcement",
) -> Any:
    return exchange.post(
        who, f"/v1/products/{product}/reidentify", params={"purpose": purpose}, json=body
    )


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


def refused(exchange: Exchange, who: str, purpose: str, body: dict[str, Any]) -> None:
    """`who` asks to re-identify: 403, nothing revealed, and the denial on record."""
    denied = problem(reidentify(exchange, body, who=who, purpose=purpose), 403, "access_denied")
    assert REPEATED not in json.dumps(denied, ensure_ascii=False)
    (entry,) = audit(exchange, action="reidentify")
    assert entry["decision"] == "deny"
    assert entry["actor"] == exchange.parties[who].client_id
    assert (entry["product"], entry["purpose"]) == (PRODUCT, purpose)
    assert entry["record_count"] == 0


def shown_to(exchange: Exchange, who: str, record_id: str = "cap-000002") -> str:
    """The pseudonym `who` is shown for one record's plate, when reading for research."""
    return plates(ok(read(exchange, who)))[record_id]


# --- each consumer its own pseudonyms ------------------------------------------------------------


def test_each_consumer_reads_its_own_stable_pseudonyms(world: Exchange) -> None:
    now = datetime.now(UTC)
    seen: dict[str, dict[str, str]] = {}
    for who, organization in (("mapco", "lingnan-maps"), ("lab", "scut-mobility-lab")):
        first, second = ok(read(world, who)), ok(read(world, who))
        for page in (first, second):
            assert (page["view"], page["label"]) == ("protected", "deidentified")
            assert page["fields"]["plate"] == "pseudonymized"
            until = parse_rfc3339(page["pseudonyms_until"])
            assert now < until <= now + timedelta(days=30)
        assert first["pseudonyms_until"] == second["pseudonyms_until"]
        assert plates(first) == plates(second)
        shown = plates(first)
        assert all(PSEUDONYM.fullmatch(pseudonym) for pseudonym in shown.values()), shown
        for record in BATCH:
            assert shown[record["id"]] == pseudonym_for(
                world.settings, organization, PRODUCT, record["plate"], first["pseudonyms_until"]
            )
        # One pseudonym per plate: the repeat offender's four captures share one.
        assert len({shown[record_id] for record_id in REPEATS}) == 1
        assert len(set(shown.values())) == len(BATCH) - len(REPEATS) + 1

        one = ok(world.get(who, f"{RECORDS}/cap-000002", params=RESEARCH))
        assert (one["label"], one["fields"]["plate"]) == ("deidentified", "pseudonymized")
        assert one["pseudonyms_until"] == first["pseudonyms_until"]
        assert one["record"]["plate"] == shown["cap-000002"]
        assert one["record"] == next(r for r in first["records"] if r["id"] == "cap-000002")
        seen[who] = shown

    for record in BATCH:
        assert seen["mapco"][record["id"]] != seen["lab"][record["id"]]
    assert not set(seen["mapco"].values()) & set(seen["lab"].values())


def test_a_consumer_keeps_its_pseudonyms_whatever_its_purpose(world: Exchange) -> None:
    research = plates(ok(read(world, "mapco", RESEARCH)))
    navigation = plates(ok(read(world, "mapco", {"purpose": "navigation_safety"})))
    assert research == navigation


def test_the_police_read_raw_plates_for_law_enforcement(world: Exchange) -> None:
    page = ok(read(world, "police", LAW))
    assert (page["view"], page["label"]) == ("raw", "raw")
    assert set(page["fields"].values()) == {"raw"}
    assert page["pseudonyms_until"] is None
    assert plates(page) == {record["id"]: record["plate"] for record in BATCH}
    one = ok(world.get("police", f"{RECORDS}/cap-000009", params=LAW))
    assert (one["label"], one["record"]["plate"]) == ("raw", "粤A10002")


def test_no_raw_plate_leaves_in_any_consumer_response(world: Exchange) -> None:
    # The check below would find a raw plate: the police's responses carry them as written.
    police = read(world, "police", LAW)
    assert all(plate in police.text for plate in PLATES)

    for who in ("mapco", "lab"):
        listed = read(world, who)
        ndjson = read(world, who, headers={"Accept": NDJSON})
        assert ndjson.status_code == 200, ndjson.text
        assert ndjson.headers["content-type"].startswith(NDJSON)
        assert ndjson.headers["exchange-label"] == "deidentified"
        lines = [json.loads(line) for line in ndjson.text.splitlines()]
        assert lines == ok(listed)["records"]
        ones = [world.get(who, f"{RECORDS}/{record['id']}", params=RESEARCH) for record in BATCH]
        for response in (listed, ndjson, *ones):
            assert response.status_code == 200, response.text
            for plate in PLATES:
                for written in (plate, plate.replace("·", ""), json.dumps(plate)):
                    assert written not in response.text, (who, response.text)
            assert "10002" not in response.text  # not even the plate's digits


# --- re-identification ---------------------------------------------------------------------------


def test_the_police_reidentify_a_pseudonym_mapco_was_shown(world: Exchange) -> None:
    pseudonym = shown_to(world, "mapco")

    response = reidentify(
        world, {"pseudonym": pseudonym, "consumer": "lingnan-maps", "case_reference": CASE}
    )

    found = ok(response)
    assert found["found"] is True
    assert found["field"] == "plate"
    assert found["value"] in SPELLINGS
    assert found["records"] == REPEATS
    assert found["record_count"] == len(REPEATS)
    assert (found["pseudonym"], found["consumer"]) == (pseudonym, "lingnan-maps")
    assert found["case_reference"] == CASE
    until = ok(read(world, "mapco"))["pseudonyms_until"]
    assert parse_rfc3339(found["epoch"]["to"]) == parse_rfc3339(until)
    assert parse_rfc3339(found["epoch"]["to"]) - parse_rfc3339(found["epoch"]["from"]) == (
        timedelta(days=30)
    )

    (entry,) = audit(world, action="reidentify")
    assert entry["decision"] == "allow"
    assert entry["actor"] == world.parties["police"].client_id
    assert entry["organization"] == "gz-traffic-police"
    assert (entry["product"], entry["purpose"]) == (PRODUCT, "law_enforcement")
    assert entry["record_count"] == len(REPEATS)
    details = entry["details"]
    assert details["case_reference"] == CASE
    assert details["consumer"] == "lingnan-maps"
    assert (details["pseudonym"], details["found"], details["field"]) == (pseudonym, True, "plate")
    # The log names the case, not the plate.
    assert not any(plate in json.dumps(entry, ensure_ascii=False) for plate in SPELLINGS)


def test_a_pseudonym_lab_was_shown_is_not_mapcos(world: Exchange) -> None:
    pseudonym = shown_to(world, "lab")
    body = {"pseudonym": pseudonym, "case_reference": CASE}

    wrong = ok(reidentify(world, body | {"consumer": "lingnan-maps"}))
    right = ok(reidentify(world, body | {"consumer": "scut-mobility-lab"}))

    assert (wrong["found"], wrong["value"], wrong["field"]) == (False, None, None)
    assert (wrong["records"], wrong["record_count"]) == ([], 0)
    assert (right["found"], right["records"]) == (True, REPEATS)
    assert right["value"] in SPELLINGS
    entries = audit(world, action="reidentify")
    assert [(e["details"]["consumer"], e["details"]["found"]) for e in entries] == [
        ("lingnan-maps", False),
        ("scut-mobility-lab", True),
    ]
    assert [e["record_count"] for e in entries] == [0, len(REPEATS)]


@pytest.mark.parametrize("who", ["mapco", "lab"])
@pytest.mark.parametrize("purpose", ["law_enforcement", "research"])
def test_consumers_may_not_reidentify(world: Exchange, who: str, purpose: str) -> None:
    pseudonym = shown_to(world, who)
    consumer = world.parties[who].organization
    body = {"pseudonym": pseudonym, "consumer": consumer, "case_reference": CASE}
    refused(world, who, purpose, body)


@pytest.mark.parametrize("who", ["fleet", "hotline", "steward", "auditor", "admin"])
def test_only_government_subscribers_may_reidentify(world: Exchange, who: str) -> None:
    # The hotline is government but a publisher; the steward and auditor are government too.
    body = {"pseudonym": shown_to(world, "mapco"), "consumer": "lingnan-maps"}
    refused(world, who, "law_enforcement", body | {"case_reference": CASE})


MALFORMED = [
    pytest.param({"case_reference": None}, id="no-case-reference"),
    pytest.param({"case_reference": ""}, id="empty-case-reference"),
    pytest.param({"case_reference": "ab"}, id="short-case-reference"),
    pytest.param({"pseudonym": "粤A·10002"}, id="a-plate"),
    pytest.param({"pseudonym": "ps_short"}, id="short"),
    pytest.param({"pseudonym": None}, id="no-pseudonym"),
    pytest.param({"consumer": None}, id="no-consumer"),
    pytest.param({"shown_at": "yesterday"}, id="shown_at-not-a-time"),
    pytest.param({"shown_at": "2026-11-28T08:00:00"}, id="shown_at-without-zone"),
]


@pytest.mark.parametrize("changes", MALFORMED)
def test_a_malformed_request_is_a_bad_request(world: Exchange, changes: dict[str, Any]) -> None:
    pseudonym = shown_to(world, "mapco")
    body = {"pseudonym": pseudonym, "consumer": "lingnan-maps", "case_reference": CASE}
    body = {k: v for k, v in (body | changes).items() if v is not None}

    problem(reidentify(world, body), 400, "bad_request")

    assert audit(world, action="reidentify", decision="allow") == []


@pytest.mark.parametrize("blank", ["   ", "\t\t\t", " \n "])
def test_a_blank_case_reference_is_a_bad_request(world: Exchange, blank: str) -> None:
    body = {"pseudonym": shown_to(world, "mapco"), "consumer": "lingnan-maps"}
    problem(reidentify(world, body | {"case_reference": blank}), 400, "bad_request")


@pytest.mark.parametrize("shown_at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_a_shown_at_at_the_edge_of_time_is_a_bad_request(world: Exchange, shown_at: str) -> None:
    body = {"pseudonym": shown_to(world, "mapco"), "consumer": "lingnan-maps"}
    response = reidentify(world, body | {"case_reference": CASE, "shown_at": shown_at})
    error = problem(response, 400, "bad_request")
    assert error["errors"][0]["field"] == "shown_at"


@pytest.mark.parametrize(
    "pseudonym",
    ["PS_" + "a" * 26, "ps_" + "A" * 26, "ps_" + "a" * 25, "ps_" + "a" * 27, "ps_" + "1" * 26],
)
def test_a_pseudonym_of_another_shape_is_a_bad_request(world: Exchange, pseudonym: str) -> None:
    body = {"pseudonym": pseudonym, "consumer": "lingnan-maps", "case_reference": CASE}
    problem(reidentify(world, body), 400, "bad_request")


def test_an_unknown_consumer_is_not_found(world: Exchange) -> None:
    pseudonym = shown_to(world, "mapco")
    body = {"pseudonym": pseudonym, "consumer": "no-such-org", "case_reference": CASE}

    missing = problem(reidentify(world, body), 404, "not_found")

    assert "no-such-org" in missing["detail"]
    assert audit(world, action="reidentify", decision="allow") == []


def test_an_unknown_product_is_not_found(world: Exchange) -> None:
    body = {"pseudonym": shown_to(world, "mapco"), "consumer": "lingnan-maps"}
    problem(reidentify(world, body | {"case_reference": CASE}, product="no-such"), 404, "not_found")


# --- epochs --------------------------------------------------------------------------------------


def test_a_day_long_epoch_gives_other_pseudonyms_on_another_day(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product(DAILY, pseudonym_epoch_days=1))
    assert exchange.publish("fleet", DAILY, BATCH).status_code == 200
    page = ok(exchange.get("mapco", f"/v1/products/{DAILY}/records", params=RESEARCH))
    until = parse_rfc3339(page["pseudonyms_until"])
    now = datetime.now(UTC)
    assert now < until <= now + timedelta(days=1)
    assert until == until.replace(hour=0, minute=0, second=0, microsecond=0)  # midnight UTC
    pseudonym = plates(page)["cap-000002"]
    assert pseudonym == pseudonym_for(
        exchange.settings, "lingnan-maps", DAILY, REPEATED, page["pseudonyms_until"], days=1
    )
    body = {"pseudonym": pseudonym, "consumer": "lingnan-maps", "case_reference": CASE}

    def shown_at(moment: datetime) -> dict[str, Any]:
        return ok(reidentify(exchange, body | {"shown_at": to_rfc3339(moment)}, product=DAILY))

    today = shown_at(datetime.now(UTC))
    yesterday = shown_at(until - timedelta(hours=25))

    assert (today["found"], today["records"]) == (True, REPEATS)
    assert today["value"] in SPELLINGS
    assert parse_rfc3339(today["epoch"]["to"]) == until
    assert (yesterday["found"], yesterday["records"]) == (False, [])
    assert parse_rfc3339(yesterday["epoch"]["to"]) == until - timedelta(days=1)
    # Nobody was shown anything tomorrow: a time in the future is refused.
    tomorrow = reidentify(exchange, body | {"shown_at": to_rfc3339(until)}, product=DAILY)
    assert problem(tomorrow, 400, "bad_request")["errors"][0]["field"] == "shown_at"
    # What mapco would have been shown yesterday is another pseudonym for the same plate.
    earlier = pseudonym_for(
        exchange.settings,
        "lingnan-maps",
        DAILY,
        REPEATED,
        to_rfc3339(until - timedelta(days=1)),
        days=1,
    )
    assert earlier != pseudonym
    found = ok(
        reidentify(
            exchange,
            body | {"pseudonym": earlier, "shown_at": to_rfc3339(until - timedelta(hours=25))},
            product=DAILY,
        )
    )
    assert (found["found"], found["records"]) == (True, REPEATS)
    allowed = audit(exchange, action="reidentify", decision="allow")
    assert [e["details"]["found"] for e in allowed] == [True, False, True]
    # The refused one (a time in the future) is on record too.
    (refusal,) = audit(exchange, action="reidentify", decision="deny")
    assert "shown_at" in refusal["reason"]


# --- the subject's access report -----------------------------------------------------------------


def test_a_reidentification_is_in_the_subjects_access_report(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product(PRODUCT, subject_field="plate"))
    assert exchange.publish("fleet", PRODUCT, BATCH[:6]).status_code == 200
    pseudonym = shown_to(exchange, "mapco")
    body = {"pseudonym": pseudonym, "consumer": "lingnan-maps", "case_reference": CASE}
    assert ok(reidentify(exchange, body))["found"] is True

    report = exchange.post(
        "auditor", "/v1/audit/subjects", json={"product": PRODUCT, "subject": REPEATED}
    )

    entries = [item["entry"] for item in ok(report)["entries"]]
    assert [(e["action"], e["organization"]) for e in entries] == [
        ("read", "lingnan-maps"),
        ("reidentify", "gz-traffic-police"),
    ]
