"""The steward-governed policy, through HTTP: who may touch it, changing it, refusing
bad changes, its history and restores, dry-runs (matrix and replay of the audit log),
stored policy tests, and `POST /v1/decisions`."""

from typing import Any

import pytest

from exchange.timeutil import parse_rfc3339
from policies import PolicyEngine, format_line
from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import pseudonym_for

PROBLEM_JSON = "application/problem+json"
PRODUCT = "violation-captures"
RECORDS = 3

# Lines the tests add; each names only what the day's parties and products make exist.
MAPS_RESEARCH_REGULATED = (
    f"p, org:lingnan-maps, product:{PRODUCT}, read, research, protected, allow"
)
LAB_RESEARCH_REGULATED = (
    f"p, org:scut-mobility-lab, product:{PRODUCT}, read, research, protected, allow"
)
MAPS_DENIED = f"p, org:lingnan-maps, product:{PRODUCT}, read, *, -, deny"
MAPS_RAW_RESEARCH = f"p, org:lingnan-maps, product:{PRODUCT}, read, research, raw, allow"
ENTERPRISE_OPEN = "p, kind:enterprise+role:subscriber, tier:open, read, @declared, protected, allow"
MAPS_RAW_PLATES = "p2, org:lingnan-maps, *, *, personal, raw"
PLATES_PSEUDONYMIZED = "p2, *, *, *, personal, pseudonymized"
PLATES_MASKED = "p2, *, *, *, personal, masked"

MAP_TEST = "the map company never gets raw plates"
POLICE_TEST = "police may read violation-captures for law_enforcement"


# --- helpers -----------------------------------------------------------------------------------


def is_problem(response: Any, status: int, code: str) -> bool:
    if response.status_code != status:
        return False
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return False
    body = response.json()
    return body["status"] == status and body["type"] == f"urn:exchange:problem:{code}"


def build_product(exchange: Exchange, tier: str = "open", slug: str = PRODUCT) -> None:
    """The fleet's captures product of this tier (the hotline's if government_only)."""
    owner = "hotline" if tier == "government_only" else "fleet"
    exchange.register(owner, captures_product(slug, tier))
    published = exchange.publish(owner, slug, [capture(n) for n in range(1, RECORDS + 1)])
    assert published.status_code == 200, published.text
    assert published.json()["accepted"] == RECORDS


def policy(exchange: Exchange) -> dict[str, Any]:
    response = exchange.get("steward", "/v1/policies")
    assert response.status_code == 200, response.text
    return dict(response.json())


def change(exchange: Exchange, lines: list[str], reason: str, **extra: Any) -> Any:
    return exchange.put("steward", "/v1/policies", json={"lines": lines, "reason": reason, **extra})


def changed(exchange: Exchange, lines: list[str], reason: str, **extra: Any) -> dict[str, Any]:
    response = change(exchange, lines, reason, **extra)
    assert response.status_code == 200, response.text
    return dict(response.json())


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    """The bodies of the audit entries matching the filters, oldest first."""
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


def client_id(exchange: Exchange, who: str) -> str:
    return exchange.parties[who].client_id


def explain(exchange: Exchange, who: str, **query: Any) -> Any:
    return exchange.post(who, "/v1/decisions", json=query)


def decision(exchange: Exchange, who: str, **query: Any) -> dict[str, Any]:
    response = explain(exchange, who, **query)
    assert response.status_code == 200, response.text
    return dict(response.json())


def read(exchange: Exchange, who: str, purpose: str, product: str = PRODUCT) -> Any:
    return exchange.get(who, f"/v1/products/{product}/records", params={"purpose": purpose})


def add_test(exchange: Exchange, case: dict[str, Any]) -> Any:
    return exchange.post("steward", "/v1/policies/tests", json=case)


MAP_CASE: dict[str, Any] = {
    "name": MAP_TEST,
    "organization": "lingnan-maps",
    "product": PRODUCT,
    "expect": "any",
    "never_raw": ["plate"],
}
POLICE_CASE: dict[str, Any] = {
    "name": POLICE_TEST,
    "organization": "gz-traffic-police",
    "product": PRODUCT,
    "expect": "allow",
    "view": "raw",
    "purpose": "law_enforcement",
}


# --- 1. only stewards ---------------------------------------------------------------------------

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/policies", None),
    (
        "PUT",
        "/v1/policies",
        {"lines": ["p, *, *, read, *, raw, allow"], "reason": "let everyone read everything"},
    ),
    ("POST", "/v1/policies/dry-run", {"lines": ["p, *, *, read, *, raw, allow"]}),
    ("GET", "/v1/policies/versions", None),
    ("GET", "/v1/policies/versions/1", None),
    ("POST", "/v1/policies/versions/1/restore", {"reason": "back to the default"}),
    ("GET", "/v1/policies/tests", None),
    ("POST", "/v1/policies/tests", MAP_CASE),
    ("DELETE", "/v1/policies/tests/1?reason=x", None),
]


@pytest.mark.parametrize("party", ["fleet", "police", "mapco", "lab", "auditor", "admin"])
def test_only_stewards_may_touch_the_policy(exchange: Exchange, party: str) -> None:
    build_product(exchange, "open")
    assert add_test(exchange, MAP_CASE).json()["id"] == 1  # what DELETE …/tests/1 would remove
    let_through = []
    for method, path, body in ROUTES:
        response = exchange.request(method, party, path, json=body)
        if not is_problem(response, 403, "access_denied"):
            let_through.append(f"{method} {path}: {response.status_code} {response.text}")
            continue
        problem = response.json()
        assert "system:policy" in problem["detail"], problem
        assert problem["policy_version"] == "v1"
    assert let_through == []

    # Nothing changed, and every refusal is in the log as a deny.
    assert policy(exchange)["version"] == 1
    assert [t["name"] for t in exchange.get("steward", "/v1/policies/tests").json()["tests"]] == [
        MAP_TEST
    ]
    denials = audit(exchange, actor=client_id(exchange, party), action="policy.manage")
    assert len(denials) == len(ROUTES), denials
    for entry in denials:
        assert entry["decision"] == "deny"
        assert entry["organization"] == exchange.parties[party].organization
        assert entry["policy_version"] == "v1"
        assert "system:policy" in entry["reason"]


