"""The steward's console pages over HTTP: the access-request queue, approving and
denying, grants and revoking, the policy editor (dry-run, apply, refusals), its
versions and restores; and that nobody else opens them, and no form works
without its CSRF token. What the console did is checked through the API."""

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import DateTime, bindparam, create_engine, text

from tests.conftest import Exchange
from tests.console.conftest import Browser, text_of
from tests.products import capture, captures_product

REGULATED = "near-misses"
OPEN = "violation-captures"
JUSTIFICATION = "A study of pedestrian close calls near school crossings in Tianhe."
ENTERPRISE_OPEN = "p, kind:enterprise+role:subscriber, tier:open, read, @declared, protected, allow"
PLATES_PSEUDONYMIZED = "p2, *, *, *, personal, pseudonymized"
MAPS_RAW_PLATES = "p2, org:lingnan-maps, *, *, personal, raw"
MAP_TEST = "the map company never gets raw plates"
MAP_CASE = {
    "name": MAP_TEST,
    "organization": "lingnan-maps",
    "product": OPEN,
    "expect": "any",
    "never_raw": ["plate"],
}


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The fleet's regulated product and its open one, three captures each."""
    for slug, tier in ((REGULATED, "regulated"), (OPEN, "open")):
        exchange.register("fleet", captures_product(slug=slug, tier=tier))
        published = exchange.publish("fleet", slug, [capture(n) for n in range(1, 4)])
        assert published.status_code == 200, published.text
    return exchange


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def asked(exchange: Exchange, who: str, purpose: str = "research", days: int = 30) -> Any:
    body = {"product": REGULATED, "purpose": purpose, "justification": JUSTIFICATION, "days": days}
    return ok(exchange.post(who, "/v1/access-requests", json=body), 201)


def approved(exchange: Exchange, request_id: int) -> Any:
    body = {"reason": "Research purpose verified with the ethics board"}
    return ok(exchange.post("steward", f"/v1/access-requests/{request_id}/approve", json=body))


def audit(exchange: Exchange, **filters: Any) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000}))
    return [item["entry"] for item in page["entries"]]


def client_id(exchange: Exchange, who: str) -> str:
    return exchange.parties[who].client_id


def policy(exchange: Exchange) -> Any:
    return ok(exchange.get("steward", "/v1/policies"))


def set_due(exchange: Exchange, request_id: int, moment: datetime) -> None:
    """Make a request overdue behind the API's back."""
    engine = create_engine(exchange.settings.resolved_database_url)
    statement = text("UPDATE access_request SET due_at = :moment WHERE id = :id").bindparams(
        bindparam("moment", type_=DateTime(timezone=True))
    )
    try:
        with engine.begin() as connection:
            assert connection.execute(statement, {"moment": moment, "id": request_id}).rowcount
    finally:
        engine.dispose()


