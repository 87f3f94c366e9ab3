"""Linked ledgers over the HTTP API, pushed where they could leak: another subject's
records, a product the caller may not read (or not raw), a caller who may not link,
input that should be refused whole, paging, a subject key added later, and a subject
key altered in the database. Every part must be what a read of that product alone
would be, and on record as such."""

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from exchange.auditing.trail import seq_runs
from exchange.linkage import keys
from exchange.settings import Settings
from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, pseudonym_for
from tests.responses import ok, problem

LINKAGE = "/v1/linkage"
OPEN = "violation-captures"  # open, the fleet's
PARKING = "parking-reports"  # government_only, the hotline's
REGULATED = "near-misses"  # regulated, the fleet's
CALLS = "hotline-calls"  # government_only, the hotline's; keyed by phone
POLICE = "gz-traffic-police"
PLATE = "粤A·10001"
# What a read of each product alone gives about PLATE, however it was spelled there.
EXPECTED = {
    OPEN: ["cap-000001", "cap-000003", "cap-000005"],
    PARKING: ["park-1", "park-3"],
    REGULATED: ["cap-000011"],
}
JUSTIFICATION = "A study of pedestrian close calls near school crossings in Tianhe."


# --- the products -------------------------------------------------------------------------------


def parking_product() -> dict[str, Any]:
    return {
        "slug": PARKING,
        "title": "Parking reports",
        "description": "Illegal parking reported to the 12345 hotline",
        "tags": ["parking"],
        "tier": "government_only",
        "purposes": ["law_enforcement", "traffic_management", "urban_planning"],
        "retention_days": 365,
        "fields": [
            {"name": "reported_at", "type": "timestamp"},
            {"name": "plate", "type": "string", "sensitivity": "personal"},
            {"name": "street", "type": "string"},
        ],
        "subject_field": "plate",
        "subject_kind": "plate",
    }


def report(n: int, plate: str) -> dict[str, Any]:
    return {
        "id": f"park-{n}",
        "reported_at": f"2026-11-2{n % 7}T09:00:00Z",
        "plate": plate,
        "street": "Huangpu Ave W",
    }


def calls_product() -> dict[str, Any]:
    return {
        "slug": CALLS,
        "title": "Hotline calls",
        "description": "Calls to the 12345 hotline",
        "tier": "government_only",
        "purposes": ["law_enforcement"],
        "retention_days": 365,
        "fields": [
            {"name": "called_at", "type": "timestamp"},
            {"name": "caller", "type": "string", "sensitivity": "personal"},
            {"name": "topic", "type": "string"},
        ],
        "subject_field": "caller",
        "subject_kind": "phone",
    }


def call(n: int, caller: str) -> dict[str, Any]:
    return {"id": f"call-{n}", "called_at": "2026-11-25T10:00:00Z", "caller": caller, "topic": "x"}


def keyed_captures(slug: str = OPEN, tier: str = "open", **changes: Any) -> dict[str, Any]:
    return captures_product(slug, tier, subject_field="plate", subject_kind="plate", **changes)


def published(exchange: Exchange, who: str, product: str, records: list[dict[str, Any]]) -> None:
    response = exchange.publish(who, product, records)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records)


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """PLATE spelled four ways across three plate-keyed products, beside near misses
    (a longer plate, another province) and a phone-keyed product."""
    exchange.register("fleet", keyed_captures())
    plates = ["粤A·10001", "粤B·20002", "粤a 10001", "粤A·100011", "粤A-10001", "粤B·10001"]
    published(exchange, "fleet", OPEN, [capture(n, plate=p) for n, p in enumerate(plates, start=1)])
    exchange.register("hotline", parking_product())
    parking = [report(1, "粤A 10001"), report(2, "粤A·10002"), report(3, "粤Ａ．１０００１")]
    published(exchange, "hotline", PARKING, parking)
    exchange.register("fleet", keyed_captures(REGULATED, "regulated"))
    published(
        exchange,
        "fleet",
        REGULATED,
        [capture(11, plate="粤A10001"), capture(12, plate="粤B·20002")],
    )
    exchange.register("hotline", calls_product())
    calls = [call(1, "+86 138-0013-8000"), call(2, "13900139000"), call(3, "0086 13800138000")]
    published(exchange, "hotline", CALLS, calls)
    return exchange