# --- 2. reading and changing ----------------------------------------------------------------------


def test_the_policy_in_force_is_version_1_the_default_lines(exchange: Exchange) -> None:
    current = policy(exchange)
    default = [format_line(line) for line in PolicyEngine.default().lines]
    assert current["version"] == 1
    assert current["lines"] == default
    assert current["line_count"] == len(default)
    assert current["author"] == "exchange"
    assert current["restored_from"] is None
    assert current["tests_overridden"] is None
    assert current["digest"].startswith("sha256:")


def test_a_change_is_a_new_version_in_force_at_once(exchange: Exchange) -> None:
    build_product(exchange, "regulated")
    before = policy(exchange)
    assert is_problem(read(exchange, "mapco", "research"), 403, "access_denied")

    reason = "lingnan-maps: research on violation hot spots, agreed with gz-data-bureau"
    body = changed(exchange, [*before["lines"], MAPS_RESEARCH_REGULATED], reason)

    version = body["version"]
    assert version["version"] == 2
    assert version["author"] == client_id(exchange, "steward")
    assert version["reason"] == reason
    assert (version["added"], version["removed"]) == (1, 0)
    assert version["line_count"] == before["line_count"] + 1
    assert version["digest"].startswith("sha256:")
    assert version["digest"] != before["digest"]
    assert body["added_lines"] == [MAPS_RESEARCH_REGULATED]
    assert body["removed_lines"] == []
    assert body["failing_tests"] == []
    now = policy(exchange)
    assert now["version"] == 2
    assert now["lines"] == [*before["lines"], MAPS_RESEARCH_REGULATED]

    # In force at once: the read denied under v1 is allowed, protected, under v2.
    response = read(exchange, "mapco", "research")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["view"] == "protected"
    assert page["fields"]["plate"] == "pseudonymized"
    until = page["pseudonyms_until"]
    assert [r["plate"] for r in page["records"]] == [
        pseudonym_for(exchange.settings, "lingnan-maps", PRODUCT, capture(n)["plate"], until)
        for n in range(1, RECORDS + 1)
    ]
    assert decision(exchange, "mapco", product=PRODUCT, purpose="research")["policy_version"] == (
        "v2"
    )
    reads = audit(exchange, action="read", actor=client_id(exchange, "mapco"))
    assert [(e["decision"], e["policy_version"]) for e in reads] == [
        ("deny", "v1"),
        ("allow", "v2"),
    ]
    assert reads[1]["view"] == "protected"

    # The change itself is in the log.
    (entry,) = audit(exchange, action="policy.change")
    assert entry["decision"] == "allow"
    assert entry["actor"] == client_id(exchange, "steward")
    assert entry["organization"] == "gz-data-bureau"
    details = entry["details"]
    assert details["version"] == 2
    assert details["digest"] == version["digest"]
    assert details["reason"] == reason
    assert details["added_lines"] == [MAPS_RESEARCH_REGULATED]
    assert details["removed_lines"] == []
    assert (details["added"], details["removed"]) == (1, 0)


def test_a_removed_line_stops_applying_at_once(exchange: Exchange) -> None:
    build_product(exchange, "open")
    assert read(exchange, "mapco", "navigation_safety").status_code == 200
    lines = [line for line in policy(exchange)["lines"] if line != ENTERPRISE_OPEN]
    body = changed(exchange, lines, "enterprises read open products only under grants")
    assert body["removed_lines"] == [ENTERPRISE_OPEN]
    assert (body["version"]["added"], body["version"]["removed"]) == (0, 1)

    denied = read(exchange, "mapco", "navigation_safety")
    assert is_problem(denied, 403, "access_denied"), denied.text
    assert denied.json()["policy_version"] == "v2"
    assert read(exchange, "lab", "navigation_safety").status_code == 200


def test_a_steward_may_choose_masked_plates_instead_of_pseudonyms(exchange: Exchange) -> None:
    build_product(exchange, "open")
    assert add_test(exchange, MAP_CASE).status_code == 201
    before = policy(exchange)
    assert PLATES_PSEUDONYMIZED in before["lines"]
    lines = [PLATES_MASKED if line == PLATES_PSEUDONYMIZED else line for line in before["lines"]]

    body = changed(exchange, lines, "masked plates: the region is what the study needs")

    assert (body["added_lines"], body["removed_lines"]) == ([PLATES_MASKED], [PLATES_PSEUDONYMIZED])
    assert body["failing_tests"] == []  # a masked plate is not a raw one
    page = read(exchange, "mapco", "research").json()
    assert page["view"] == "protected"
    assert page["fields"]["plate"] == "masked"
    assert page["label"] == "deidentified"
    assert page["pseudonyms_until"] is None
    assert [r["plate"] for r in page["records"]] == ["粤A·1****"] * RECORDS
    police = read(exchange, "police", "law_enforcement").json()
    assert [r["plate"] for r in police["records"]] == [
        capture(n)["plate"] for n in range(1, RECORDS + 1)
    ]


# --- 3. refusing bad changes -------------------------------------------------------------------

AT = 3  # where the bad line goes in the submitted list