def element(html: str, element_id: str) -> str:
    """The text of the element with this id (up to its closing tag of the same name)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert found, f"no element #{element_id}"
    tag, start = found.group(1), found.end()
    return html[start : html.index(f"</{tag}>", start)]


def rows(html: str, table_id: str) -> list[str]:
    """The words of each body row of a table."""
    body = element(html, table_id).split("<tbody>", 1)[1]
    return [text_of(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def textarea(html: str) -> str:
    found = re.search(r'<textarea class="code" name="lines"[^>]*>(.*?)</textarea>', html, re.S)
    assert found
    return found.group(1).replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")


def editor(steward: Browser) -> tuple[str, str]:
    """The policy page: its editor's text and the version it was loaded from."""
    page = steward.get("/console/steward/policy")
    assert page.status_code == 200, text_of(page.text)[:500]
    version = re.search(r'name="expected_version" value="(\d+)"', page.text)
    assert version
    return textarea(page.text), version.group(1)


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_shows_pending_requests_overdue_first(world: Exchange, browser) -> None:
    older = asked(world, "mapco")
    overdue = asked(world, "lab")
    set_due(world, overdue["id"], datetime.now(UTC) - timedelta(days=1))
    steward = browser("steward")

    entry = steward.get("/console/steward")
    assert entry.status_code == 303
    assert entry.headers["location"] == "/console/steward/requests"
    page = steward.get("/console/steward/requests")

    assert page.status_code == 200
    order = [int(n) for n in re.findall(r'<article class="card" id="request-(\d+)"', page.text)]
    assert order == [overdue["id"], older["id"]]
    late = text_of(element(page.text, f"request-{overdue['id']}"))
    assert "overdue" in late and "scut-mobility-lab" in late
    card = text_of(element(page.text, f"request-{older['id']}"))
    assert "overdue" not in card
    for shown in ("lingnan-maps", REGULATED, "research", "30 days", JUSTIFICATION, "whole product"):
        assert shown in card, (shown, card)
    assert older["due_at"][:10] in card
    assert f'id="approve-{older["id"]}"' in page.text and f'id="deny-{older["id"]}"' in page.text
    assert 'name="days" type="number" min="1" max="366" value="30"' in page.text

    approved(world, older["id"])
    pending = steward.get("/console/steward/requests")
    assert f"request-{older['id']}" not in pending.text
    decided = steward.get("/console/steward/requests", params={"status": "approved"})
    assert f'id="request-{older["id"]}"' in decided.text
    assert f"approve-{older['id']}" not in decided.text  # decided: no form
    wrong = steward.get("/console/steward/requests", params={"status": "open"})
    assert wrong.status_code == 400 and "status" in text_of(wrong.text)
    bad_cursor = steward.get("/console/steward/requests", params={"cursor": "nonsense"})
    assert bad_cursor.status_code == 400 and "cursor" in text_of(bad_cursor.text)


def _queue(steward: Browser, status: str) -> list[int]:
    """The ids of the requests the console shows, page after page, as they are shown."""
    shown, path = [], f"/console/steward/requests?status={status}"
    while path:
        page = steward.get(path)
        assert page.status_code == 200, text_of(page.text)[:500]
        shown += [
            int(n) for n in re.findall(r'<article class="card" id="request-(\d+)"', page.text)
        ]
        following = re.search(r'<p class="pager"><a href="(\?[^"]+)"', page.text)
        path = "/console/steward/requests" + html.unescape(following.group(1)) if following else ""
    return shown


