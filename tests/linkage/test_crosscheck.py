"""Registry cross-checks through the HTTP API, attacked: without a grant, with the
wrong one, by the wrong kind of organisation, with bad input and with tampered rows.

The registries are small and hand-made: a business registry (registered address in
the clear) and a housing registry (address personal, so sealed). Eight homes of one
building, four of them registered as companies (one home twice), addresses written
the other registry's way; a home office elsewhere; commercial addresses and near
misses that match no home. Every expected match below is worked out by hand.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, DateTime, bindparam, create_engine, text

from exchange.demo import registries as registries_demo
from exchange.demo.products import BUSINESS_REGISTRATIONS, RESIDENTIAL_ADDRESSES
from exchange.linkage import keys
from tests.conftest import Exchange, run_cli
from tests.products import capture, captures_product

COMPANIES = "companies"  # the market regulator's business registry
HOMES = "homes"  # the housing bureau's registry of homes
SHOPS = "shopfronts"  # a third address registry, for a grant on another pair
PLATES = "parked-cars"  # government_only, a plate subject key
NOTES = "inspection-notes"  # government_only, no subject key
PURPOSE = "registry_reconciliation"
OTHER_PURPOSE = "urban_planning"  # declared by both registries too
PROBLEM = "application/problem+json"
JUSTIFICATION = "Find homes used as registered addresses of companies in Tianhe."
PLANTED = "Yunxi Garden Building 3"
POLICE = "gz-traffic-police"

_PLANTED_ROOMS = ("101", "102", "201", "202", "301", "302", "401", "402")
HOMES_LISTED: list[tuple[str, str, str]] = [
    *(
        (
            f"home-{n:02d}",
            f"Room {room}, Building 3, Yunxi Garden, 88 Huangpu Avenue, Tianhe District",
            PLANTED,
        )
        for n, room in enumerate(_PLANTED_ROOMS, start=1)
    ),
    (
        "home-09",
        "Room 502, Building 1, Cuilin Court, 12 Zhongshan Road, Yuexiu District",
        "Cuilin Court Building 1",
    ),
    (
        "home-10",
        "Room 1101, Building 2, Cuilin Court, 12 Zhongshan Road, Yuexiu District",
        "Cuilin Court Building 2",
    ),
    (
        "home-11",
        "Room 303, Building 1, Mingyue Park, 5 Tianhe Road North, Tianhe District",
        "Mingyue Park Building 1",
    ),
]
# (id, registered address as the business registry writes it, the home it is, if any)
COMPANY_SITES: list[tuple[str, str, str | None]] = [
    ("biz-01", "88 Huangpu Ave, Yunxi Garden Bldg 3, Rm 101, Tianhe", "home-01"),
    ("biz-02", "Rm 1203, 12/F, Huijing Plaza, 200 Tianhe Rd, Tianhe", None),
    ("biz-03", "TIANHE, 88 HUANGPU AVE, YUNXI GARDEN, BLDG 3-RM 201", "home-03"),
    ("biz-04", "Shop 5, G/F, 30 Zhongshan Rd, Yuexiu", None),
    ("biz-05", "rm 302, blk 3, yunxi garden, no. 88 huangpu ave, tianhe", "home-06"),
    ("biz-06", "88 Huangpu Ave, Yunxi Garden Bldg 3, Rm 501, Tianhe", None),  # no 5th floor
    ("biz-07", "Unit 402, Block 3, Yunxi Garden, 88 Huangpu Avenue, Tianhe District", "home-08"),
    ("biz-08", "88 Huangpu Ave, Yunxi Garden Bldg 4, Rm 101, Tianhe", None),  # no building 4
    ("biz-09", "Flat 101,Bldg. 3,Yunxi Garden,88  Huangpu Ave,Tianhe", "home-01"),  # again
    ("biz-10", "12 Zhongshan Rd, Cuilin Court Bldg 2, Rm 1101, Yuexiu", "home-10"),  # home office
    ("biz-11", "Rm 808, Lanting Business Centre, 66 Huangpu Ave W, Tianhe", None),
    ("biz-12", "Shop 12, 4 Tianhe Rd N, Tianhe", None),
    ("biz-13", "Rm 502, Cuilin Plaza, 12 Zhongshan Rd, Yuexiu", None),
]
# Records are published in list order, so each one's seq is its position from 1.
SEQ = {
    **{home: n for n, (home, _, _) in enumerate(HOMES_LISTED, start=1)},
    **{biz: n for n, (biz, _, _) in enumerate(COMPANY_SITES, start=1)},
}
# Home → the companies registered at it.
EXPECTED: dict[str, set[str]] = {}
for _biz, _, _home in COMPANY_SITES:
    if _home is not None:
        EXPECTED.setdefault(_home, set()).add(_biz)
MATCHED_HOMES = set(EXPECTED)
MATCHED_COMPANIES = set().union(*EXPECTED.values())
EVERY_ID = {record_id for record_id, _, _ in HOMES_LISTED + COMPANY_SITES}
UNMATCHED = EVERY_ID - MATCHED_HOMES - MATCHED_COMPANIES
COUNTS = {
    "left_records": len(COMPANY_SITES),
    "right_records": len(HOMES_LISTED),
    "matched_keys": 5,
    "left_matched": 6,
    "right_matched": 5,
}
SWAPPED = COUNTS | {
    "left_records": COUNTS["right_records"],
    "right_records": COUNTS["left_records"],
    "left_matched": COUNTS["right_matched"],
    "right_matched": COUNTS["left_matched"],
}


def business_registry(slug: str = COMPANIES) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": "Business registry",
        "description": "Companies and their registered addresses",
        "tier": "government_only",
        "purposes": [PURPOSE, OTHER_PURPOSE, "law_enforcement"],
        "retention_days": 3650,
        "subject_field": "registered_address",
        "subject_kind": "address",
        "fields": [
            {"name": "company_name", "type": "string"},
            {"name": "registered_address", "type": "string"},
            {"name": "district", "type": "string"},
            {"name": "business_type", "type": "string"},
        ],
    }


def housing_registry() -> dict[str, Any]:
    return {
        "slug": HOMES,
        "title": "Housing registry",
        "description": "Homes and their addresses",
        "tier": "government_only",
        "purposes": [PURPOSE, OTHER_PURPOSE, "housing_management"],
        "retention_days": 3650,
        "subject_field": "address",
        "subject_kind": "address",
        "fields": [
            {"name": "address", "type": "string", "sensitivity": "personal"},
            {"name": "building", "type": "string"},
            {"name": "household_size", "type": "integer", "sensitivity": "personal"},
        ],
    }


def homes() -> list[dict[str, Any]]:
    return [
        {"id": home, "address": address, "building": building, "household_size": 1 + n % 4}
        for n, (home, address, building) in enumerate(HOMES_LISTED)
    ]


def companies() -> list[dict[str, Any]]:
    return [
        {
            "id": biz,
            "company_name": f"Guangzhou No. {n} Trading Co., Ltd.",
            "registered_address": address,
            "district": "Yuexiu" if "Yuexiu" in address else "Tianhe",
            "business_type": "trading" if home else "consulting",
        }
        for n, (biz, address, home) in enumerate(COMPANY_SITES, start=1)
    ]


# --- helpers ------------------------------------------------------------------------------------


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def seq_runs(seqs: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7] → [[1, 3], [7, 7]]: how an audit entry lists the records it touched."""
    runs: list[list[int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


def fields_of(refused: dict[str, Any]) -> list[str | None]:
    return [error.get("field") for error in refused.get("errors", [])]


def audit(exchange: Exchange, **filters: Any) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params=filters))
    return [item["entry"] for item in page["entries"]]