BAD_LINES = [
    pytest.param("p, org:lingnan-maps, tier:open, read, research, allow", "expected", id="fields"),
    pytest.param("p, org:lingnan-maps, tier:open, read, *, -, deny, x", "expected", id="fields+"),
    pytest.param(
        f"p, org:lingnan-maps, product:{PRODUCT}, read, *, -, Deny", "effect", id="effect-Deny"
    ),
    pytest.param(
        f"p, org:lingnan-maps, product:{PRODUCT}, read, research, secret, allow",
        "view",
        id="view-secret",
    ),
    pytest.param(
        "p, org:lingnan-maps, keyMatch(tier:open), read, *, -, deny", "forbidden", id="parens"
    ),
    pytest.param('p, "org:lingnan-maps", tier:open, read, *, -, deny', "forbidden", id="quote"),
    pytest.param("p, org:lingnan maps, tier:open, read, *, -, deny", "forbidden", id="space"),
    pytest.param("p, , tier:open, read, *, -, deny", "empty", id="empty"),
    pytest.param("p, org:lingnan-maps, product:nope, read, *, -, deny", "product", id="product"),
    pytest.param("p, org:lingnan-mapz, tier:open, read, *, -, deny", "org", id="org"),
    pytest.param("p, kind:alien+role:subscriber, tier:open, read, *, -, deny", "kind", id="kind"),
    pytest.param("p, role:overlord, tier:open, read, *, raw, allow", "role", id="role"),
    pytest.param("p, org:lingnan-maps, tier:open, sell, *, -, allow", "action", id="action"),
    pytest.param(
        "p, org:lingnan-maps, tier:open, read, advertising, protected, allow",
        "purpose",
        id="purpose",
    ),
    pytest.param("p, org:lingnan-maps, tier:platinum, read, *, -, deny", "tier", id="tier"),
    pytest.param("p, org:lingnan-maps, tier:open, read, *, -", "expected", id="p-short"),
    pytest.param("p2, org:lingnan-maps, *, *, biometric, withheld", "sensitivity", id="p2-sens"),
    pytest.param("p2, org:lingnan-maps, *, *, personal, blurred", "treatment", id="p2-treat"),
    # A treatment must make sense for the sensitivity: a point has no pseudonym, a photo no
    # grid cell and no mask, a plate no redaction.
    pytest.param(
        "p2, org:lingnan-maps, *, *, location, pseudonymized", "treatment", id="p2-location-ps"
    ),
    pytest.param("p2, org:lingnan-maps, *, *, image, generalized", "treatment", id="p2-image-grid"),
    pytest.param(
        "p2, org:lingnan-maps, *, *, personal, redacted", "treatment", id="p2-personal-redacted"
    ),
    pytest.param("p2, org:lingnan-maps, *, *, image, masked", "treatment", id="p2-image-masked"),
    pytest.param("p2, org:lingnan-maps, *, gossip, personal, raw", "purpose", id="p2-purpose"),
    pytest.param("p3, org:lingnan-maps, *, *, personal, raw", "expected", id="p3"),
]


@pytest.mark.parametrize(("bad", "says"), BAD_LINES)
def test_an_invalid_line_is_refused_naming_its_position(
    exchange: Exchange, bad: str, says: str
) -> None:
    build_product(exchange, "open")
    before = policy(exchange)
    lines = [*before["lines"][:AT], bad, *before["lines"][AT:]]

    response = change(exchange, lines, "a change that must not apply")

    assert is_problem(response, 422, "validation_failed"), response.text
    problem = response.json()
    assert "unchanged" in problem["detail"]
    assert len(problem["errors"]) == 1, problem
    (error,) = problem["errors"]
    assert error["field"] == "lines"
    assert error["index"] == AT
    assert says in error["reason"]
    assert policy(exchange) == before
    assert len(exchange.get("steward", "/v1/policies/versions").json()["versions"]) == 1
    still = decision(exchange, "mapco", product=PRODUCT, purpose="research")
    assert (still["allowed"], still["view"], still["policy_version"]) == (True, "protected", "v1")
    assert audit(exchange, action="policy.change") == []


def test_a_repeated_line_is_refused_naming_the_repeat(exchange: Exchange) -> None:
    before = policy(exchange)
    lines = [*before["lines"][:AT], before["lines"][0], *before["lines"][AT:]]
    response = change(exchange, lines, "a change that must not apply")
    assert is_problem(response, 422, "validation_failed"), response.text
    (error,) = response.json()["errors"]
    assert (error["field"], error["index"]) == ("lines", AT)
    assert "repeats line 1" in error["reason"]
    assert policy(exchange) == before


def test_every_problem_of_every_added_line_is_named(exchange: Exchange) -> None:
    before = policy(exchange)
    bad = [
        "p, org:nobody, product:nope, read, *, -, deny",
        "p, role:subscriber, tier:open, sell, advertising, raw, allow",
    ]
    response = change(exchange, [*before["lines"], *bad], "two bad lines")
    assert is_problem(response, 422, "validation_failed"), response.text
    errors = response.json()["errors"]
    n = len(before["lines"])
    assert [(e["field"], e["index"]) for e in errors] == [("lines", n)] * 2 + [("lines", n + 1)] * 2
    assert policy(exchange) == before


def test_the_same_lines_again_are_a_conflict(exchange: Exchange) -> None:
    before = policy(exchange)
    response = change(exchange, before["lines"], "no change at all")
    assert is_problem(response, 409, "conflict"), response.text
    shuffled = list(reversed(before["lines"]))
    response = change(exchange, shuffled, "the same lines in another order")
    assert is_problem(response, 409, "conflict"), response.text
    assert policy(exchange) == before