def test_the_queue_is_in_the_apis_order_across_pages(
    world: Exchange, browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Earliest due first even where that is not the order of ids, and the order
    holds from one page to the next: the console does not re-sort a page."""
    monkeypatch.setattr("exchange.console.steward.PAGE_SIZE", 3)
    now = datetime.now(UTC)
    late = asked(world, "mapco")  # due last
    overdue = asked(world, "lab")
    soon = asked(world, "mapco", purpose="navigation_safety")  # due before `late`
    later = asked(world, "lab", purpose="navigation_safety")
    decided = asked(world, "lab", purpose="traffic_management")
    for row, due in ((late, 5), (overdue, -1), (soon, 2), (later, 9)):
        set_due(world, row["id"], now + timedelta(days=due))
    denial = {"reason": "The justification names no data"}
    ok(world.post("steward", f"/v1/access-requests/{decided['id']}/deny", json=denial))
    steward = browser("steward")

    for status, expected in (
        ("pending", [overdue, soon, late, later]),
        ("all", [overdue, soon, late, later, decided]),
    ):
        api = ok(
            world.get(
                "steward",
                "/v1/access-requests",
                params={"status": status} if status != "all" else {},
            )
        )
        assert [r["id"] for r in api["requests"]] == [r["id"] for r in expected]
        assert _queue(steward, status) == [r["id"] for r in expected], status


def test_the_decision_forms_stack_on_a_narrow_screen(world: Exchange, browser) -> None:
    request = asked(world, "mapco")
    steward = browser("steward")
    page = steward.get("/console/steward/requests")
    for form in ("approve", "deny"):
        assert re.search(
            rf'<form class="inline decision"[^>]*id="{form}-{request["id"]}"', page.text
        )
    css = steward.get("/console/static/console.css").text
    block = css[css.index("/* Steward section") :]
    narrow = re.search(r"@media \(max-width: 700px\) \{(.*?)\n\}", block, re.S)
    assert narrow, block
    assert re.search(r"form\.inline\.decision \{[^}]*flex-direction: column", narrow.group(1))


def test_the_queue_speaks_both_languages(world: Exchange, browser) -> None:
    request = asked(world, "mapco")
    approved(world, request["id"])
    steward = browser("steward")
    page = steward.get("/console/steward/requests", params={"status": "all"})
    options = re.findall(
        r'<option value="(\w+)"[^>]*>([^<]*)</option>', element(page.text, "request-filter")
    )
    assert options == [
        ("pending", "pending 待处理"),
        ("approved", "approved 已批准"),
        ("denied", "denied 已拒绝"),
        ("all", "all 全部"),
    ]
    card = text_of(element(page.text, f"request-{request['id']}"))
    assert "approved 已批准" in card and "grant 授权 #" in card
    assert "<title>Access requests 访问申请 · " in page.text


def test_approving_in_the_console_creates_the_grant_the_api_shows(world: Exchange, browser):
    request = asked(world, "mapco", days=30)
    steward = browser("steward")
    steward.get("/console/steward/requests")

    done = steward.submit(
        f"/console/steward/requests/{request['id']}/approve",
        {"reason": "Ethics approval seen", "days": "10", "quota": "50"},
    )

    page = steward.follow(done)
    (grant,) = ok(world.get("steward", "/v1/grants"))["grants"]
    assert f"Access request #{request['id']} approved: grant #{grant['id']}" in text_of(page.text)
    assert (grant["organization"], grant["product"], grant["purpose"]) == (
        "lingnan-maps",
        REGULATED,
        "research",
    )
    assert (grant["quota"], grant["request_id"], grant["state"]) == (50, request["id"], "active")
    created, expires = (datetime.fromisoformat(grant[k]) for k in ("created_at", "expires_at"))
    assert expires - created == timedelta(days=10)
    mine = ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))
    assert (mine["status"], mine["decision_reason"]) == ("approved", "Ethics approval seen")
    (entry,) = audit(world, action="access_request.approve")
    assert entry["actor"] == client_id(world, "steward")
    assert entry["grant"] == str(grant["id"])
    assert entry["details"]["reason"] == "Ethics approval seen"


def test_days_default_to_those_requested_and_bad_numbers_are_named(world: Exchange, browser):
    request = asked(world, "mapco", days=20)
    steward = browser("steward")
    path = f"/console/steward/requests/{request['id']}/approve"

    for field, fields in (
        ("days", {"reason": "Ethics approval seen", "days": "ten", "quota": ""}),
        ("quota", {"reason": "Ethics approval seen", "days": "20", "quota": "0"}),
    ):
        refused = steward.submit(path, fields)
        assert refused.status_code == 422, text_of(refused.text)[:300]
        assert field in text_of(refused.text)
    assert ok(world.get("steward", "/v1/grants"))["grants"] == []

    steward.follow(steward.submit(path, {"reason": "Ethics approval seen", "days": ""}))
    (grant,) = ok(world.get("steward", "/v1/grants"))["grants"]
    created, expires = (datetime.fromisoformat(grant[k]) for k in ("created_at", "expires_at"))
    assert (expires - created, grant["quota"]) == (timedelta(days=20), None)


def test_denying_needs_a_reason(world: Exchange, browser) -> None:
    request = asked(world, "mapco")
    steward = browser("steward")
    path = f"/console/steward/requests/{request['id']}/deny"

    refused = steward.submit(path, {"reason": "  "})

    assert refused.status_code == 422
    assert "reason" in text_of(refused.text)
    assert ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))["status"] == "pending"
    assert audit(world, action="access_request.deny") == []

    page = steward.follow(steward.submit(path, {"reason": "The justification names no data"}))
    assert f"Access request #{request['id']} denied" in text_of(page.text)
    mine = ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))
    assert (mine["status"], mine["decision_reason"]) == (
        "denied",
        "The justification names no data",
    )
    (entry,) = audit(world, action="access_request.deny")
    assert entry["details"]["request"] == request["id"]
    again = steward.submit(path, {"reason": "Denied once more"})
    assert again.status_code == 409


# --- grants -------------------------------------------------------------------------------------


def test_revoking_a_grant_in_the_console(world: Exchange, browser) -> None:
    grant = approved(world, asked(world, "mapco")["id"])["grant"]
    other = approved(world, asked(world, "lab")["id"])["grant"]
    steward = browser("steward")

    page = steward.get("/console/steward/grants")
    assert page.status_code == 200
    (row,) = [r for r in rows(page.text, "grants") if r.startswith(f"{grant['id']} ")]
    for shown in (
        "lingnan-maps",
        REGULATED,
        "research",
        "active",
        grant["expires_at"][:10],
        "0 / ∞",
    ):
        assert shown in row, (shown, row)
    assert f'id="revoke-{grant["id"]}"' in page.text
    # the reason's field has a visible label in both languages, tied to it
    form = element(page.text, f"revoke-{grant['id']}")
    label = re.search(r'<label for="([^"]+)">(.*?)</label>', form, re.S)
    assert label and text_of(label.group(2)) == "Reason 理由"
    assert f'<input id="{label.group(1)}" name="reason" required' in form

    path = f"/console/steward/grants/{grant['id']}/revoke"
    refused = steward.submit(path, {"reason": ""})
    assert refused.status_code == 422 and "reason" in text_of(refused.text)
    assert ok(world.get("mapco", f"/v1/grants/{grant['id']}"))["state"] == "active"

    done = steward.follow(steward.submit(path, {"reason": "The study ended early"}))
    assert f"Grant #{grant['id']} revoked" in text_of(done.text)
    now = ok(world.get("mapco", f"/v1/grants/{grant['id']}"))
    assert (now["state"], now["revoke_reason"]) == ("revoked", "The study ended early")
    (entry,) = audit(world, action="grant.revoke")
    assert entry["grant"] == str(grant["id"])
    assert entry["details"]["reason"] == "The study ended early"
    assert f'id="revoke-{grant["id"]}"' not in done.text  # no longer in force

    active = steward.get("/console/steward/grants", params={"active": "true"})
    assert f'id="grant-{grant["id"]}"' not in active.text
    assert f'id="grant-{other["id"]}"' in active.text


# --- the policy editor --------------------------------------------------------------------------


def test_the_editor_shows_the_policy_in_force_and_its_tests(world: Exchange, browser) -> None:
    ok(world.post("steward", "/v1/policies/tests", json=MAP_CASE), 201)
    steward = browser("steward")

    lines, version = editor(steward)

    assert version == "1"
    assert lines.split("\n")[:-1] == policy(world)["lines"]
    page = steward.get("/console/steward/policy")
    assert "<code>exchange</code>" in element(page.text, "policy-meta")
    (test,) = rows(page.text, "policy-tests")
    assert MAP_TEST in test and "passes" in test


def test_a_dry_run_shows_who_loses_access_and_changes_nothing(world: Exchange, browser) -> None:
    for _ in range(2):
        ok(world.get("mapco", f"/v1/products/{OPEN}/records", params={"purpose": "research"}))
    steward = browser("steward")
    lines, version = editor(steward)
    edited = lines.replace(ENTERPRISE_OPEN + "\n", "")
    assert edited != lines

    page = steward.submit(
        "/console/steward/policy/dry-run",
        {"lines": edited, "expected_version": version, "replay_days": "7", "reason": ""},
    )

    assert page.status_code == 200, text_of(page.text)[:500]
    assert textarea(page.text) == edited
    assert ENTERPRISE_OPEN in text_of(element(page.text, "removed-lines"))
    flips = rows(page.text, "flips")
    purposes = {"navigation safety", "research", "traffic management"}
    mapco = [row for row in flips if "lingnan-maps" in row]
    assert len(mapco) == len(purposes), flips
    for purpose in purposes:
        (row,) = [row for row in mapco if f" {purpose} " in row]
        assert row.startswith(
            "loses access 失去访问 lingnan-maps subscriber violation-captures read"
        )
        assert row.endswith("allowed (protected) → denied")
    (replayed,) = rows(page.text, "replay-flips")
    assert "lingnan-maps" in replayed and "allowed (protected) → denied" in replayed
    assert " 2 6 " in f" {replayed} "  # two reads of three records each
    assert 'id="failing-tests"' not in page.text

    assert policy(world)["version"] == 1
    assert ENTERPRISE_OPEN in policy(world)["lines"]
    (entry,) = audit(world, action="policy.dry_run")
    assert entry["actor"] == client_id(world, "steward")
    assert (entry["details"]["removed"], entry["details"]["added"]) == (1, 0)


def test_a_replay_window_must_be_a_number_of_days(world: Exchange, browser) -> None:
    steward = browser("steward")
    lines, version = editor(steward)
    page = steward.submit(
        "/console/steward/policy/dry-run",
        {"lines": lines, "expected_version": version, "replay_days": "a week"},
    )
    assert page.status_code == 400
    assert "replay_days" in text_of(element(page.text, "problem"))
    assert textarea(page.text) == lines


def test_applying_with_a_reason_makes_a_new_version(world: Exchange, browser) -> None:
    steward = browser("steward")
    lines, version = editor(steward)
    edited = lines.replace(ENTERPRISE_OPEN + "\n", "")

    no_reason = steward.submit(
        "/console/steward/policy/apply", {"lines": edited, "expected_version": version}
    )
    assert no_reason.status_code == 422
    assert "reason" in text_of(element(no_reason.text, "problem"))
    assert textarea(no_reason.text) == edited
    assert policy(world)["version"] == 1

    reason = "enterprises read open products only under grants"
    done = steward.submit(
        "/console/steward/policy/apply",
        {"lines": edited, "expected_version": version, "reason": reason},
    )

    assert done.status_code == 303
    page = steward.follow(done)
    assert "Policy version 2 applied" in text_of(page.text)
    now = policy(world)
    assert (now["version"], now["reason"]) == (2, reason)
    assert now["author"] == client_id(world, "steward")
    assert ENTERPRISE_OPEN not in now["lines"]
    assert textarea(page.text).split("\n")[:-1] == now["lines"]
    (entry,) = audit(world, action="policy.change")
    assert (entry["decision"], entry["details"]["version"]) == ("allow", 2)
    assert entry["details"]["removed_lines"] == [ENTERPRISE_OPEN]
    assert entry["details"]["reason"] == reason
    read = world.get("mapco", f"/v1/products/{OPEN}/records", params={"purpose": "research"})
    assert read.status_code == 403


def test_an_invalid_line_comes_back_inline_with_the_text_kept(world: Exchange, browser) -> None:
    steward = browser("steward")
    lines, version = editor(steward)
    bad = "p, org:lingnan-maps, product:nope, read, *, -, deny"
    edited = f"# a comment\n\n{lines}{bad}\n"

    page = steward.submit(
        "/console/steward/policy/apply",
        {"lines": edited, "expected_version": version, "reason": "deny the maps a product"},
    )

    assert page.status_code == 422
    problem = text_of(element(page.text, "line-errors"))
    assert f"line {len(lines.splitlines()) + 3}: {bad}" in problem, problem
    assert "nope" in problem
    assert textarea(page.text) == edited
    assert policy(world)["version"] == 1
    assert len(ok(world.get("steward", "/v1/policies/versions"))["versions"]) == 1
    assert audit(world, action="policy.change") == []


def test_a_failing_policy_test_blocks_apply_until_overridden(world: Exchange, browser) -> None:
    ok(world.post("steward", "/v1/policies/tests", json=MAP_CASE), 201)
    steward = browser("steward")
    lines, version = editor(steward)
    edited = lines.replace(PLATES_PSEUDONYMIZED, MAPS_RAW_PLATES)
    fields = {"lines": edited, "expected_version": version, "reason": "plates for road works"}

    dry = steward.submit("/console/steward/policy/dry-run", fields)
    assert dry.status_code == 200
    assert all(MAP_TEST in row for row in rows(dry.text, "failing-tests"))

    refused = steward.submit("/console/steward/policy/apply", fields)

    assert refused.status_code == 409
    failing = rows(refused.text, "failing-tests")
    assert failing and all(MAP_TEST in row and "plate raw" in row for row in failing)
    assert 'name="override_tests"' in refused.text
    assert textarea(refused.text) == edited
    assert policy(world)["version"] == 1
    (entry,) = audit(world, action="policy.change")
    assert entry["decision"] == "deny"

    override = "approved by the committee, ticket GZDB-2291"
    done = steward.submit("/console/steward/policy/apply", fields | {"override_tests": override})
    steward.follow(done)
    now = policy(world)
    assert (now["version"], now["tests_overridden"]) == (2, override)


def test_a_concurrent_change_is_a_conflict_not_lost(world: Exchange, browser) -> None:
    steward = browser("steward")
    lines, version = editor(steward)
    theirs = [line for line in policy(world)["lines"] if line != ENTERPRISE_OPEN]
    ok(world.put("steward", "/v1/policies", json={"lines": theirs, "reason": "another steward"}))
    mine = lines.replace(PLATES_PSEUDONYMIZED, "p2, *, *, *, personal, masked")

    page = steward.submit(
        "/console/steward/policy/apply",
        {"lines": mine, "expected_version": version, "reason": "mask plates"},
    )

    assert page.status_code == 409
    assert "version 2" in text_of(element(page.text, "problem"))
    assert textarea(page.text) == mine
    assert 'name="expected_version" value="1"' in page.text
    now = policy(world)
    assert now["version"] == 2 and now["reason"] == "another steward"


# --- versions and restore ------------------------------------------------------------------------


def test_versions_and_restoring_one(world: Exchange, browser) -> None:
    before = policy(world)["lines"]
    lines = [line for line in before if line != ENTERPRISE_OPEN]
    ok(world.put("steward", "/v1/policies", json={"lines": lines, "reason": "grants only"}))
    steward = browser("steward")

    listed = steward.get("/console/steward/policy/versions")
    assert listed.status_code == 200
    assert re.findall(r'<tr id="version-(\d+)"', listed.text) == ["2", "1"]
    assert "grants only" in rows(listed.text, "versions")[0]
    assert 'href="/console/steward/policy/versions/1"' in listed.text
    v2 = steward.get("/console/steward/policy/versions/2")
    assert ENTERPRISE_OPEN in text_of(element(v2.text, "removed-lines"))
    assert 'id="restore"' not in v2.text  # in force
    v1 = steward.get("/console/steward/policy/versions/1")
    assert text_of(element(v1.text, "lines")) == text_of("\n".join(before))

    path = "/console/steward/policy/versions/1/restore"
    refused = steward.submit(path, {"reason": ""})
    assert refused.status_code == 422 and "reason" in text_of(element(refused.text, "problem"))
    assert policy(world)["version"] == 2

    page = steward.follow(steward.submit(path, {"reason": "grants only was too strict"}))

    assert "Version 1 restored as policy version 3" in text_of(page.text)
    now = policy(world)
    assert (now["version"], now["restored_from"]) == (3, 1)
    assert sorted(now["lines"]) == sorted(before)
    entry = audit(world, action="policy.change")[-1]
    assert (entry["details"]["restored_from"], entry["details"]["reason"]) == (
        1,
        "grants only was too strict",
    )
    missing = steward.get("/console/steward/policy/versions/99")
    assert missing.status_code == 404


# --- who may, and forms without their token ------------------------------------------------------

PAGES = [
    "/console/steward",
    "/console/steward/requests",
    "/console/steward/grants",
    "/console/steward/policy",
    "/console/steward/policy/versions",
    "/console/steward/policy/versions/1",
]


@pytest.mark.parametrize("party", ["mapco", "auditor"])
def test_only_stewards_open_the_steward_pages(world: Exchange, browser, party: str) -> None:
    request = asked(world, "lab")
    grant = approved(world, asked(world, "lab", purpose="navigation_safety")["id"])["grant"]
    other = browser(party)
    assert "/console/steward" not in other.get("/console/catalog").text

    for path in PAGES:
        page = other.get(path)
        assert page.status_code == 403, (path, page.status_code)
        assert "Access denied" in text_of(page.text)
    lines = "\n".join(policy(world)["lines"])
    for path, fields in (
        (f"/console/steward/requests/{request['id']}/approve", {"reason": "let me in"}),
        (f"/console/steward/requests/{request['id']}/deny", {"reason": "not for you"}),
        (f"/console/steward/grants/{grant['id']}/revoke", {"reason": "mine now"}),
        ("/console/steward/policy/dry-run", {"lines": lines}),
        ("/console/steward/policy/apply", {"lines": "p, *, *, read, *, raw, allow", "reason": "x"}),
        ("/console/steward/policy/versions/1/restore", {"reason": "back to the start"}),
    ):
        assert other.submit(path, fields).status_code == 403, path

    actor = client_id(world, party)
    denied = audit(world, actor=actor, decision="deny")
    actions = [entry["action"] for entry in denied]
    assert actions.count("grants.manage") == 3 + 3  # entry, requests, grants; three forms
    assert actions.count("policy.manage") == 3 + 3
    assert ok(world.get("lab", f"/v1/access-requests/{request['id']}"))["status"] == "pending"
    assert ok(world.get("lab", f"/v1/grants/{grant['id']}"))["state"] == "active"
    assert policy(world)["version"] == 1
    assert audit(world, action="policy.dry_run") == []


def test_a_form_without_its_csrf_token_does_nothing(world: Exchange, browser) -> None:
    request = asked(world, "mapco")
    grant = approved(world, asked(world, "lab")["id"])["grant"]
    steward = browser("steward")
    lines, version = editor(steward)
    edited = lines.replace(ENTERPRISE_OPEN + "\n", "")

    for path, fields in (
        (f"/console/steward/requests/{request['id']}/approve", {"reason": "Ethics approval"}),
        (f"/console/steward/requests/{request['id']}/deny", {"reason": "No data named"}),
        (f"/console/steward/grants/{grant['id']}/revoke", {"reason": "The study ended"}),
        ("/console/steward/policy/dry-run", {"lines": edited}),
        (
            "/console/steward/policy/apply",
            {"lines": edited, "expected_version": version, "reason": "grants only"},
        ),
        ("/console/steward/policy/versions/1/restore", {"reason": "back to the start"}),
    ):
        for token in ({}, {"csrf": "forged"}):
            response = steward.http.post(path, data=fields | token)
            assert response.status_code == 403, (path, token, response.status_code)
            assert "Form refused" in text_of(response.text)

    assert ok(world.get("mapco", f"/v1/access-requests/{request['id']}"))["status"] == "pending"
    assert ok(world.get("lab", f"/v1/grants/{grant['id']}"))["state"] == "active"
    assert policy(world)["version"] == 1
    assert audit(world, action="policy.dry_run") == []
