"""Regulated access through the HTTP API: a subscriber asks, a steward decides, the grant
is consulted on every read (scope, quota, expiry, revocation), and every step is on
record for the auditor."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, bindparam, create_engine, text

from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, pseudonym_for

PRODUCT = "near-misses"  # regulated, owned by the fleet
OPEN = "open-captures"  # open, owned by the fleet
PROBLEM = "application/problem+json"
JUSTIFICATION = "A study of pedestrian close calls near school crossings in Tianhe."
COUNT = 6  # captures 1..6: odd ones red_light, even ones bus_lane


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The fleet's regulated product with six captures, and an open one with three."""
    exchange.register("fleet", captures_product(slug=PRODUCT, tier="regulated"))
    published = exchange.publish("fleet", PRODUCT, [capture(n) for n in range(1, COUNT + 1)])
    assert published.status_code == 200, published.text
    assert published.json()["accepted"] == COUNT
    exchange.register("fleet", captures_product(slug=OPEN, tier="open"))
    published = exchange.publish("fleet", OPEN, [capture(n) for n in range(1, 4)])
    assert published.status_code == 200, published.text
    return exchange


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def ask(
    exchange: Exchange,
    who: str = "mapco",
    product: str = PRODUCT,
    purpose: str = "research",
    days: int = 30,
    **more: Any,
) -> Any:
    body = {
        "product": product,
        "purpose": purpose,
        "justification": JUSTIFICATION,
        "days": days,
        **more,
    }
    return exchange.post(who, "/v1/access-requests", json=body)


def asked(exchange: Exchange, who: str = "mapco", **kwargs: Any) -> dict[str, Any]:
    """A new pending request, as its requester sees it."""
    body: dict[str, Any] = ok(ask(exchange, who, **kwargs), 201)
    assert body["status"] == "pending"
    return body


def approve(exchange: Exchange, request_id: int, who: str = "steward", **approval: Any) -> Any:
    body = {"reason": "Research purpose verified with the ethics board", **approval}
    return exchange.post(who, f"/v1/access-requests/{request_id}/approve", json=body)


def granted(exchange: Exchange, who: str = "mapco", **kwargs: Any) -> dict[str, Any]:
    """Ask and have the steward approve: the new grant."""
    approval = kwargs.pop("approval", {})
    request = asked(exchange, who, **kwargs)
    grant: dict[str, Any] = ok(approve(exchange, request["id"], **approval))["grant"]
    return grant


def deny(exchange: Exchange, request_id: int, reason: str, who: str = "steward") -> Any:
    return exchange.post(who, f"/v1/access-requests/{request_id}/deny", json={"reason": reason})


def read(exchange: Exchange, who: str = "mapco", purpose: str = "research", **params: Any) -> Any:
    return exchange.get(
        who, f"/v1/products/{PRODUCT}/records", params={"purpose": purpose, **params}
    )


def grant_of(exchange: Exchange, grant_id: int, who: str = "mapco") -> dict[str, Any]:
    body: dict[str, Any] = ok(exchange.get(who, f"/v1/grants/{grant_id}"))
    return body


def audit(exchange: Exchange, **filters: Any) -> list[dict[str, Any]]:
    """The bodies of the entries matching the filters, as the auditor reads them."""
    page = ok(exchange.get("auditor", "/v1/audit/entries", params=filters))
    return [item["entry"] for item in page["entries"]]


def client_id(exchange: Exchange, who: str) -> str:
    return exchange.parties[who].client_id