def test_a_stale_expected_version_is_a_conflict(exchange: Exchange) -> None:
    build_product(exchange, "regulated")
    lines = policy(exchange)["lines"]
    changed(exchange, [*lines, MAPS_RESEARCH_REGULATED], "maps research", expected_version=1)

    # A second steward reviewed version 1 and proposes on top of it.
    response = change(
        exchange, [*lines, LAB_RESEARCH_REGULATED], "lab research", expected_version=1
    )
    assert is_problem(response, 409, "conflict"), response.text
    assert response.json()["current_version"] == 2
    now = policy(exchange)
    assert now["version"] == 2
    assert LAB_RESEARCH_REGULATED not in now["lines"]
    assert MAPS_RESEARCH_REGULATED in now["lines"]


# --- 4. history and restore ----------------------------------------------------------------------


def test_versions_newest_first_with_their_changes_and_restore(exchange: Exchange) -> None:
    build_product(exchange, "regulated")
    v1 = policy(exchange)
    v2_lines = [*v1["lines"], MAPS_RESEARCH_REGULATED]
    v3_lines = [*v2_lines, LAB_RESEARCH_REGULATED]
    v4_lines = [*v1["lines"], LAB_RESEARCH_REGULATED]
    changed(exchange, v2_lines, "maps research pilot")
    changed(exchange, v3_lines, "lab research pilot")
    changed(exchange, v4_lines, "maps pilot ended")
    assert read(exchange, "lab", "research").status_code == 200

    listed = exchange.get("steward", "/v1/policies/versions").json()
    assert [v["version"] for v in listed["versions"]] == [4, 3, 2, 1]
    assert [v["reason"] for v in listed["versions"][:3]] == [
        "maps pilot ended",
        "lab research pilot",
        "maps research pilot",
    ]
    assert listed["next_cursor"] is None

    # Paging one at a time gives the same, newest first.
    paged: list[int] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        page = exchange.get("steward", "/v1/policies/versions", params=params)
        assert page.status_code == 200, page.text
        paged += [v["version"] for v in page.json()["versions"]]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert paged == [4, 3, 2, 1]

    v3 = exchange.get("steward", "/v1/policies/versions/3").json()
    assert v3["added_lines"] == [LAB_RESEARCH_REGULATED]
    assert v3["removed_lines"] == []
    assert v3["lines"] is None
    assert v3["author"] == client_id(exchange, "steward")
    v4 = exchange.get("steward", "/v1/policies/versions/4").json()
    assert (v4["added_lines"], v4["removed_lines"]) == ([], [MAPS_RESEARCH_REGULATED])
    assert (v4["added"], v4["removed"], v4["line_count"]) == (0, 1, len(v4_lines))
    full = exchange.get("steward", "/v1/policies/versions/3", params={"lines": "true"}).json()
    assert full["lines"] == v3_lines
    old = exchange.get("steward", "/v1/policies/versions/1", params={"lines": "true"}).json()
    assert old["lines"] == v1["lines"]
    assert old["digest"] == v1["digest"]

    # Restoring version 1 is a new version with version 1's lines and decisions.
    response = exchange.post(
        "steward", "/v1/policies/versions/1/restore", json={"reason": "pilots over"}
    )
    assert response.status_code == 200, response.text
    restored = response.json()
    assert restored["version"]["version"] == 5
    assert restored["version"]["restored_from"] == 1
    assert restored["version"]["digest"] == v1["digest"]
    assert restored["removed_lines"] == [LAB_RESEARCH_REGULATED]
    assert restored["added_lines"] == []
    now = policy(exchange)
    assert (now["version"], now["restored_from"]) == (5, 1)
    assert sorted(now["lines"]) == sorted(v1["lines"])
    denied = read(exchange, "lab", "research")
    assert is_problem(denied, 403, "access_denied"), denied.text
    assert denied.json()["policy_version"] == "v5"
    assert "access-requests" in denied.json()["hint"]

    entry = audit(exchange, action="policy.change")[-1]
    assert entry["details"]["version"] == 5
    assert entry["details"]["restored_from"] == 1
    assert entry["details"]["reason"] == "pilots over"

    # Restoring what is already in force changes nothing.
    again = exchange.post(
        "steward", "/v1/policies/versions/1/restore", json={"reason": "pilots over"}
    )
    assert is_problem(again, 409, "conflict"), again.text


def test_a_version_that_does_not_exist_is_not_found(exchange: Exchange) -> None:
    missing = exchange.get("steward", "/v1/policies/versions/99")
    assert is_problem(missing, 404, "not_found"), missing.text
    response = exchange.post(
        "steward", "/v1/policies/versions/99/restore", json={"reason": "a version from the future"}
    )
    assert is_problem(response, 404, "not_found"), response.text
    assert policy(exchange)["version"] == 1
    assert audit(exchange, action="policy.change") == []


# --- 5. dry-run ---------------------------------------------------------------------------------