def check(
    exchange: Exchange,
    who: str = "police",
    left: str = COMPANIES,
    right: str = HOMES,
    purpose: str = PURPOSE,
    **more: Any,
) -> Any:
    body = {"left": left, "right": right, "purpose": purpose, **more}
    return exchange.post(who, "/v1/cross-checks", json=body)


def ask(
    exchange: Exchange,
    who: str = "police",
    product: str = COMPANIES,
    partner: str | None = HOMES,
    purpose: str = PURPOSE,
    **more: Any,
) -> Any:
    body = {
        "product": product,
        "partner": partner,
        "purpose": purpose,
        "justification": JUSTIFICATION,
        "days": 30,
        **more,
    }
    return exchange.post(who, "/v1/access-requests", json=body)


def approve(exchange: Exchange, request_id: int, **approval: Any) -> Any:
    body = {"reason": "Reconciliation of the two registries approved", **approval}
    return exchange.post("steward", f"/v1/access-requests/{request_id}/approve", json=body)


def granted(exchange: Exchange, who: str = "police", **kwargs: Any) -> dict[str, Any]:
    """Ask for a cross-check grant and have the steward approve it: the grant."""
    request = ok(ask(exchange, who, **kwargs), 201)
    grant: dict[str, Any] = ok(approve(exchange, request["id"]))["grant"]
    return grant


def ids_in(body: Any) -> set[str]:
    """Every record id anywhere in a response body."""
    return set(re.findall(r"(?:home|biz)-\d+", json.dumps(body)))