def when(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


def set_time(exchange: Exchange, table: str, column: str, row_id: int, moment: datetime) -> None:
    """Change a time of one row directly in the database, behind the API's back."""
    engine = create_engine(exchange.settings.resolved_database_url)
    statement = text(f"UPDATE {table} SET {column} = :moment WHERE id = :id").bindparams(
        bindparam("moment", type_=DateTime(timezone=True))
    )
    try:
        with engine.begin() as connection:
            changed = connection.execute(statement, {"moment": moment, "id": row_id})
            assert changed.rowcount == 1
    finally:
        engine.dispose()


GUANGZHOU = ZoneInfo("Asia/Shanghai")  # working days are counted on the stewards' calendar


def five_working_days_after(start: datetime) -> datetime:
    """From a weekday (in Guangzhou), the same weekday a week later; from Saturday,
    Friday (+6); from Sunday, Friday (+5)."""
    local = start.astimezone(GUANGZHOU)
    return start + timedelta(days={5: 6, 6: 5}.get(local.weekday(), 7))


# --- 1. request → approve → read → expire → denied ----------------------------------------------


def test_request_approve_read_expire(world: Exchange) -> None:
    before = problem(read(world), 403)
    assert "POST /v1/access-requests" in before["hint"], before

    request = asked(world, days=30)
    assert (request["product"], request["purpose"], request["days"]) == (PRODUCT, "research", 30)
    assert request["organization"] == "lingnan-maps"
    assert request["requester"] == client_id(world, "mapco")
    assert request["grant_id"] is None
    problem(read(world), 403)  # asking is not being allowed

    approved = ok(approve(world, request["id"], reason="Ethics approval seen, 30 days"))
    grant = approved["grant"]
    assert approved["request"]["status"] == "approved"
    assert approved["request"]["grant_id"] == grant["id"]
    assert approved["request"]["decided_by"] == client_id(world, "steward")
    assert approved["request"]["decision_reason"] == "Ethics approval seen, 30 days"
    assert grant["state"] == "active"
    assert (grant["organization"], grant["product"], grant["purpose"]) == (
        "lingnan-maps",
        PRODUCT,
        "research",
    )
    assert grant["request_id"] == request["id"]
    assert (grant["quota"], grant["remaining"], grant["used"]) == (None, None, 0)
    expires = when(grant["expires_at"])
    assert when(grant["created_at"]) + timedelta(days=30) == expires
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)

    page = ok(read(world))
    assert page["grant"] == grant["id"]
    assert page["view"] == "protected"
    assert page["fields"]["plate"] == "pseudonymized"
    assert page["label"] == "deidentified"
    assert len(page["records"]) == COUNT
    originals = {f"cap-{n:06d}": capture(n) for n in range(1, COUNT + 1)}
    for shown in page["records"]:
        plate = originals[shown["id"]]["plate"]
        expected = pseudonym_for(
            world.settings, "lingnan-maps", PRODUCT, plate, page["pseudonyms_until"]
        )
        assert shown["plate"] == expected, shown
        assert PSEUDONYM.fullmatch(shown["plate"]), shown
        assert shown["photo"] == {"ref": originals[shown["id"]]["photo"], "redacted": True}
    assert len({shown["plate"] for shown in page["records"]}) == COUNT  # six plates, six

    reads = audit(world, action="read", grant=str(grant["id"]))
    assert len(reads) == 1, reads
    assert reads[0]["grant"] == str(grant["id"])
    assert (reads[0]["decision"], reads[0]["actor"]) == ("allow", client_id(world, "mapco"))
    assert (reads[0]["purpose"], reads[0]["record_count"]) == ("research", COUNT)
    approvals = audit(world, action="access_request.approve")
    assert [e["grant"] for e in approvals] == [str(grant["id"])]
    assert approvals[0]["details"]["reason"] == "Ethics approval seen, 30 days"
    assert approvals[0]["actor"] == client_id(world, "steward")
    created = audit(world, action="access_request.create", decision="allow")
    assert [e["details"]["request"] for e in created] == [request["id"]]

    set_time(world, "access_grant", "expires_at", grant["id"], datetime.now(UTC) - timedelta(1))

    after = problem(read(world), 403)
    assert "POST /v1/access-requests" in after["hint"], after
    listed = ok(world.get("mapco", "/v1/grants"))["grants"]
    assert [(g["id"], g["state"]) for g in listed] == [(grant["id"], "expired")]
    assert ok(world.get("mapco", "/v1/grants", params={"active": "true"}))["grants"] == []
    assert grant_of(world, grant["id"])["state"] == "expired"
    denied = audit(world, action="read", decision="deny", actor=client_id(world, "mapco"))
    assert len(denied) == 3  # before asking, before the approval, and after expiry
    assert all(e["grant"] is None and e["record_count"] == 0 for e in denied)
    assert len(audit(world, action="read", grant=str(grant["id"]))) == 1


# --- 2. request → deny --------------------------------------------------------------------------