# --- helpers ------------------------------------------------------------------------------------


def link(
    exchange: Exchange,
    who: str = "police",
    value: str = PLATE,
    purpose: str = "law_enforcement",
    kind: str = "plate",
    **more: Any,
) -> Any:
    body = {"kind": kind, "value": value, "purpose": purpose, **more}
    return exchange.post(who, LINKAGE, json=body)


def linked(exchange: Exchange, **kwargs: Any) -> dict[str, Any]:
    return ok(link(exchange, **kwargs))


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["id"] for record in records]


def found(body: dict[str, Any]) -> dict[str, list[str]]:
    """Product → the ids of its part's records, in the order given."""
    return {part["product"]: ids(part["records"]) for part in body["parts"]}


def refused(body: dict[str, Any]) -> list[str]:
    return [part["product"] for part in body["refused"]]


def part_of(body: dict[str, Any], product: str) -> dict[str, Any]:
    (part,) = [part for part in body["parts"] if part["product"] == product]
    return part


def entries(exchange: Exchange, **filters: Any) -> list[dict[str, Any]]:
    """{index, entry} of every entry matching the filters, as the auditor reads them."""
    page = ok(exchange.get("auditor", "/v1/audit/entries", params={"limit": 1000, **filters}))
    assert page["next_cursor"] is None
    return [{"index": item["index"], **item["entry"]} for item in page["entries"]]


def of_linkage(exchange: Exchange, linkage: str, **filters: Any) -> list[dict[str, Any]]:
    return [e for e in entries(exchange, **filters) if e["details"].get("linkage") == linkage]


def at(exchange: Exchange, index: int, **filters: Any) -> dict[str, Any]:
    (entry,) = [e for e in entries(exchange, **filters) if e["index"] == index]
    return entry


def read_entries(exchange: Exchange) -> list[dict[str, Any]]:
    """Every read or linkage entry, allowed or refused."""
    return entries(exchange, action="read") + entries(exchange, action="linkage.link")


def reads_about(exchange: Exchange, product: str, subject: str) -> list[int]:
    """The entries the auditor's subject search finds for one subject of a product."""
    response = exchange.post(
        "auditor", "/v1/audit/subjects", json={"product": product, "subject": subject}
    )
    return [item["index"] for item in ok(response)["entries"]]


def plate_in(text: str) -> bool:
    """Whether any plate of these tests (they all begin 粤) is in the text, as is or escaped."""
    return "粤" in text or "\\u7ca4" in text.lower()