def matched(body: dict[str, Any]) -> dict[str, set[str]]:
    """Home → companies, as a companies-left cross-check returned them."""
    pairs = {}
    for match in body["matches"]:
        (home,) = [record["id"] for record in match["right"]]
        pairs[home] = {record["id"] for record in match["left"]}
    return pairs


@contextmanager
def database(exchange: Exchange) -> Iterator[Connection]:
    """The test's database, behind the API's back; committed at the end."""
    engine = create_engine(exchange.settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def sql(exchange: Exchange, statement: Any, **params: Any) -> int:
    """Change rows directly in the database; how many changed."""
    with database(exchange) as connection:
        changed: int = connection.execute(statement, params).rowcount
    return changed


def subject_key(exchange: Exchange, product: str, record_id: str) -> str:
    statement = text(
        "SELECT r.subject_key FROM record r JOIN product p ON p.id = r.product_id "
        "WHERE p.slug = :product AND r.record_id = :record"
    )
    with database(exchange) as connection:
        key: str = connection.execute(
            statement, {"product": product, "record": record_id}
        ).scalar_one()
    return key


def set_subject_key(exchange: Exchange, product: str, record_id: str, key: str) -> None:
    statement = text(
        "UPDATE record SET subject_key = :key WHERE record_id = :record "
        "AND product_id = (SELECT id FROM product WHERE slug = :product)"
    )
    assert sql(exchange, statement, key=key, record=record_id, product=product) == 1


def publish(exchange: Exchange, who: str, product: str, records: list[dict[str, Any]]) -> None:
    published = ok(exchange.publish(who, product, records))
    assert published["accepted"] == len(records), published


@pytest.fixture
def registries(exchange: Exchange) -> Exchange:
    """The business and housing registries, each published by its own government body."""
    exchange.add_party("regulator", "gz-market-regulator", "government", ["publisher"])
    exchange.add_party("housing", "gz-housing-bureau", "government", ["publisher"])
    exchange.register("regulator", business_registry())
    exchange.register("housing", housing_registry())
    publish(exchange, "regulator", COMPANIES, companies())
    publish(exchange, "housing", HOMES, homes())
    return exchange


@pytest.fixture
def grant(registries: Exchange) -> dict[str, Any]:
    """The police's cross-check grant on the two registries, for reconciliation."""
    return granted(registries)


# --- 1, 2. no grant, or a grant for something else ----------------------------------------------


def test_without_a_grant_nothing_is_compared(registries: Exchange) -> None:
    # Police may read either registry on its own; that does not let it compare them.
    for product in (COMPANIES, HOMES):
        page = ok(
            registries.get("police", f"/v1/products/{product}/records", params={"purpose": PURPOSE})
        )
        assert page["records"]

    response = check(registries)

    refused = problem(response, 403)
    assert "matches" not in refused and "counts" not in refused, refused
    assert ids_in(refused) == set(), refused
    assert "yunxi" not in response.text.casefold(), refused
    (entry,) = audit(registries, action="cross_check")
    assert entry["decision"] == "deny"
    assert (entry["product"], entry["purpose"], entry["organization"]) == (
        COMPANIES,
        PURPOSE,
        POLICE,
    )
    assert entry["records"] == [] and entry["record_count"] == 0
    assert entry["reason"] == refused["detail"]


@pytest.mark.parametrize("held", ["other purpose", "other pair", "other organisation"])
def test_a_grant_for_something_else_does_not_count(registries: Exchange, held: str) -> None:
    registries.register("regulator", business_registry(SHOPS))
    if held == "other purpose":
        granted(registries, purpose=OTHER_PURPOSE)
    elif held == "other pair":
        granted(registries, partner=SHOPS)
    else:
        registries.add_party("planner", "gz-planning-bureau", "government", ["subscriber"])
        granted(registries, "planner")

    refused = problem(check(registries), 403)

    assert ids_in(refused) == set(), refused
    denied = audit(registries, action="cross_check", decision="deny", organization=POLICE)
    assert [(e["product"], e["purpose"]) for e in denied] == [(COMPANIES, PURPOSE)]
    assert audit(registries, action="cross_check", decision="allow") == []


def test_only_government_only_registries_are_cross_checked(registries: Exchange) -> None:
    """An open product with an address key cannot be paired, even by the police."""
    open_shops = business_registry("open-shops") | {"tier": "open"}
    registries.register("fleet", open_shops)
    publish(registries, "fleet", "open-shops", companies())

    asked = problem(ask(registries, partner="open-shops"), 403)
    refused = problem(check(registries, left="open-shops", right=COMPANIES), 403)

    assert ids_in(asked) == ids_in(refused) == set()
    assert "open product open-shops" in refused["detail"], refused
    assert ok(registries.get("police", "/v1/access-requests"))["requests"] == []
    requests = audit(registries, action="cross_check_request.create")
    assert [(e["decision"], e["product"]) for e in requests] == [("deny", "open-shops")]
    denied = audit(registries, action="cross_check", decision="deny")
    assert [(e["product"], e["reason"]) for e in denied] == [("open-shops", refused["detail"])]


# --- 3, 4, 5. the flow, both orders, the audit entry --------------------------------------------


def test_asked_approved_and_checked(registries: Exchange) -> None:
    request = ok(ask(registries), 201)
    assert (request["product"], request["partner"], request["status"]) == (
        COMPANIES,
        HOMES,
        "pending",
    )
    (asked,) = audit(registries, action="cross_check_request.create")
    assert asked["decision"] == "allow"
    assert (asked["product"], asked["purpose"]) == (COMPANIES, PURPOSE)
    assert asked["details"]["partner"] == HOMES
    assert asked["details"]["request"] == request["id"]

    grant = ok(approve(registries, request["id"]))["grant"]
    assert (grant["product"], grant["partner"], grant["purpose"]) == (COMPANIES, HOMES, PURPOSE)
    assert (grant["state"], grant["quota"], grant["scope"]) == ("active", None, {})

    body = ok(check(registries, count_by={"product": HOMES, "field": "building"}))

    assert (body["left"], body["right"], body["kind"], body["purpose"]) == (
        COMPANIES,
        HOMES,
        "address",
        PURPOSE,
    )
    assert body["grant"] == grant["id"]
    assert body["views"] == {COMPANIES: "raw", HOMES: "raw"}
    assert body["counts"] == COUNTS
    assert body["truncated"] is False
    assert matched(body) == EXPECTED
    assert ids_in(body) == MATCHED_HOMES | MATCHED_COMPANIES
    assert ids_in(body).isdisjoint(UNMATCHED)
    assert body["counted_by"] == {
        "product": HOMES,
        "field": "building",
        "counts": {PLANTED: 4, "Cuilin Court Building 2": 1},
    }


def test_the_matches_are_the_records_as_published(
    registries: Exchange, grant: dict[str, Any]
) -> None:
    body = ok(check(registries))

    published = {record["id"]: record for record in homes() + companies()}
    keys = [match["key"] for match in body["matches"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for match in body["matches"]:
        for record in match["left"] + match["right"]:
            assert record["seq"] == SEQ[record["id"]], record
            shown = {k: v for k, v in record.items() if k not in ("seq", "published_at")}
            assert shown == published[record["id"]], record  # the sealed address opens raw
    # The key is the normalised address both registries share, not either's spelling.
    (home_01,) = [m for m in body["matches"] if m["right"][0]["id"] == "home-01"]
    assert home_01["key"] == "88 ave bldg3 garden huangpu tianhe unit101 yunxi"


@pytest.mark.parametrize("asked_as", [(COMPANIES, HOMES), (HOMES, COMPANIES)])
def test_a_grant_naming_both_works_in_either_order(
    registries: Exchange, asked_as: tuple[str, str]
) -> None:
    grant = granted(registries, product=asked_as[0], partner=asked_as[1])

    forward = ok(check(registries, left=COMPANIES, right=HOMES))
    backward = ok(check(registries, left=HOMES, right=COMPANIES))

    assert forward["grant"] == backward["grant"] == grant["id"]
    assert forward["counts"] == COUNTS
    assert backward["counts"] == SWAPPED
    assert matched(forward) == EXPECTED
    flipped = [
        {"key": m["key"], "left": m["right"], "right": m["left"]} for m in backward["matches"]
    ]
    assert flipped == forward["matches"]
    assert ids_in(backward) == MATCHED_HOMES | MATCHED_COMPANIES


def test_each_check_is_one_audit_entry_naming_every_record_returned(
    registries: Exchange, grant: dict[str, Any]
) -> None:
    first = ok(check(registries, count_by={"product": COMPANIES, "field": "district"}))
    second = ok(check(registries, left=HOMES, right=COMPANIES))

    entries = audit(registries, action="cross_check")
    assert [e["index"] for e in entries] == [first["audit_index"], second["audit_index"]]
    assert first["check"] != second["check"]
    company_runs = seq_runs([SEQ[biz] for biz in MATCHED_COMPANIES])
    home_runs = seq_runs([SEQ[home] for home in MATCHED_HOMES])
    assert company_runs == [[1, 1], [3, 3], [5, 5], [7, 7], [9, 10]]
    for entry, body, runs, partner_runs in (
        (entries[0], first, company_runs, home_runs),
        (entries[1], second, home_runs, company_runs),
    ):
        assert entry["decision"] == "allow"
        assert (entry["product"], entry["purpose"], entry["organization"]) == (
            body["left"],
            PURPOSE,
            POLICE,
        )
        assert entry["grant"] == str(grant["id"])
        assert entry["records"] == runs
        assert entry["record_count"] == len(MATCHED_COMPANIES) + len(MATCHED_HOMES)
        details = entry["details"]
        assert details["check"] == body["check"]
        assert details["partner"] == body["right"]
        assert details["partner_records"] == partner_runs
        assert details["kind"] == "address"
        assert details["counts"] == body["counts"]
    assert entries[0]["details"]["count_by"] == {"product": COMPANIES, "field": "district"}
    assert entries[1]["details"]["count_by"] is None
    assert first["counted_by"]["counts"] == {"Tianhe": 5, "Yuexiu": 1}


# --- 6. a grant that ends -----------------------------------------------------------------------


def test_a_revoked_grant_stops_the_next_check(registries: Exchange, grant: dict[str, Any]) -> None:
    ok(check(registries))
    revoked = registries.delete(
        "steward", f"/v1/grants/{grant['id']}", params={"reason": "Reconciliation finished"}
    )
    assert ok(revoked)["state"] == "revoked"

    refused = problem(check(registries), 403)

    assert ids_in(refused) == set()
    outcomes = [e["decision"] for e in audit(registries, action="cross_check")]
    assert outcomes == ["allow", "deny"]


def test_an_expired_grant_stops_the_next_check(registries: Exchange, grant: dict[str, Any]) -> None:
    ok(check(registries))
    statement = text("UPDATE access_grant SET expires_at = :moment WHERE id = :id").bindparams(
        bindparam("moment", type_=DateTime(timezone=True))
    )
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert sql(registries, statement, moment=past, id=grant["id"]) == 1
    assert ok(registries.get("police", f"/v1/grants/{grant['id']}"))["state"] == "expired"

    for left, right in ((COMPANIES, HOMES), (HOMES, COMPANIES)):
        refused = problem(check(registries, left=left, right=right), 403)
        assert ids_in(refused) == set()
    outcomes = [e["decision"] for e in audit(registries, action="cross_check")]
    assert outcomes == ["allow", "deny", "deny"]


# --- 7. companies and researchers ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["mapco", "lab"])
def test_companies_and_researchers_never_cross_check(registries: Exchange, who: str) -> None:
    granted(registries)  # the police's grant lends nothing to anyone else
    # Government-only registries are not even there for them, as in the catalog.
    problem(check(registries, who), 404)
    problem(ask(registries, who), 404)
    # Two products they can see, with subject keys of one kind: refused by rule.
    for slug in ("open-captures", "open-parking"):
        registries.register(
            "fleet", captures_product(slug=slug, subject_field="plate", subject_kind="plate")
        )
        publish(registries, "fleet", slug, [capture(n) for n in range(1, 4)])
    pair = {"left": "open-captures", "right": "open-parking", "purpose": "research"}

    refused = problem(check(registries, who, **pair), 403)
    asked = problem(ask(registries, who, "open-captures", "open-parking", "research"), 403)

    assert "denied by rule" in refused["detail"], refused

    assert ids_in(refused) == set() and "cap-" not in json.dumps(refused)
    organization = registries.parties[who].organization
    denied = audit(registries, action="cross_check", decision="deny", organization=organization)
    assert [e["product"] for e in denied] == [COMPANIES, "open-captures"]
    assert denied[-1]["reason"] == refused["detail"]
    requests = audit(registries, action="cross_check_request.create", organization=organization)
    assert [(e["decision"], e["product"]) for e in requests] == [
        ("deny", COMPANIES),
        ("deny", "open-captures"),
    ]
    assert requests[-1]["reason"] == asked["detail"]
    assert ok(registries.get(who, "/v1/access-requests"))["requests"] == []


# --- 8. bad input -------------------------------------------------------------------------------


@pytest.fixture
def more_products(registries: Exchange) -> Exchange:
    """A government-only product keyed by plates, and one with no subject key."""
    registries.register(
        "hotline",
        captures_product(
            slug=PLATES,
            tier="government_only",
            purposes=[PURPOSE],
            subject_field="plate",
            subject_kind="plate",
        ),
    )
    registries.register(
        "hotline", captures_product(slug=NOTES, tier="government_only", purposes=[PURPOSE])
    )
    for slug in (PLATES, NOTES):
        publish(registries, "hotline", slug, [capture(n) for n in range(1, 4)])
    return registries


REFUSED_AFTER_AUTH = [
    pytest.param({"right": COMPANIES}, 400, "right", id="same-product-twice"),
    pytest.param({"right": "no-such-registry"}, 404, None, id="unknown-right"),
    pytest.param({"left": "no-such-registry"}, 404, None, id="unknown-left"),
    pytest.param({"right": PLATES}, 400, "right", id="another-kind"),
    pytest.param({"right": NOTES}, 400, "right", id="no-subject-kind-right"),
    pytest.param({"left": NOTES}, 400, "left", id="no-subject-kind-left"),
    pytest.param(
        {"count_by": {"product": PLATES, "field": "plate"}},
        400,
        "count_by.product",
        id="count-by-another-product",
    ),
    pytest.param(
        {"count_by": {"product": HOMES, "field": "colour"}},
        400,
        "count_by.field",
        id="count-by-no-such-field",
    ),
    pytest.param(
        {"count_by": {"product": HOMES, "field": "id"}},
        400,
        "count_by.field",
        id="count-by-the-id",
    ),
]


@pytest.mark.parametrize(("changes", "status", "field"), REFUSED_AFTER_AUTH)
def test_bad_input_is_refused_and_logged(
    more_products: Exchange,
    grant: dict[str, Any],
    changes: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    body = {"left": COMPANIES, "right": HOMES, "purpose": PURPOSE} | changes

    refused = problem(more_products.post("police", "/v1/cross-checks", json=body), status)

    if field is not None:
        assert field in fields_of(refused), refused
    assert ids_in(refused) == set() and "cap-" not in json.dumps(refused)
    (entry,) = audit(more_products, action="cross_check")
    assert entry["decision"] == "deny"
    assert (entry["product"], entry["organization"]) == (body["left"], POLICE)
    assert entry["reason"] == refused["detail"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"limit": -1}, "limit", id="limit-below-0"),
        pytest.param({"limit": 1001}, "limit", id="limit-above-1000"),
        pytest.param({"limit": "many"}, "limit", id="limit-not-a-number"),
        pytest.param({"purpose": "Registry Reconciliation"}, "purpose", id="not-a-purpose"),
        pytest.param({"right": None}, "right", id="no-right"),
        pytest.param({"count_by": {"product": HOMES}}, "count_by.field", id="count-by-half"),
    ],
)
def test_malformed_requests_are_400(
    registries: Exchange, grant: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    body = {"left": COMPANIES, "right": HOMES, "purpose": PURPOSE} | changes
    body = {name: value for name, value in body.items() if value is not None}

    refused = problem(registries.post("police", "/v1/cross-checks", json=body), 400)

    assert field in fields_of(refused), refused
    assert audit(registries, action="cross_check", decision="allow") == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"scope": {"fields": ["address"]}}, "scope", id="scope-fields"),
        pytest.param({"scope": {"where": {"building": [PLANTED]}}}, "scope", id="scope-where"),
        pytest.param({"partner": COMPANIES}, "partner", id="partner-is-the-product"),
        pytest.param({"partner": PLATES}, "partner", id="partner-of-another-kind"),
        pytest.param({"partner": NOTES}, "partner", id="partner-without-subject-key"),
        pytest.param({"purpose": "housing_management"}, "purpose", id="purpose-one-declares"),
    ],
)
def test_cross_check_requests_that_make_no_sense(
    more_products: Exchange, changes: dict[str, Any], field: str
) -> None:
    refused = problem(ask(more_products, **changes), 400)

    assert field in fields_of(refused), refused
    assert ok(more_products.get("police", "/v1/access-requests"))["requests"] == []
    (entry,) = audit(more_products, action="cross_check_request.create")
    assert (entry["decision"], entry["product"], entry["organization"]) == (
        "deny",
        COMPANIES,
        POLICE,
    )