def test_a_denied_request_gives_no_grant_and_says_why(world: Exchange) -> None:
    request = asked(world)
    reason = "The justification does not say which data the study needs"

    denied = ok(deny(world, request["id"], reason))
    assert denied["status"] == "denied"
    assert denied["grant_id"] is None

    mine = ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))
    assert (mine["status"], mine["decision_reason"]) == ("denied", reason)
    assert mine["decided_by"] == client_id(world, "steward")
    assert mine["decided_at"] is not None
    assert ok(world.get("mapco", "/v1/grants"))["grants"] == []
    assert ok(world.get("steward", "/v1/grants"))["grants"] == []
    problem(read(world), 403)
    entries = audit(world, action="access_request.deny")
    assert len(entries) == 1
    assert entries[0]["details"]["reason"] == reason
    assert entries[0]["details"]["request"] == request["id"]
    assert entries[0]["grant"] is None

    # Denied is final; a new request can be made.
    problem(approve(world, request["id"]), 409)
    problem(deny(world, request["id"], "Denied once more"), 409)
    assert ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))["status"] == "denied"
    assert asked(world)["id"] != request["id"]


def test_an_approved_request_cannot_be_decided_again(world: Exchange) -> None:
    request = asked(world)
    grant = ok(approve(world, request["id"]))["grant"]

    problem(approve(world, request["id"]), 409)
    problem(deny(world, request["id"], "Changed my mind"), 409)

    assert [g["id"] for g in ok(world.get("steward", "/v1/grants"))["grants"]] == [grant["id"]]
    assert grant_of(world, grant["id"])["state"] == "active"


@pytest.mark.parametrize("decision", ["approve", "deny"])
@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "ok"}])
def test_a_decision_needs_a_reason(world: Exchange, decision: str, body: dict[str, Any]) -> None:
    """A missing or too-short reason is a malformed body; the project renders every
    malformed request body as 400 bad_request (exchange/errors.py), naming the field."""
    request = asked(world)

    response = world.post("steward", f"/v1/access-requests/{request['id']}/{decision}", json=body)

    refused = problem(response, 400)
    assert "reason" in [e.get("field") for e in refused["errors"]], refused
    assert ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))["status"] == "pending"
    assert ok(world.get("steward", "/v1/grants"))["grants"] == []


# --- 3. revocation ------------------------------------------------------------------------------


def test_a_revoked_grant_stops_the_next_read(world: Exchange) -> None:
    grant = granted(world)
    ok(read(world))

    revoked = ok(world.delete("steward", f"/v1/grants/{grant['id']}", params={"reason": "Misuse"}))

    assert revoked["state"] == "revoked"
    assert revoked["revoked_by"] == client_id(world, "steward")
    assert revoked["revoke_reason"] == "Misuse"
    assert revoked["revoked_at"] is not None
    problem(read(world), 403)
    assert grant_of(world, grant["id"])["state"] == "revoked"
    entries = audit(world, action="grant.revoke", grant=str(grant["id"]))
    assert len(entries) == 1
    assert entries[0]["actor"] == client_id(world, "steward")
    assert entries[0]["details"] == {"organization": "lingnan-maps", "reason": "Misuse"}

    again = world.delete("steward", f"/v1/grants/{grant['id']}", params={"reason": "Twice"})
    problem(again, 409)
    assert grant_of(world, grant["id"])["revoke_reason"] == "Misuse"
    assert len(audit(world, action="grant.revoke")) == 1


def test_a_subscriber_cannot_revoke(world: Exchange) -> None:
    grant = granted(world)

    for who in ("mapco", "lab", "fleet", "auditor"):
        response = world.delete(who, f"/v1/grants/{grant['id']}", params={"reason": "Mine"})
        problem(response, 403)

    assert grant_of(world, grant["id"])["state"] == "active"
    ok(read(world))
    refusals = audit(world, action="grants.manage", decision="deny")
    assert len(refusals) == 4
    assert refusals[0]["actor"] == client_id(world, "mapco")
    assert audit(world, action="grant.revoke") == []


def test_revoking_needs_a_reason_and_a_grant(world: Exchange) -> None:
    grant = granted(world)

    problem(world.delete("steward", f"/v1/grants/{grant['id']}"), 400)
    problem(world.delete("steward", "/v1/grants/9999", params={"reason": "No such"}), 404)

    assert grant_of(world, grant["id"])["state"] == "active"


# --- 4. quota -----------------------------------------------------------------------------------