def test_a_dry_run_matrix_shows_exactly_the_flips(exchange: Exchange) -> None:
    build_product(exchange, "open")
    lines = [*policy(exchange)["lines"], MAPS_DENIED]

    response = exchange.post("steward", "/v1/policies/dry-run", json={"lines": lines})

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["base_version"] == 1
    assert result["added_lines"] == [MAPS_DENIED]
    assert result["removed_lines"] == []
    assert result["failing_tests"] == []
    assert result["replay"] is None
    matrix = result["matrix"]
    # lingnan-maps reads the open product protected for each declared purpose but
    # law_enforcement (a government purpose): those three reads flip to denied.
    expected = {"navigation_safety", "research", "traffic_management"}
    assert (matrix["flips"], matrix["newly_denied"]) == (3, 3)
    assert (matrix["newly_allowed"], matrix["view_changed"]) == (0, 0)
    assert matrix["decisions"] > matrix["flips"]
    flips = matrix["shown"]
    assert {flip["purpose"] for flip in flips} == expected
    for flip in flips:
        assert flip["organization"] == "lingnan-maps"
        assert (flip["kind"], flip["roles"]) == ("enterprise", ["subscriber"])
        assert (flip["object"], flip["action"]) == (PRODUCT, "read")
        assert (flip["before"]["allowed"], flip["before"]["view"]) == (True, "protected")
        assert flip["before"]["fields"]["personal"] == "pseudonymized"
        assert (flip["after"]["allowed"], flip["after"]["view"]) == (False, "-")
        assert flip["after"]["rule"] == MAPS_DENIED.split(", ")[1:]

    # Nothing changed.
    assert policy(exchange)["version"] == 1
    assert read(exchange, "mapco", "research").status_code == 200
    (entry,) = audit(exchange, action="policy.dry_run")
    assert entry["decision"] == "allow"
    assert entry["details"]["base_version"] == 1
    assert (entry["details"]["added"], entry["details"]["removed"]) == (1, 0)


def test_a_dry_run_matrix_counts_a_narrower_treatment_as_a_view_change(
    exchange: Exchange,
) -> None:
    build_product(exchange, "open")
    narrower = "p2, org:lingnan-maps, *, *, location, withheld"
    lines = [*policy(exchange)["lines"], narrower]

    response = exchange.post("steward", "/v1/policies/dry-run", json={"lines": lines})

    assert response.status_code == 200, response.text
    matrix = response.json()["matrix"]
    assert (matrix["flips"], matrix["view_changed"]) == (3, 3)
    assert (matrix["newly_allowed"], matrix["newly_denied"]) == (0, 0)
    for flip in matrix["shown"]:
        assert (flip["organization"], flip["action"]) == ("lingnan-maps", "read")
        assert flip["before"]["fields"]["location"] == "generalized"
        assert flip["after"]["fields"]["location"] == "withheld"
        assert flip["after"]["fields"]["personal"] == "pseudonymized"
        assert flip["before"]["allowed"] and flip["after"]["allowed"]


def test_a_dry_run_shows_a_change_that_would_lock_the_stewards_out(exchange: Exchange) -> None:
    stewards = "p, role:steward, system:policy, manage, *, -, allow"
    lines = [line for line in policy(exchange)["lines"] if line != stewards]

    response = exchange.post("steward", "/v1/policies/dry-run", json={"lines": lines})

    assert response.status_code == 200, response.text
    matrix = response.json()["matrix"]
    assert (matrix["flips"], matrix["newly_denied"]) == (1, 1)
    (flip,) = matrix["shown"]
    assert (flip["organization"], flip["roles"]) == ("gz-data-bureau", ["steward"])
    assert (flip["object"], flip["action"], flip["purpose"]) == ("system:policy", "manage", "")
    assert flip["before"]["rule"] == stewards.split(", ")[1:]
    assert flip["after"]["allowed"] is False


@pytest.mark.parametrize("keep", ["none", "all but the stewards' line"])
def test_a_change_that_would_lock_every_steward_out_is_refused(
    exchange: Exchange, keep: str
) -> None:
    stewards = "p, role:steward, system:policy, manage, *, -, allow"
    before = policy(exchange)
    lines = [] if keep == "none" else [line for line in before["lines"] if line != stewards]

    response = change(exchange, lines, "tidy up", override_tests="no tests matter here")

    assert is_problem(response, 409, "conflict"), response.text
    assert "no active principal could change the policy" in response.json()["detail"]
    assert policy(exchange)["version"] == before["version"]


def test_a_dry_run_of_an_invalid_policy_is_refused_like_a_change(exchange: Exchange) -> None:
    lines = [*policy(exchange)["lines"], "p, org:lingnan-maps, product:nope, read, *, -, deny"]
    response = exchange.post("steward", "/v1/policies/dry-run", json={"lines": lines})
    assert is_problem(response, 422, "validation_failed"), response.text
    (error,) = response.json()["errors"]
    assert (error["field"], error["index"]) == ("lines", len(lines) - 1)


def _reads(exchange: Exchange) -> list[dict[str, Any]]:
    """mapco reads the open product for research three times, lab once; their entries."""
    for _ in range(3):
        assert read(exchange, "mapco", "research").status_code == 200
    assert read(exchange, "lab", "research").status_code == 200
    entries = audit(exchange, action="read", product=PRODUCT)
    assert len(entries) == 4
    return entries