def test_an_unknown_partner_is_not_found(registries: Exchange) -> None:
    problem(ask(registries, partner="no-such-registry"), 404)

    (entry,) = audit(registries, action="cross_check_request.create")
    assert entry["decision"] == "deny"


@pytest.mark.parametrize(
    ("approval", "fields"),
    [
        pytest.param({"quota": 10}, ["quota"], id="quota"),
        pytest.param({"scope": {"fields": ["address"]}}, ["scope"], id="scope"),
        pytest.param({"scope": {}}, ["scope"], id="empty-scope"),
        pytest.param({"quota": 10, "scope": {}}, ["scope", "quota"], id="both"),
    ],
)
def test_a_cross_check_grant_takes_no_quota_or_scope(
    registries: Exchange, approval: dict[str, Any], fields: list[str]
) -> None:
    request = ok(ask(registries), 201)

    refused = problem(approve(registries, request["id"], **approval), 422)

    assert fields_of(refused) == fields, refused
    assert ok(registries.get("police", f"/v1/access-requests/{request['id']}"))["status"] == (
        "pending"
    )
    assert ok(registries.get("steward", "/v1/grants"))["grants"] == []
    problem(check(registries), 403)


# --- 9. limit -----------------------------------------------------------------------------------


def test_limit_one_returns_the_first_match_and_every_count(
    registries: Exchange, grant: dict[str, Any]
) -> None:
    whole = ok(check(registries))

    body = ok(check(registries, limit=1, count_by={"product": HOMES, "field": "building"}))

    assert body["matches"] == whole["matches"][:1]
    assert body["truncated"] is True
    assert body["counts"] == COUNTS
    assert body["counted_by"]["counts"] == {PLANTED: 4, "Cuilin Court Building 2": 1}
    (first,) = body["matches"]
    assert ids_in(body) == {r["id"] for r in first["left"] + first["right"]}
    entry = audit(registries, action="cross_check")[-1]
    # The counts tell of every matched record, so the entry names all of them.
    assert entry["records"] == matched_runs(whole, "left")
    assert entry["details"]["partner_records"] == matched_runs(whole, "right")
    assert entry["details"]["returned_keys"] == 1