def test_a_quota_limits_the_records_read(world: Exchange) -> None:
    grant = granted(world, approval={"quota": 3, "days": 10})
    assert (grant["quota"], grant["used"], grant["remaining"]) == (3, 0, 3)
    assert when(grant["created_at"]) + timedelta(days=10) == when(grant["expires_at"])

    first = ok(read(world, limit=2))
    assert [r["id"] for r in first["records"]] == ["cap-000001", "cap-000002"]
    current = grant_of(world, grant["id"])
    assert (current["used"], current["remaining"], current["state"]) == (2, 1, "active")

    second = ok(read(world, limit=2, cursor=first["next_cursor"]))
    assert [r["id"] for r in second["records"]] == ["cap-000003"]
    current = grant_of(world, grant["id"])
    assert (current["used"], current["remaining"], current["state"]) == (3, 0, "exhausted")

    problem(read(world, limit=2), 403)
    assert grant_of(world, grant["id"])["used"] == 3
    reads = audit(world, action="read", grant=str(grant["id"]))
    assert [e["record_count"] for e in reads] == [2, 1]
    assert [e["records"] for e in reads] == [[[1, 2]], [[3, 3]]]


# --- 5. scope -----------------------------------------------------------------------------------


def test_a_field_scope_withholds_the_other_fields(world: Exchange) -> None:
    scope = {"fields": ["captured_at", "violation_type"]}
    grant = granted(world, approval={"scope": scope})
    assert grant["scope"] == scope

    page = ok(read(world))

    assert page["grant"] == grant["id"]
    assert page["fields"]["captured_at"] == "raw"
    assert page["fields"]["violation_type"] == "raw"
    others = {name for name in page["fields"] if name not in scope["fields"]}
    assert others == {"location", "plate", "speed_kmh", "lane", "night", "driver_note", "photo"}
    assert all(page["fields"][name] == "withheld" for name in others), page["fields"]
    assert len(page["records"]) == COUNT
    for shown in page["records"]:
        assert set(shown) == {"id", "seq", "published_at", "captured_at", "violation_type"}

    one = ok(
        world.get(
            "mapco", f"/v1/products/{PRODUCT}/records/cap-000001", params={"purpose": "research"}
        )
    )
    assert set(one["record"]) == {"id", "seq", "published_at", "captured_at", "violation_type"}


def test_a_field_the_scope_withholds_cannot_be_filtered_on(world: Exchange) -> None:
    granted(world, approval={"scope": {"fields": ["captured_at"]}})

    response = read(world, filter="violation_type=red_light")

    # As today: cap-000001, 3 and 5 come back, so their violation_type is known.
    refused = problem(response, 400)
    assert "filter" in [e.get("field") for e in refused["errors"]], refused


def test_a_value_scope_returns_only_matching_records(world: Exchange) -> None:
    scope = {"where": {"violation_type": ["red_light"]}}
    grant = granted(world, scope=scope)  # asked for; the approval keeps it
    assert grant["scope"] == scope

    page = ok(read(world))

    assert [r["id"] for r in page["records"]] == ["cap-000001", "cap-000003", "cap-000005"]
    assert {r["violation_type"] for r in page["records"]} == {"red_light"}
    outside = world.get(
        "mapco", f"/v1/products/{PRODUCT}/records/cap-000002", params={"purpose": "research"}
    )
    problem(outside, 404)
    reads = audit(world, action="read", grant=str(grant["id"]))
    assert [e["record_count"] for e in reads] == [3, 0]


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        ({"fields": ["captured_at", "colour"]}, "scope.fields"),
        ({"where": {"colour": ["red"]}}, "scope.where.colour"),
        ({"where": {"plate": ["粤A·10001"]}}, "scope.where.plate"),  # sensitive: not a limit
    ],
)
def test_an_approval_scope_that_does_not_fit_is_422(
    world: Exchange, scope: dict[str, Any], field: str
) -> None:
    request = asked(world)

    refused = problem(approve(world, request["id"], scope=scope), 422)

    assert field in [e.get("field") for e in refused["errors"]], refused
    assert ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))["status"] == "pending"
    assert ok(world.get("steward", "/v1/grants"))["grants"] == []
    assert audit(world, action="access_request.approve") == []


def test_a_requested_scope_naming_an_unknown_field_is_422(world: Exchange) -> None:
    response = ask(world, scope={"fields": ["captured_at", "colour"]})

    refused = problem(response, 422)
    assert "scope.fields" in [e.get("field") for e in refused["errors"]], refused