def test_a_dry_run_replays_the_recorded_reads(exchange: Exchange) -> None:
    build_product(exchange, "open")
    entries = _reads(exchange)
    lines = [*policy(exchange)["lines"], MAPS_DENIED]

    response = exchange.post(
        "steward", "/v1/policies/dry-run", json={"lines": lines, "matrix": False, "replay": {}}
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["matrix"] is None
    replay = result["replay"]
    assert replay["window"] == {"from": None, "to": None}
    assert replay["flipped"] == 3
    assert replay["replayed"] >= 4
    (group,) = replay["groups"]
    mapco = client_id(exchange, "mapco")
    assert group["organization"] == "lingnan-maps"
    assert group["actor"] == mapco
    assert (group["product"], group["action"], group["purpose"]) == (PRODUCT, "read", "research")
    assert group["recorded"] == "allowed (protected)"
    assert group["proposed"] == "denied"
    assert group["requests"] == 3
    assert group["records"] == 3 * RECORDS
    mapco_reads = [e for e in entries if e["actor"] == mapco]
    assert group["sample_entries"] == [e["index"] for e in mapco_reads]
    assert parse_rfc3339(group["first"]) == parse_rfc3339(mapco_reads[0]["time"])
    assert parse_rfc3339(group["last"]) == parse_rfc3339(mapco_reads[-1]["time"])
    assert "3 reads" in group["summary"]
    assert "would have been denied" in group["summary"]
    assert all(g["organization"] != "scut-mobility-lab" for g in replay["groups"])
    assert policy(exchange)["version"] == 1


def test_a_replay_window_selects_the_requests(exchange: Exchange) -> None:
    build_product(exchange, "open")
    entries = _reads(exchange)
    first = entries[0]["time"]
    lines = [*policy(exchange)["lines"], MAPS_DENIED]

    def groups(window: dict[str, str]) -> list[dict[str, Any]]:
        response = exchange.post(
            "steward",
            "/v1/policies/dry-run",
            json={"lines": lines, "matrix": False, "replay": window},
        )
        assert response.status_code == 200, response.text
        return list(response.json()["replay"]["groups"])

    # Up to (not including) the first read: only the fleet's publishing, unchanged.
    assert groups({"from": "2020-01-01T00:00:00Z", "to": first}) == []
    # From the first read on: every read of mapco's.
    (group,) = groups({"from": first})
    assert group["requests"] == 3
    # Long after: nothing.
    assert groups({"from": "2099-01-01T00:00:00Z"}) == []


def test_a_replay_window_must_be_rfc3339(exchange: Exchange) -> None:
    lines = policy(exchange)["lines"]
    response = exchange.post(
        "steward",
        "/v1/policies/dry-run",
        json={"lines": lines, "replay": {"from": "last tuesday"}},
    )
    assert is_problem(response, 400, "bad_request"), response.text
    assert response.json()["errors"][0]["field"] == "replay.from"


# --- 6. policy tests ----------------------------------------------------------------------------


def test_policy_tests_are_stored_and_hold(exchange: Exchange) -> None:
    build_product(exchange, "open")
    for case in (MAP_CASE, POLICE_CASE):
        response = add_test(exchange, case)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["name"] == case["name"]
        assert stored["author"] == client_id(exchange, "steward")
        assert (stored["passes"], stored["failures"]) == (True, [])

    listed = exchange.get("steward", "/v1/policies/tests").json()["tests"]
    assert [t["name"] for t in listed] == [MAP_TEST, POLICE_TEST]
    assert all(t["passes"] for t in listed)
    assert listed[0]["never_raw"] == ["plate"]
    assert (listed[1]["view"], listed[1]["purpose"]) == ("raw", "law_enforcement")
    added = audit(exchange, action="policy.test_add")
    assert [e["details"]["name"] for e in added] == [MAP_TEST, POLICE_TEST]


def test_a_new_test_that_fails_now_is_stored_and_says_so(exchange: Exchange) -> None:
    build_product(exchange, "open")
    response = add_test(
        exchange,
        {
            "name": "the map company may read violation-captures raw for research",
            "organization": "lingnan-maps",
            "product": PRODUCT,
            "expect": "allow",
            "view": "raw",
            "purpose": "research",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["passes"] is False
    (failure,) = response.json()["failures"]
    assert failure["expected"] == "allow (raw)"
    assert failure["got"].startswith("allow (protected)")


RAW_PLATES_CHANGES = [
    pytest.param([MAPS_RAW_RESEARCH], [ENTERPRISE_OPEN], {"research"}, id="raw-view"),
    pytest.param(
        [MAPS_RAW_PLATES],
        [PLATES_PSEUDONYMIZED],
        {"navigation_safety", "research", "traffic_management"},
        id="raw-plates-in-protected-view",
    ),
]


@pytest.mark.parametrize(("added", "removed", "purposes"), RAW_PLATES_CHANGES)
def test_a_change_breaking_a_policy_test_is_refused_unless_overridden(
    exchange: Exchange, added: list[str], removed: list[str], purposes: set[str]
) -> None:
    build_product(exchange, "open")
    for case in (MAP_CASE, POLICE_CASE):
        assert add_test(exchange, case).status_code == 201
    before = policy(exchange)
    lines = [line for line in before["lines"] if line not in removed] + added

    # A dry-run names the failures too.
    dry = exchange.post("steward", "/v1/policies/dry-run", json={"lines": lines, "matrix": False})
    assert dry.status_code == 200, dry.text
    assert {f["case"] for f in dry.json()["failing_tests"]} == {MAP_TEST}

    response = change(exchange, lines, "lingnan-maps asks for plates to match road works")

    assert is_problem(response, 409, "policy_tests_fail"), response.text
    problem = response.json()
    failures = problem["failures"]
    assert {f["case"] for f in failures} == {MAP_TEST}
    assert {f["request"].rsplit(" for ", 1)[1] for f in failures} == purposes
    assert all("plate raw" in f["got"] for f in failures), failures
    assert all("never raw: plate" in f["expected"] for f in failures), failures
    assert policy(exchange) == before
    refused_page = read(exchange, "mapco", "research").json()
    assert refused_page["fields"]["plate"] == "pseudonymized"
    assert refused_page["records"][0]["plate"] == pseudonym_for(
        exchange.settings,
        "lingnan-maps",
        PRODUCT,
        capture(1)["plate"],
        refused_page["pseudonyms_until"],
    )
    (refused,) = audit(exchange, action="policy.change")
    assert refused["decision"] == "deny"
    assert refused["actor"] == client_id(exchange, "steward")
    assert "policy test" in refused["reason"]

    # With a reason, it applies; the version and the log say which tests it broke.
    override = "approved by the data bureau's committee, ticket GZDB-2291"
    body = changed(
        exchange,
        lines,
        "lingnan-maps asks for plates to match road works",
        override_tests=override,
    )
    assert body["version"]["version"] == 2
    assert body["version"]["tests_overridden"] == override
    assert {f["case"] for f in body["failing_tests"]} == {MAP_TEST}
    assert policy(exchange)["tests_overridden"] == override
    page = read(exchange, "mapco", "research").json()
    assert page["records"][0]["plate"] == capture(1)["plate"]
    applied = audit(exchange, action="policy.change")[-1]
    assert applied["decision"] == "allow"
    assert applied["details"]["tests_overridden"] == override
    assert applied["details"]["failing_tests"] == [MAP_TEST] * len(purposes)
    listed = {
        t["name"]: t["passes"]
        for t in exchange.get("steward", "/v1/policies/tests").json()["tests"]
    }
    assert listed == {MAP_TEST: False, POLICE_TEST: True}


def test_an_override_when_no_test_fails_records_nothing(exchange: Exchange) -> None:
    build_product(exchange, "regulated")
    assert add_test(exchange, MAP_CASE).status_code == 201
    lines = [*policy(exchange)["lines"], MAPS_RESEARCH_REGULATED]
    body = changed(exchange, lines, "maps research pilot", override_tests="just in case")
    assert body["version"]["tests_overridden"] is None
    assert body["failing_tests"] == []


BAD_CASES = [
    pytest.param({"organization": "lingnan-mapz"}, 422, "organization", None, id="org"),
    pytest.param({"product": "nope"}, 422, "product", None, id="product"),
    pytest.param({"never_raw": ["plate", "vin"]}, 422, "never_raw", 1, id="field"),
    pytest.param({"purpose": "advertising"}, 422, "purpose", None, id="purpose"),
]


@pytest.mark.parametrize(("changes", "status", "field", "index"), BAD_CASES)
def test_a_test_naming_what_does_not_exist_is_refused(
    exchange: Exchange, changes: dict[str, Any], status: int, field: str, index: int | None
) -> None:
    build_product(exchange, "open")
    response = add_test(exchange, MAP_CASE | changes)
    assert is_problem(response, status, "validation_failed"), response.text
    (error,) = response.json()["errors"]
    assert error["field"] == field
    assert error.get("index") == index
    assert exchange.get("steward", "/v1/policies/tests").json()["tests"] == []


SHAPELESS_CASES = [
    pytest.param({"never_raw": []}, "never_raw", id="any-without-never_raw"),
    pytest.param({"expect": "deny", "view": "raw"}, "view", id="view-with-deny"),
    pytest.param({"action": "sell"}, "action", id="unknown-action"),
    pytest.param({"expect": "maybe"}, "expect", id="unknown-expect"),
    pytest.param({"roles": ["overlord"]}, "roles", id="unknown-role"),
]


@pytest.mark.parametrize(("changes", "named"), SHAPELESS_CASES)
def test_a_test_that_checks_nothing_is_a_bad_request(
    exchange: Exchange, changes: dict[str, Any], named: str
) -> None:
    # The request's own shape is FastAPI's to check: 400, like every malformed body.
    build_product(exchange, "open")
    response = add_test(exchange, MAP_CASE | changes)
    assert is_problem(response, 400, "bad_request"), response.text
    error = response.json()["errors"][0]
    assert named in error["field"] or named in error["reason"], error
    assert exchange.get("steward", "/v1/policies/tests").json()["tests"] == []


def test_a_test_name_is_unique(exchange: Exchange) -> None:
    build_product(exchange, "open")
    assert add_test(exchange, MAP_CASE).status_code == 201
    response = add_test(exchange, MAP_CASE | {"product": PRODUCT, "never_raw": ["driver_note"]})
    assert is_problem(response, 409, "conflict"), response.text
    assert len(exchange.get("steward", "/v1/policies/tests").json()["tests"]) == 1


def test_deleting_a_test_needs_a_reason_and_is_audited(exchange: Exchange) -> None:
    build_product(exchange, "open")
    test_id = add_test(exchange, MAP_CASE).json()["id"]

    for params in ({}, {"reason": "x"}):
        response = exchange.delete("steward", f"/v1/policies/tests/{test_id}", params=params)
        assert is_problem(response, 400, "bad_request"), response.text
        assert response.json()["errors"][0]["field"] == "reason"
    assert len(exchange.get("steward", "/v1/policies/tests").json()["tests"]) == 1

    reason = "lingnan-maps now holds a plate-matching contract"
    response = exchange.delete(
        "steward", f"/v1/policies/tests/{test_id}", params={"reason": reason}
    )
    assert response.status_code == 204, response.text
    assert exchange.get("steward", "/v1/policies/tests").json()["tests"] == []
    (entry,) = audit(exchange, action="policy.test_delete")
    assert entry["decision"] == "allow"
    assert entry["actor"] == client_id(exchange, "steward")
    details = entry["details"]
    assert (details["test"], details["name"], details["reason"]) == (test_id, MAP_TEST, reason)
    assert details["case"]["never_raw"] == ["plate"]

    # No longer guarded: the change it refused now applies.
    lines = [line for line in policy(exchange)["lines"] if line != ENTERPRISE_OPEN]
    assert change(exchange, [*lines, MAPS_RAW_RESEARCH], "plate matching").status_code == 200

    again = exchange.delete("steward", f"/v1/policies/tests/{test_id}", params={"reason": reason})
    assert is_problem(again, 404, "not_found"), again.text


# --- 7. POST /v1/decisions ----------------------------------------------------------------------


def test_a_principal_asks_about_itself(exchange: Exchange) -> None:
    build_product(exchange, "open")
    answer = decision(exchange, "mapco", product=PRODUCT, purpose="research")
    assert answer["allowed"] is True
    assert answer["view"] == "protected"
    assert answer["policy_version"] == "v1"
    assert answer["rule"] == ENTERPRISE_OPEN.split(", ")[1:]
    assert answer["hint"] is None
    assert answer["grant"] is None
    assert answer["fields"] == {
        "captured_at": "raw",
        "location": "generalized",
        "violation_type": "raw",
        "plate": "pseudonymized",
        "speed_kmh": "raw",
        "lane": "raw",
        "night": "raw",
        "driver_note": "withheld",
        "photo": "redacted",
    }
    police = decision(exchange, "police", product=PRODUCT, purpose="law_enforcement")
    assert (police["allowed"], police["view"]) == (True, "raw")
    assert set(police["fields"].values()) == {"raw"}
    # Explaining reads no data: it is not an audit entry.
    assert audit(exchange, product=PRODUCT, actor=client_id(exchange, "mapco")) == []


def test_a_denied_answer_says_what_to_do(exchange: Exchange) -> None:
    build_product(exchange, "regulated")
    answer = decision(exchange, "mapco", product=PRODUCT, purpose="research")
    assert answer["allowed"] is False
    assert answer["view"] == "-"
    assert answer["fields"] == {}
    assert "regulated" in answer["reason"]
    assert "access-requests" in answer["hint"]

    undeclared = decision(exchange, "mapco", product=PRODUCT, purpose="advertising")
    assert undeclared["allowed"] is False
    assert "not declared" in undeclared["reason"]


def test_a_product_hidden_from_the_caller_is_not_found(exchange: Exchange) -> None:
    build_product(exchange, "government_only", slug="hotline-complaints")
    hidden = explain(exchange, "mapco", product="hotline-complaints", purpose="research")
    assert is_problem(hidden, 404, "not_found"), hidden.text
    missing = explain(exchange, "mapco", product="no-such-product", purpose="research")
    assert is_problem(missing, 404, "not_found"), missing.text
    assert hidden.json()["detail"].replace("hotline-complaints", "X") == missing.json()[
        "detail"
    ].replace("no-such-product", "X")
    police = decision(exchange, "police", product="hotline-complaints", purpose="research")
    assert (police["allowed"], police["view"]) == (True, "raw")


def test_only_a_steward_asks_on_behalf_of_another(exchange: Exchange) -> None:
    build_product(exchange, "open")
    on_behalf = {"organization": "lingnan-maps", "roles": ["subscriber"]}

    refused = explain(exchange, "lab", product=PRODUCT, purpose="research", subject=on_behalf)
    assert is_problem(refused, 403, "access_denied"), refused.text
    (entry,) = audit(exchange, action="policy.manage", actor=client_id(exchange, "lab"))
    assert entry["decision"] == "deny"

    theirs = decision(exchange, "steward", product=PRODUCT, purpose="research", subject=on_behalf)
    own = decision(exchange, "mapco", product=PRODUCT, purpose="research")
    assert theirs == own
    police = decision(
        exchange,
        "steward",
        product=PRODUCT,
        purpose="law_enforcement",
        subject={"organization": "gz-traffic-police", "roles": ["subscriber"]},
    )
    assert (police["allowed"], police["view"]) == (True, "raw")
    # The steward itself reads no data.
    assert decision(exchange, "steward", product=PRODUCT, purpose="research")["allowed"] is False

    unknown = explain(
        exchange,
        "steward",
        product=PRODUCT,
        purpose="research",
        subject={"organization": "no-such-org", "roles": ["subscriber"]},
    )
    assert is_problem(unknown, 404, "not_found"), unknown.text


def test_asking_about_a_part_of_the_exchange(exchange: Exchange) -> None:
    answer = decision(exchange, "auditor", system="audit")
    assert answer["allowed"] is True
    assert answer["view"] == "-"
    assert answer["rule"] == ["role:auditor", "system:audit", "read", "*", "-", "allow"]
    assert decision(exchange, "mapco", system="audit")["allowed"] is False
    steward = decision(exchange, "steward", system="policy", action="manage")
    assert steward["allowed"] is True

    unknown = explain(exchange, "auditor", system="mainframe")
    assert is_problem(unknown, 404, "not_found"), unknown.text
    both = explain(exchange, "auditor", system="audit", product=PRODUCT)
    assert is_problem(both, 400, "bad_request"), both.text
    neither = explain(exchange, "auditor")
    assert is_problem(neither, 400, "bad_request"), neither.text


# --- bugs found ---------------------------------------------------------------------------------


def test_replaying_the_policy_in_force_flips_nothing(exchange: Exchange) -> None:
    build_product(exchange, "open")
    incomplete = capture(9)
    del incomplete["plate"]
    refused = exchange.publish("fleet", PRODUCT, [capture(8), incomplete])
    assert is_problem(refused, 422, "validation_failed"), refused.text
    (entry,) = audit(exchange, action="publish", decision="deny")
    assert entry["policy_version"] == "v1"  # the policy allowed it; the records did not fit
    assert read(exchange, "mapco", "research").status_code == 200

    lines = policy(exchange)["lines"]
    response = exchange.post(
        "steward", "/v1/policies/dry-run", json={"lines": lines, "matrix": False, "replay": {}}
    )

    assert response.status_code == 200, response.text
    replay = response.json()["replay"]
    assert replay["groups"] == []
    assert replay["flipped"] == 0


def test_a_missing_product_is_blamed_on_the_product_whatever_its_name(
    exchange: Exchange,
) -> None:
    response = add_test(exchange, MAP_CASE | {"product": "social-organisations"})
    assert is_problem(response, 422, "validation_failed"), response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "product"