def matched_runs(whole: dict[str, Any], side: str) -> list[list[int]]:
    return seq_runs([r["seq"] for match in whole["matches"] for r in match[side]])


def test_limit_zero_gives_counts_only(registries: Exchange, grant: dict[str, Any]) -> None:
    whole = ok(check(registries))
    body = ok(check(registries, limit=0))

    assert body["matches"] == []
    assert body["truncated"] is True
    assert body["counts"] == COUNTS
    assert ids_in(body) == set()
    entry = audit(registries, action="cross_check")[-1]
    matched = COUNTS["left_matched"] + COUNTS["right_matched"]
    assert (entry["records"], entry["record_count"]) == (matched_runs(whole, "left"), matched)
    assert entry["details"]["partner_records"] == matched_runs(whole, "right")
    assert (entry["details"]["counts"], entry["details"]["returned_keys"]) == (COUNTS, 0)


def test_limit_of_a_thousand_is_allowed(registries: Exchange, grant: dict[str, Any]) -> None:
    body = ok(check(registries, limit=1000))

    assert body["truncated"] is False
    assert matched(body) == EXPECTED


# --- 10. tampered subject keys ------------------------------------------------------------------


@pytest.mark.parametrize("tampered", [COMPANIES, HOMES])
def test_a_tampered_subject_key_brings_in_no_other_row(
    registries: Exchange, grant: dict[str, Any], tampered: str
) -> None:
    """The larger registry is looked up by subject key, so tampering there is what
    could bring a row in: the business registry is the larger as published; extra
    unmatched homes make the housing registry the larger. The subject key is bound
    to the row's sealed part, so the edited row fails to open: the check is refused
    as an integrity failure, audited, and shows nothing."""
    if tampered == HOMES:
        extra = [
            {
                "id": f"home-{n}",
                "address": f"Room {n}01, Building 5, Huafeng Heights, 9 Jiefang Road, Yuexiu",
                "building": "Huafeng Heights Building 5",
                "household_size": 2,
            }
            for n in range(20, 25)
        ]
        publish(registries, "housing", HOMES, extra)
        victim, target = "home-02", "home-01"  # home-02 is in the planted building, unmatched
    else:
        victim, target = "biz-06", "biz-01"  # biz-06 is a near miss of home-01
    ok(check(registries))
    set_subject_key(registries, tampered, victim, subject_key(registries, tampered, target))

    for left, right in ((COMPANIES, HOMES), (HOMES, COMPANIES)):
        refused = problem(check(registries, left=left, right=right), 500)
        assert "integrity" in refused["type"] and victim not in json.dumps(refused)
    denied = audit(registries, action="cross_check", decision="deny")
    assert len(denied) == 2 and all("integrity" in entry["reason"] for entry in denied)