def test_a_requested_scope_that_does_not_fit_creates_nothing(world: Exchange) -> None:
    response = ask(world, scope={"fields": ["captured_at", "colour"]})

    assert response.status_code in (400, 422), response.text
    assert ok(world.get("mapco", "/v1/access-requests"))["requests"] == []
    refusals = audit(world, action="access_request.create", decision="deny")
    assert len(refusals) == 1
    assert refusals[0]["actor"] == client_id(world, "mapco")


# --- 6. purposes and products -------------------------------------------------------------------


def test_a_grant_is_for_its_purpose_only(world: Exchange) -> None:
    grant = granted(world, purpose="research")

    problem(read(world, purpose="navigation_safety"), 403)
    problem(read(world, purpose="law_enforcement"), 403)
    assert ok(read(world, purpose="research"))["grant"] == grant["id"]
    denied = audit(world, action="read", decision="deny", actor=client_id(world, "mapco"))
    assert [e["purpose"] for e in denied] == ["navigation_safety", "law_enforcement"]


@pytest.mark.parametrize("who", ["mapco", "lab"])
def test_only_government_may_ask_for_law_enforcement(world: Exchange, who: str) -> None:
    refused = problem(ask(world, who, purpose="law_enforcement"), 403)

    assert "denied by rule" in refused["detail"], refused
    assert ok(world.get(who, "/v1/access-requests"))["requests"] == []
    entries = audit(world, actor=client_id(world, who), decision="deny")
    assert [(e["product"], e["purpose"], e["reason"]) for e in entries] == [
        (PRODUCT, "law_enforcement", refused["detail"])
    ]


def test_a_refused_request_is_logged_under_the_action_of_the_route(world: Exchange) -> None:
    problem(ask(world, "mapco", purpose="law_enforcement"), 403)

    entries = audit(world, action="access_request.create", decision="deny")

    assert [(e["actor"], e["purpose"]) for e in entries] == [
        (client_id(world, "mapco"), "law_enforcement")
    ]


def test_what_cannot_be_asked_for(world: Exchange) -> None:
    undeclared = problem(ask(world, purpose="commercial"), 400)
    assert "purpose" in [e.get("field") for e in undeclared["errors"]], undeclared
    not_regulated = problem(ask(world, product=OPEN, purpose="navigation_safety"), 409)
    assert "not regulated" in not_regulated["detail"], not_regulated
    problem(ask(world, product="no-such-product"), 404)
    problem(ask(world, days=0), 400)
    short = world.post(
        "mapco",
        "/v1/access-requests",
        json={"product": PRODUCT, "purpose": "research", "justification": "need it", "days": 5},
    )
    problem(short, 400)

    assert ok(world.get("mapco", "/v1/access-requests"))["requests"] == []
    assert len(audit(world, action="access_request.create", decision="deny")) == 3


def test_one_pending_request_per_product_and_purpose(world: Exchange) -> None:
    first = asked(world, purpose="research")

    duplicate = problem(ask(world, purpose="research", days=7), 409)
    assert duplicate["request_id"] == first["id"], duplicate
    other_purpose = asked(world, purpose="navigation_safety")
    other_organization = asked(world, "lab", purpose="research")

    mine = ok(world.get("mapco", "/v1/access-requests"))["requests"]
    assert sorted(r["id"] for r in mine) == [first["id"], other_purpose["id"]]
    assert other_organization["organization"] == "scut-mobility-lab"
    ok(approve(world, first["id"]))
    assert asked(world, purpose="research")["id"] > other_organization["id"]  # no longer pending


# --- 7. who sees and decides what ---------------------------------------------------------------


def test_an_organisation_sees_only_its_own(world: Exchange) -> None:
    mapco_request = asked(world)
    mapco_grant = ok(approve(world, mapco_request["id"]))["grant"]
    lab_request = asked(world, "lab", purpose="navigation_safety")

    listed = ok(world.get("lab", "/v1/access-requests"))["requests"]
    assert [r["id"] for r in listed] == [lab_request["id"]]
    assert ok(world.get("lab", "/v1/grants"))["grants"] == []
    problem(world.get("lab", f"/v1/access-requests/{mapco_request['id']}"), 404)
    problem(world.get("lab", f"/v1/grants/{mapco_grant['id']}"), 404)
    problem(read(world, "lab", purpose="research"), 403)
    assert ok(read(world, "mapco", purpose="research"))["grant"] == mapco_grant["id"]

    assert [r["id"] for r in ok(world.get("mapco", "/v1/access-requests"))["requests"]] == [
        mapco_request["id"]
    ]
    steward = ok(world.get("steward", "/v1/access-requests"))["requests"]
    assert sorted(r["id"] for r in steward) == sorted([mapco_request["id"], lab_request["id"]])
    assert [g["id"] for g in ok(world.get("steward", "/v1/grants"))["grants"]] == [
        mapco_grant["id"]
    ]
    assert grant_of(world, mapco_grant["id"], "steward")["organization"] == "lingnan-maps"
    assert (
        ok(world.get("steward", f"/v1/access-requests/{lab_request['id']}"))["id"]
        == (lab_request["id"])
    )