def cursor(after: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


@contextmanager
def database(settings: Settings) -> Iterator[Connection]:
    engine = create_engine(settings.resolved_database_url)
    with engine.begin() as connection:
        yield connection
    engine.dispose()


def subject_keys(settings: Settings, product: str) -> dict[str, str | None]:
    """Record id → its row's subject key, as stored."""
    with database(settings) as connection:
        rows = connection.execute(
            text(
                "SELECT record_id, subject_key FROM record JOIN product"
                " ON product.id = record.product_id WHERE product.slug = :slug"
            ),
            {"slug": product},
        )
        return {record_id: key for record_id, key in rows}


def set_subject_key(settings: Settings, product: str, record_id: str, key: str | None) -> None:
    with database(settings) as connection:
        connection.execute(
            text(
                "UPDATE record SET subject_key = :key WHERE record_id = :record_id"
                " AND product_id = (SELECT id FROM product WHERE slug = :slug)"
            ),
            {"key": key, "record_id": record_id, "slug": product},
        )


# --- 1. what a linkage returns ------------------------------------------------------------------


def test_police_get_every_record_about_the_plate_and_only_those(world: Exchange) -> None:
    body = linked(world)

    assert found(body) == EXPECTED
    assert [part["product"] for part in body["parts"]] == [OPEN, PARKING, REGULATED]
    assert body["refused"] == []
    assert (body["kind"], body["purpose"]) == ("plate", "law_enforcement")
    for part in body["parts"]:
        assert part["view"] == "raw" and part["label"] == "raw", part
        assert part["fields"]["plate"] == "raw"
        assert part["pseudonyms_until"] is None and part["grant"] is None
        assert part["next_cursor"] is None
    # The records as published: the product's own spelling, every field.
    assert [r["plate"] for r in part_of(body, OPEN)["records"]] == [
        "粤A·10001",
        "粤a 10001",
        "粤A-10001",
    ]
    assert [r["plate"] for r in part_of(body, PARKING)["records"]] == [
        "粤A 10001",
        "粤Ａ．１０００１",
    ]
    first = part_of(body, OPEN)["records"][0]
    assert first["location"] == capture(1)["location"] and first["photo"] == capture(1)["photo"]
    assert [r["seq"] for r in part_of(body, OPEN)["records"]] == [1, 3, 5]


def test_any_spelling_of_the_plate_finds_the_same_records(world: Exchange) -> None:
    for spelling in ("粤A10001", "粤a 10001", "粤A-1000-1", "粤Ａ１０００１"):
        assert found(linked(world, value=spelling)) == EXPECTED, spelling


def test_records_of_other_plates_never_appear(world: Exchange) -> None:
    assert found(linked(world, value="粤B·20002")) == {
        OPEN: ["cap-000002"],
        PARKING: [],
        REGULATED: ["cap-000012"],
    }
    for near_miss in ("粤A·1000", "粤A·100011", "粤B 10001", "粤A·10002", "A10001", "10001"):
        body = linked(world, value=near_miss)
        shown = {record["plate"] for part in body["parts"] for record in part["records"]}
        assert {keys.plate(plate) for plate in shown} <= {keys.plate(near_miss)}, near_miss
        assert "cap-000001" not in found(body)[OPEN]


def test_a_product_of_another_kind_is_never_linked_on_a_plate(world: Exchange) -> None:
    assert CALLS not in found(linked(world))
    assert found(linked(world, kind="phone", value="138 0013 8000")) == {
        CALLS: ["call-1", "call-3"]
    }
    # A plate spelled like a phone number finds no call, and a phone no capture.
    assert found(linked(world, kind="phone", value=PLATE)) == {CALLS: []}


def test_naming_products_links_only_those_once_each(world: Exchange) -> None:
    body = linked(world, products=[PARKING, OPEN, PARKING])
    assert [part["product"] for part in body["parts"]] == [PARKING, OPEN]
    assert found(body) == {PARKING: EXPECTED[PARKING], OPEN: EXPECTED[OPEN]}
    assert len(of_linkage(world, body["linkage"], action="read")) == 2


def test_the_subject_is_kept_out_of_the_log(world: Exchange, settings: Settings) -> None:
    linked(world)
    with database(settings) as connection:
        bodies = [
            bytes(row[0]).decode()
            for row in connection.execute(text("SELECT body FROM audit_entry"))
        ]
        stored = connection.execute(text("SELECT subject FROM audit_subject")).scalars().all()
    assert bodies and not any(plate_in(body) for body in bodies)
    assert stored and all(len(subject) == 64 for subject in stored)


# --- 2. the audit trail -------------------------------------------------------------------------


def test_each_part_is_audited_as_a_read_of_its_product(world: Exchange) -> None:
    body = linked(world)
    police = world.parties["police"].client_id

    for part in body["parts"]:
        entry = at(world, part["audit_index"], action="read", product=part["product"])
        assert (entry["decision"], entry["actor"], entry["organization"]) == (
            "allow",
            police,
            POLICE,
        )
        assert (entry["purpose"], entry["view"]) == ("law_enforcement", "raw")
        assert entry["details"]["linkage"] == body["linkage"]
        assert entry["details"]["kind"] == "plate"
        assert entry["details"]["subject"].startswith("keyed:")
        assert not plate_in(json.dumps(entry, ensure_ascii=False))
        assert entry["records"] == seq_runs([r["seq"] for r in part["records"]])
        assert entry["record_count"] == len(part["records"])
    reads = of_linkage(world, body["linkage"], action="read")
    assert sorted(e["index"] for e in reads) == sorted(p["audit_index"] for p in body["parts"])
    # The same subject gets a different keyed hash in each product.
    assert len({e["details"]["subject"] for e in reads}) == len(reads)


def test_the_linkage_itself_is_audited_once(world: Exchange) -> None:
    body = linked(world)

    (summary,) = entries(world, action="linkage.link")
    assert (summary["decision"], summary["organization"]) == ("allow", POLICE)
    assert summary["purpose"] == "law_enforcement"
    assert summary["details"] == {
        "linkage": body["linkage"],
        "kind": "plate",
        "parts": {part["product"]: part["audit_index"] for part in body["parts"]},
        "refused": [],
    }
    assert summary["record_count"] == sum(len(ids) for ids in EXPECTED.values())
    assert summary["index"] > max(part["audit_index"] for part in body["parts"])


def test_the_auditor_finds_the_linkage_reads_by_the_stored_spelling(world: Exchange) -> None:
    body = linked(world)
    parts = {part["product"]: part["audit_index"] for part in body["parts"]}

    assert parts[OPEN] in reads_about(world, OPEN, "粤A·10001")
    assert parts[OPEN] in reads_about(world, OPEN, "粤a 10001")
    assert parts[PARKING] in reads_about(world, PARKING, "粤A 10001")
    assert parts[REGULATED] in reads_about(world, REGULATED, "粤A10001")
    assert parts[OPEN] not in reads_about(world, OPEN, "粤B·20002")


def test_the_auditor_finds_the_linkage_reads_by_the_subject_as_linked(world: Exchange) -> None:
    """A data subject asking who read about 粤A·10001 must hear of every read that
    returned their records, whatever spelling each ledger used: the linkage itself
    treats those spellings as one subject."""
    body = linked(world)

    for part in body["parts"]:
        assert part["audit_index"] in reads_about(world, part["product"], PLATE), part["product"]


# --- 3. and 4. refused parts --------------------------------------------------------------------


def assert_refused_part(
    exchange: Exchange, body: dict[str, Any], product: str, purpose: str
) -> dict[str, Any]:
    """The part is refused with a reason, returns nothing and is audited as a refused read."""
    (part,) = [part for part in body["refused"] if part["product"] == product]
    assert part["reason"]
    assert product not in found(body)
    (entry,) = of_linkage(exchange, body["linkage"], action="read", product=product)
    assert (entry["decision"], entry["organization"], entry["purpose"]) == ("deny", POLICE, purpose)
    assert entry["details"]["linkage"] == body["linkage"]
    assert entry["records"] == [] and entry["record_count"] == 0
    return part


def test_a_product_that_does_not_declare_the_purpose_is_refused(world: Exchange) -> None:
    body = linked(world, purpose="urban_planning")

    assert found(body) == {PARKING: EXPECTED[PARKING]}
    assert refused(body) == [OPEN, REGULATED]
    for product in (OPEN, REGULATED):
        assert_refused_part(world, body, product, "urban_planning")
    (summary,) = entries(world, action="linkage.link")
    assert summary["details"]["refused"] == [OPEN, REGULATED]
    assert summary["details"]["parts"] == {PARKING: part_of(body, PARKING)["audit_index"]}


def test_a_protected_view_cannot_be_probed_by_its_pseudonymised_plate(world: Exchange) -> None:
    """Police for traffic management see the open and regulated products' plates as
    pseudonyms: finding records by the plate there would tell them who is in them."""
    body = linked(world, purpose="traffic_management")

    assert found(body) == {PARKING: EXPECTED[PARKING]}
    assert part_of(body, PARKING)["view"] == "raw"
    for product in (OPEN, REGULATED):
        part = assert_refused_part(world, body, product, "traffic_management")
        assert "plate" in part["reason"]
    allowed = [
        e for e in of_linkage(world, body["linkage"], action="read") if e["decision"] == "allow"
    ]
    assert [e["product"] for e in allowed] == [PARKING]
    for product in (OPEN, REGULATED):
        assert reads_about(world, product, "粤A·10001") == []
        assert reads_about(world, product, "粤A10001") == []


def test_a_refused_part_does_not_stop_paging_the_others(world: Exchange) -> None:
    first = linked(world, purpose="traffic_management", limit=1)
    following = part_of(first, PARKING)["next_cursor"]
    assert following is not None
    rest = linked(world, purpose="traffic_management", limit=1, cursors={PARKING: following})
    assert found(rest)[PARKING] == ["park-3"]
    assert refused(rest) == [OPEN, REGULATED]


# --- 5. who may link ----------------------------------------------------------------------------


OUTSIDERS = [
    ("mapco", "lingnan-maps", "navigation_safety"),
    ("mapco", "lingnan-maps", "law_enforcement"),
    ("lab", "scut-mobility-lab", "research"),
    ("hotline", "gz-12345", "law_enforcement"),  # government, but a publisher only
    ("fleet", "pearl-robotaxi", "law_enforcement"),
    ("steward", "gz-data-bureau", "law_enforcement"),
    ("auditor", "gz-audit-office", "law_enforcement"),
]


def test_only_government_subscribers_may_link(world: Exchange) -> None:
    before = entries(world, action="read")

    for who, organization, purpose in OUTSIDERS:
        denied = problem(link(world, who, purpose=purpose), 403, "access_denied")
        assert not plate_in(json.dumps(denied, ensure_ascii=False))
        named = link(world, who, purpose=purpose, products=[PARKING, "no-such-product"])
        problem(named, 403, "access_denied")
        refusals = entries(world, action="linkage.link", organization=organization)
        assert [e["decision"] for e in refusals][-2:] == ["deny", "deny"], who
    assert entries(world, action="read") == before
    assert {e["decision"] for e in entries(world, action="linkage.link")} == {"deny"}


def test_a_company_cannot_join_its_pseudonyms_with_another_companys(world: Exchange) -> None:
    """Each company is shown its own pseudonym for a plate, so two companies' copies
    of the open product cannot be joined on it, and neither may link."""
    world.add_party("rival", "rival-maps", "enterprise", ["subscriber"])
    params = {"purpose": "navigation_safety"}
    pages = {
        who: ok(world.get(who, f"/v1/products/{OPEN}/records", params=params))
        for who in ("mapco", "rival")
    }
    shown = {who: {r["id"]: r["plate"] for r in page["records"]} for who, page in pages.items()}

    assert shown["mapco"].keys() == shown["rival"].keys() == {f"cap-{n:06d}" for n in range(1, 7)}
    for record_id in shown["mapco"]:
        mine, theirs = shown["mapco"][record_id], shown["rival"][record_id]
        assert PSEUDONYM.match(mine) and PSEUDONYM.match(theirs)
        assert mine != theirs
    assert not set(shown["mapco"].values()) & set(shown["rival"].values())
    until = pages["mapco"]["pseudonyms_until"]
    expected = pseudonym_for(world.settings, "lingnan-maps", OPEN, "粤A·10001", until)
    assert shown["mapco"]["cap-000001"] == expected
    for who in ("mapco", "rival"):
        problem(link(world, who, purpose="navigation_safety"), 403, "access_denied")


# --- 7. bad input -------------------------------------------------------------------------------


# (what is wrong, the change to a good body (None: left out), the error's field and index)
BAD: list[tuple[str, dict[str, Any], str, int | None]] = [
    ("unknown kind", {"kind": "vin"}, "kind", None),
    ("no kind", {"kind": None}, "kind", None),
    ("empty value", {"value": ""}, "value", None),
    ("too long a value", {"value": "x" * 501}, "value", None),
    ("no purpose", {"purpose": None}, "purpose", None),
    ("malformed purpose", {"purpose": "Law Enforcement"}, "purpose", None),
    ("limit 0", {"limit": 0}, "limit", None),
    ("limit 1001", {"limit": 1001}, "limit", None),
    ("limit not a number", {"limit": "many"}, "limit", None),
    ("unknown product", {"products": ["no-such-product"]}, "products", 0),
    ("product of another kind", {"products": [OPEN, CALLS]}, "products", 1),
    ("absurd product", {"products": [OPEN, "x" * 300]}, "products", 1),
    ("too many products", {"products": [OPEN] * 51}, "products", None),
    ("products not a list", {"products": OPEN}, "products", None),
    ("not a cursor", {"cursors": {OPEN: "not-a-cursor"}}, f"cursors.{OPEN}", None),
    ("negative cursor", {"cursors": {OPEN: cursor(-1)}}, f"cursors.{OPEN}", None),
    ("huge cursor", {"cursors": {OPEN: cursor(2**64)}}, f"cursors.{OPEN}", None),
    ("boolean cursor", {"cursors": {OPEN: cursor(True)}}, f"cursors.{OPEN}", None),
    ("cursor of a list", {"cursors": {OPEN: "WzFd"}}, f"cursors.{OPEN}", None),  # "[1]"
    ("cursor not a string", {"cursors": {OPEN: 5}}, f"cursors.{OPEN}", None),
    (
        "cursor for a product not linked",
        {"products": [OPEN], "cursors": {PARKING: cursor(1)}},
        f"cursors.{PARKING}",
        None,
    ),
]


def test_bad_input_is_refused_whole_and_says_where(world: Exchange) -> None:
    before = read_entries(world)

    for what, change, field, index in BAD:
        body: dict[str, Any] = {"kind": "plate", "value": PLATE, "purpose": "law_enforcement"}
        body = {name: value for name, value in (body | change).items() if value is not None}
        response = world.post("police", LINKAGE, json=body)
        assert response.status_code == 400, (what, response.text)
        refusal = problem(response, 400, "bad_request")
        located = [(error["field"], error.get("index")) for error in refusal["errors"]]
        assert (field, index) in located, (what, refusal["errors"])

    assert read_entries(world) == before


def test_malformed_bodies_are_400_not_500(world: Exchange) -> None:
    good = {"kind": "plate", "value": PLATE, "purpose": "law_enforcement"}
    for body in (
        [],
        PLATE,
        None,
        good | {"kind": ["plate"]},
        good | {"value": {"plate": PLATE}},
        good | {"cursors": [1]},
        good | {"products": [{"slug": OPEN}]},
    ):
        refusal = problem(world.post("police", LINKAGE, json=body), 400, "bad_request")
        assert refusal["errors"], body
    not_json = world.post(
        "police", LINKAGE, content=b"{kind", headers={"content-type": "application/json"}
    )
    problem(not_json, 400, "bad_request")


# Values that name no subject once normalised: a lookup would match every record
# whose own subject is blank, which is no subject either.
BLANK = [("plate", " "), ("plate", "·-·"), ("phone", "call me"), ("person_id", "--")]


def test_a_value_with_nothing_to_match_on_is_refused(world: Exchange) -> None:
    published(world, "fleet", OPEN, [capture(9, plate="·")])
    published(world, "hotline", CALLS, [call(9, "n/a")])
    before = read_entries(world)

    answered = {f"{kind} {value!r}": link(world, kind=kind, value=value) for kind, value in BLANK}

    statuses = {name: response.status_code for name, response in answered.items()}
    assert statuses == {name: 400 for name in answered}, {
        name: found(response.json()) for name, response in answered.items()
    }
    for response in answered.values():
        assert "value" in [error["field"] for error in response.json()["errors"]]
    assert read_entries(world) == before


def test_odd_values_match_nothing_and_break_nothing(world: Exchange) -> None:
    for value in ("\x00", "粤A\x0010001", "%", "*", "'; DROP TABLE record; --", "🚗" * 100):
        assert found(linked(world, value=value)) == {OPEN: [], PARKING: [], REGULATED: []}, value
    assert found(linked(world, kind="address", value="Room 1203, Building 7")) == {}


# --- 8. paging ----------------------------------------------------------------------------------


def test_following_the_cursors_gets_every_record_exactly_once(world: Exchange) -> None:
    seen: dict[str, list[str]] = {}
    cursors: dict[str, str] = {}
    body = linked(world, limit=1)
    for _ in range(10):
        for part in body["parts"]:
            assert len(part["records"]) <= 1
            seen.setdefault(part["product"], []).extend(ids(part["records"]))
            if part["next_cursor"] is not None:
                cursors[part["product"]] = part["next_cursor"]
            else:
                cursors.pop(part["product"], None)
        if not cursors:
            break
        body = linked(world, limit=1, products=list(cursors), cursors=cursors)
    assert seen == EXPECTED


def test_a_cursor_goes_on_from_where_its_part_stopped(world: Exchange) -> None:
    first = linked(world, limit=2, products=[OPEN])
    assert found(first) == {OPEN: ["cap-000001", "cap-000003"]}
    after = part_of(first, OPEN)["next_cursor"]
    rest = linked(world, limit=2, products=[OPEN], cursors={OPEN: after})
    assert found(rest) == {OPEN: ["cap-000005"]}
    assert part_of(rest, OPEN)["next_cursor"] is None
    # A cursor only moves its own product on; the others start from the beginning.
    mixed = linked(world, limit=2, cursors={OPEN: after})
    assert found(mixed) == {
        OPEN: ["cap-000005"],
        PARKING: ["park-1", "park-3"],
        REGULATED: ["cap-000011"],
    }


# --- 9. a subject kind declared later -----------------------------------------------------------


def test_a_subject_kind_added_later_links_the_earlier_records(
    world: Exchange, settings: Settings
) -> None:
    late = "late-captures"
    world.register("fleet", captures_product(late, subject_field="plate"))
    published(world, "fleet", late, [capture(21, plate="粤A 10001"), capture(22, plate="粤C·1")])
    assert late not in found(linked(world))
    problem(link(world, products=[late]), 400, "bad_request")
    assert set(subject_keys(settings, late).values()) == {None}

    changed = world.patch("fleet", f"/v1/products/{late}", json={"subject_kind": "plate"})
    assert changed.status_code == 200, changed.text
    (update,) = entries(world, action="product.update", product=late)
    assert update["details"]["resealed"] == 2
    assert None not in subject_keys(settings, late).values()
    published(world, "fleet", late, [capture(23, plate="粤a·10001")])

    assert found(linked(world))[late] == ["cap-000021", "cap-000023"]
    assert found(linked(world, value="粤C1")) == {
        OPEN: [],
        PARKING: [],
        REGULATED: [],
        late: ["cap-000022"],
    }


def test_a_subject_field_changed_links_the_product_on_the_new_one(world: Exchange) -> None:
    """Moved to another field of another kind, the product leaves plate linkage and
    its records are found by the new field, the earlier ones included."""
    published(world, "fleet", OPEN, [capture(7, driver_note="+86 138 0013 8000")])
    changed = world.patch(
        "fleet",
        f"/v1/products/{OPEN}",
        json={"subject_field": "driver_note", "subject_kind": "phone"},
    )
    assert changed.status_code == 200, changed.text
    published(world, "fleet", OPEN, [capture(8, driver_note="13800138000")])

    assert OPEN not in found(linked(world))
    by_phone = found(linked(world, kind="phone", value="0086 13800138000"))
    assert by_phone == {OPEN: ["cap-000007", "cap-000008"], CALLS: ["call-1", "call-3"]}


# --- 10. tiers ----------------------------------------------------------------------------------


def test_a_company_with_a_grant_still_cannot_reach_the_regulated_product_by_linking(
    world: Exchange,
) -> None:
    asked = world.post(
        "mapco",
        "/v1/access-requests",
        json={
            "product": REGULATED,
            "purpose": "research",
            "justification": JUSTIFICATION,
            "days": 30,
        },
    )
    assert asked.status_code == 201, asked.text
    approved = world.post(
        "steward",
        f"/v1/access-requests/{asked.json()['id']}/approve",
        json={"reason": "Research purpose verified with the ethics board"},
    )
    assert approved.status_code == 200, approved.text
    read = ok(
        world.get("mapco", f"/v1/products/{REGULATED}/records", params={"purpose": "research"})
    )
    assert read["grant"] == approved.json()["grant"]["id"]

    for products in (None, [REGULATED]):
        more = {"products": products} if products else {}
        problem(link(world, "mapco", purpose="research", **more), 403, "access_denied")
    reads = entries(world, action="read", organization="lingnan-maps", product=REGULATED)
    assert [e["details"].get("linkage") for e in reads] == [None]


def test_a_government_only_product_never_reaches_anyone_else(world: Exchange) -> None:
    for who in ("mapco", "lab", "fleet"):
        problem(link(world, who, products=[PARKING]), 403, "access_denied")
        problem(link(world, who, purpose="traffic_management"), 403, "access_denied")
    outsiders = [
        e
        for e in entries(world, product=PARKING, decision="allow")
        if e["organization"] not in ("gz-12345", POLICE)
    ]
    assert outsiders == []


def test_another_government_subscriber_gets_its_own_audited_reads(world: Exchange) -> None:
    world.add_party("bureau-sub", "gz-data-bureau", "government", ["subscriber"])
    body = linked(world, who="bureau-sub")
    assert found(body) == EXPECTED
    reads = of_linkage(world, body["linkage"], action="read")
    assert {e["organization"] for e in reads} == {"gz-data-bureau"}


# --- 11. tampering ------------------------------------------------------------------------------


def test_a_subject_key_copied_onto_another_record_does_not_bring_it_in(
    world: Exchange, settings: Settings
) -> None:
    """The subject key is bound to the row's sealed part: a row whose key was
    edited fails to open, so its product's part is refused as an integrity failure
    (audited) and the other products still answer."""
    stored = subject_keys(settings, OPEN)
    set_subject_key(settings, OPEN, "cap-000002", stored["cap-000001"])  # 粤B·20002
    set_subject_key(settings, OPEN, "cap-000004", stored["cap-000001"])  # 粤A·100011

    body = linked(world)

    assert [part["product"] for part in body["refused"]] == [OPEN]
    assert "integrity" in body["refused"][0]["reason"]
    assert found(body) == {product: EXPECTED[product] for product in EXPECTED if product != OPEN}
    assert "cap-000002" not in json.dumps(body) and "cap-000004" not in json.dumps(body)
    (refusal,) = [
        e for e in of_linkage(world, body["linkage"], action="read") if e["product"] == OPEN
    ]
    assert (refusal["decision"], refusal["records"]) == ("deny", [])


def test_subject_keys_are_per_product_so_one_cannot_be_moved_across(
    world: Exchange, settings: Settings
) -> None:
    """The same plate has another key in each product, so a key copied from one
    product's row into another's matches nothing there."""
    open_keys, parking_keys = subject_keys(settings, OPEN), subject_keys(settings, PARKING)
    assert open_keys["cap-000001"] == open_keys["cap-000003"] == open_keys["cap-000005"]
    assert open_keys["cap-000001"] != parking_keys["park-1"]
    assert parking_keys["park-1"] == parking_keys["park-3"]
    set_subject_key(settings, OPEN, "cap-000002", parking_keys["park-1"])

    assert found(linked(world)) == EXPECTED
    assert found(linked(world, value="粤B·20002"))[OPEN] == []


def test_a_hidden_subject_key_hides_only_that_record(world: Exchange, settings: Settings) -> None:
    set_subject_key(settings, OPEN, "cap-000003", None)
    assert found(linked(world))[OPEN] == ["cap-000001", "cap-000005"]