# --- 11. an erased registry ---------------------------------------------------------------------


def test_an_erased_registry_cannot_be_cross_checked(
    registries: Exchange, grant: dict[str, Any]
) -> None:
    run_cli(registries.settings, "product", "erase", HOMES, "--reason", "Registry withdrawn")

    for left, right in ((COMPANIES, HOMES), (HOMES, COMPANIES)):
        refused = problem(check(registries, left=left, right=right), 410)
        assert ids_in(refused) == set(), refused
    entries = audit(registries, action="cross_check")
    assert [(e["decision"], e["product"]) for e in entries] == [
        ("deny", COMPANIES),
        ("deny", HOMES),
    ]


# --- counts by a field, and the audit -----------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 1])
def test_values_shown_in_a_count_are_records_on_record(
    registries: Exchange, grant: dict[str, Any], limit: int
) -> None:
    """A count by a field shows that field of every matched record, returned or not:
    by the subject field, it lists every matched home's address. Either such a
    count is refused, or the audit entry names the records whose values it shows."""
    response = check(registries, limit=limit, count_by={"product": HOMES, "field": "address"})
    if response.status_code != 200:
        problem(response, 400)
        return
    body = response.json()
    addresses = {address: home for home, address, _ in HOMES_LISTED}
    shown = {addresses[value] for value in body["counted_by"]["counts"]}
    assert shown == MATCHED_HOMES
    (entry,) = audit(registries, action="cross_check")
    on_record = entry["details"]["partner_records"]
    unlogged = {h for h in shown if not any(a <= SEQ[h] <= b for a, b in on_record)}
    assert unlogged == set(), f"addresses of {sorted(unlogged)} shown, not on record: {entry}"