@pytest.mark.parametrize("who", ["fleet", "hotline", "auditor"])
def test_publishers_and_auditors_see_no_requests_or_grants(world: Exchange, who: str) -> None:
    request = asked(world)
    grant = ok(approve(world, request["id"]))["grant"]

    problem(world.get(who, "/v1/access-requests"), 403)
    problem(world.get(who, f"/v1/access-requests/{request['id']}"), 403)
    problem(world.get(who, "/v1/grants"), 403)
    problem(world.get(who, f"/v1/grants/{grant['id']}"), 403)
    problem(ask(world, who, purpose="navigation_safety"), 403)

    refusals = audit(world, action="grants.read", decision="deny")
    assert len(refusals) == 4
    assert {e["actor"] for e in refusals} == {client_id(world, who)}


@pytest.mark.parametrize("who", ["mapco", "lab", "police", "fleet", "auditor"])
def test_only_stewards_decide(world: Exchange, who: str) -> None:
    request = asked(world)

    problem(approve(world, request["id"], who=who), 403)
    problem(deny(world, request["id"], "Not for you to say", who=who), 403)

    assert ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))["status"] == "pending"
    refusals = audit(world, action="grants.manage", decision="deny")
    assert [e["actor"] for e in refusals] == [client_id(world, who)] * 2


def test_a_steward_cannot_decide_for_their_own_organisation(world: Exchange) -> None:
    world.add_party("bureau-sub", "gz-data-bureau", "government", ["subscriber"])
    request = asked(world, "bureau-sub")
    assert request["organization"] == "gz-data-bureau"

    problem(approve(world, request["id"]), 409)
    problem(deny(world, request["id"], "Our own request"), 409)

    assert ok(world.get("bureau-sub", f"/v1/access-requests/{request['id']}"))["status"] == (
        "pending"
    )
    assert ok(world.get("steward", "/v1/grants"))["grants"] == []
    problem(read(world, "bureau-sub", purpose="research"), 403)


# --- 8. due dates and the queue -----------------------------------------------------------------


def test_a_request_is_due_five_working_days_later(world: Exchange) -> None:
    request = asked(world)

    created = when(request["created_at"])
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)
    assert when(request["due_at"]) == five_working_days_after(created)
    assert when(request["due_at"]).astimezone(GUANGZHOU).weekday() < 5
    assert request["overdue"] is False
    assert request["decided_at"] is None


def test_the_queue_puts_the_overdue_first_and_the_decided_last(world: Exchange) -> None:
    older = asked(world, "mapco", purpose="research")  # due in five working days
    overdue = asked(world, "lab", purpose="research")
    denied = asked(world, "mapco", purpose="navigation_safety")
    approved = asked(world, "lab", purpose="navigation_safety")
    ok(deny(world, denied["id"], "Navigation needs no regulated data"))
    ok(approve(world, approved["id"]))
    set_time(world, "access_request", "due_at", overdue["id"], datetime.now(UTC) - timedelta(1))

    queue = ok(world.get("steward", "/v1/access-requests"))["requests"]

    assert [r["id"] for r in queue] == [overdue["id"], older["id"], approved["id"], denied["id"]]
    assert [r["overdue"] for r in queue] == [True, False, False, False]
    assert [r["status"] for r in queue] == ["pending", "pending", "approved", "denied"]
    pending = ok(world.get("steward", "/v1/access-requests", params={"status": "pending"}))
    assert [r["id"] for r in pending["requests"]] == [overdue["id"], older["id"]]
    only_denied = ok(world.get("steward", "/v1/access-requests", params={"status": "denied"}))
    assert [r["id"] for r in only_denied["requests"]] == [denied["id"]]
    mine = ok(world.get("mapco", "/v1/access-requests"))["requests"]
    assert [r["id"] for r in mine] == [older["id"], denied["id"]]
    lab = ok(world.get("lab", "/v1/access-requests", params={"status": "pending"}))["requests"]
    assert [(r["id"], r["overdue"]) for r in lab] == [(overdue["id"], True)]
    problem(world.get("steward", "/v1/access-requests", params={"status": "open"}), 400)

    first_page = ok(world.get("steward", "/v1/access-requests", params={"limit": 3}))
    assert [r["id"] for r in first_page["requests"]] == [r["id"] for r in queue[:3]]
    rest = ok(
        world.get(
            "steward",
            "/v1/access-requests",
            params={"limit": 3, "cursor": first_page["next_cursor"]},
        )
    )
    assert [r["id"] for r in rest["requests"]] == [denied["id"]]
    assert rest["next_cursor"] is None