# --- one pending request per pair ---------------------------------------------------------------


def test_one_pending_request_per_pair_in_either_order(registries: Exchange) -> None:
    """A cross-check grant names a pair in either order, so the same pair asked the
    other way round while the first request is pending is the same request again."""
    first = ok(ask(registries, product=COMPANIES, partner=HOMES), 201)

    again = problem(ask(registries, product=HOMES, partner=COMPANIES), 409)

    assert again["request_id"] == first["id"], again
    pending = ok(registries.get("steward", "/v1/access-requests", params={"status": "pending"}))
    assert [r["id"] for r in pending["requests"]] == [first["id"]]


# --- the demo's registries ----------------------------------------------------------------------


def test_the_demo_registries_find_the_planted_building(exchange: Exchange) -> None:
    """The demo's generators and product definitions, 300 homes and 120 companies:
    the planted building's companies and the home offices match, nothing else."""
    now = datetime.now(UTC)
    listed = registries_demo.residential_addresses(300, now=now)
    registered = registries_demo.business_registrations(120, now=now, homes=300)
    exchange.add_party("regulator", "gz-market-regulator", "government", ["publisher"])
    exchange.add_party("housing", "gz-housing-bureau", "government", ["publisher"])
    for who, definition, records in (
        ("regulator", BUSINESS_REGISTRATIONS, registered),
        ("housing", RESIDENTIAL_ADDRESSES, listed),
    ):
        exchange.register(who, definition.model_dump(mode="json"))
        publish(exchange, who, definition.slug, records)
    left, right = BUSINESS_REGISTRATIONS.slug, RESIDENTIAL_ADDRESSES.slug
    granted(exchange, product=left, partner=right)
    home_at = {keys.address(str(home["address"])): home["id"] for home in listed}
    expected = {
        company["id"]: home_at[key]
        for company in registered
        if (key := keys.address(str(company["registered_address"]))) in home_at
    }
    assert len(expected) == len(set(expected.values()))  # one company a home, here

    body = ok(
        check(
            exchange,
            left=left,
            right=right,
            limit=1000,
            count_by={"product": right, "field": "building"},
        )
    )

    planted, offices = registries_demo.PLANTED_COMPANIES, registries_demo.HOME_OFFICES
    assert len(expected) == planted + offices
    assert body["counts"] == {
        "left_records": 120,
        "right_records": 300,
        "matched_keys": planted + offices,
        "left_matched": planted + offices,
        "right_matched": planted + offices,
    }
    pairs = {m["left"][0]["id"]: m["right"][0]["id"] for m in body["matches"]}
    assert all(len(m["left"]) == len(m["right"]) == 1 for m in body["matches"])
    assert pairs == expected
    counts = body["counted_by"]["counts"]
    assert counts[registries_demo.PLANTED_BUILDING] == planted
    assert sum(counts.values()) - planted == offices
    assert next(iter(counts)) == registries_demo.PLANTED_BUILDING  # most first
    returned = {record["id"] for m in body["matches"] for record in m["left"] + m["right"]}
    assert returned == set(expected) | set(expected.values())
    assert len([h for h in listed if h["building"] == registries_demo.PLANTED_BUILDING]) == (
        registries_demo.PLANTED_HOMES
    )