# --- 9. government reads follow the policy without grants ---------------------------------------


def test_government_reads_regulated_data_by_policy_not_grant(world: Exchange) -> None:
    raw = ok(read(world, "police", purpose="law_enforcement"))
    assert (raw["view"], raw["grant"]) == ("raw", None)
    assert [r["plate"] for r in raw["records"]] == [
        capture(n)["plate"] for n in range(1, COUNT + 1)
    ]
    assert all("photo" in r for r in raw["records"])
    managed = ok(read(world, "police", purpose="traffic_management"))
    assert (managed["view"], managed["grant"]) == ("protected", None)
    problem(read(world, "police", purpose="research"), 403)

    assert ok(world.get("police", "/v1/grants"))["grants"] == []
    reads = audit(world, action="read", actor=client_id(world, "police"), decision="allow")
    assert [(e["purpose"], e["view"], e["grant"]) for e in reads] == [
        ("law_enforcement", "raw", None),
        ("traffic_management", "protected", None),
    ]


# --- a lapsed grant says why, and a hidden product stays hidden ---------------------------------


def test_a_read_after_a_grant_expired_names_the_grant_and_says_to_ask_again(
    world: Exchange,
) -> None:
    grant = granted(world)
    ok(read(world))
    set_time(world, "access_grant", "expires_at", grant["id"], datetime.now(UTC) - timedelta(1))

    denied = problem(read(world), 403)

    assert denied["hint"].startswith(f"grant {grant['id']} for research expired at ")
    assert denied["hint"].endswith("request access again (POST /v1/access-requests)")
    # another purpose never had a grant: the policy's own hint
    other = problem(read(world, purpose="traffic_management"), 403)
    assert (
        other["hint"] == "request access for purpose traffic_management (POST /v1/access-requests)"
    )


def test_a_read_after_a_revocation_or_a_used_up_quota_says_so(world: Exchange) -> None:
    revoked = granted(world)
    ok(world.delete("steward", f"/v1/grants/{revoked['id']}", params={"reason": "study ended"}))
    hint = problem(read(world), 403)["hint"]
    assert hint.startswith(f"grant {revoked['id']} for research was revoked: study ended;")

    used_up = granted(world, approval={"quota": 1})
    assert len(ok(read(world))["records"]) == 1
    hint = problem(read(world), 403)["hint"]
    assert hint.startswith(f"grant {used_up['id']} for research has used its quota of 1 records;")


def test_a_lapsed_grant_does_not_soften_a_deny_rule(world: Exchange) -> None:
    grant = granted(world)
    set_time(world, "access_grant", "expires_at", grant["id"], datetime.now(UTC) - timedelta(1))
    current = ok(world.get("steward", "/v1/policies"))
    deny_maps = f"p, org:lingnan-maps, product:{PRODUCT}, read, *, -, deny"
    changed = world.put(
        "steward",
        "/v1/policies",
        json={"lines": [*current["lines"], deny_maps], "reason": "maps paused"},
    )
    ok(changed)

    denied = problem(read(world), 403)

    assert denied["detail"].startswith("denied by rule")
    assert denied.get("hint") is None


def test_a_product_the_caller_cannot_see_cannot_be_asked_for(world: Exchange) -> None:
    world.register("hotline", captures_product(slug="hotline-captures", tier="government_only"))
    hidden = problem(ask(world, "mapco", product="hotline-captures"), 404)
    missing = problem(ask(world, "mapco", product="no-such-product"), 404)
    assert hidden["detail"] == "no product 'hotline-captures'"
    assert missing["detail"] == "no product 'no-such-product'"
    assert ok(world.get("steward", "/v1/access-requests"))["requests"] == []
