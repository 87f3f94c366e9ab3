"""Who reads what, through HTTP: the policy's matrix on real products, every data
route denying what the policy denies (and logging it), and no /v1 route open."""

import re
from typing import Any

import fastapi.routing
import pytest
from fastapi.routing import APIRoute

from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.pseudonyms import pseudonym_for

PROBLEM_JSON = "application/problem+json"
TIERS = ("government_only", "open", "regulated")
SLUG = {"government_only": "gov-captures", "open": "open-captures", "regulated": "reg-captures"}
OWNER = {"government_only": "hotline", "open": "fleet", "regulated": "fleet"}
# Each product's own plates, so a plate in a response says which product leaked.
PLATE_REGION = {"government_only": "粤B·7", "open": "粤A·1", "regulated": "粤C·8"}
COUNT = 3


def records_of(tier: str) -> list[dict[str, Any]]:
    return [
        capture(n, plate=f"{PLATE_REGION[tier]}{n:04d}", driver_note=f"{tier} note {n}")
        for n in range(1, COUNT + 1)
    ]


def build_world(exchange: Exchange) -> None:
    """The fleet's open and regulated products, the hotline's government_only one."""
    for tier in TIERS:
        exchange.register(OWNER[tier], captures_product(slug=SLUG[tier], tier=tier))
        published = exchange.publish(OWNER[tier], SLUG[tier], records_of(tier))
        assert published.status_code == 200, published.text
        assert published.json()["accepted"] == COUNT


def is_problem(response: Any, status: int, code: str) -> bool:
    if response.status_code != status:
        return False
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return False
    body = response.json()
    return body["status"] == status and body["type"] == f"urn:exchange:problem:{code}"


# --- the read matrix ---------------------------------------------------------------------------

R, P, X = "raw", "protected", None
PURPOSES = ("law_enforcement", "navigation_safety", "research", "commercial")
# (tier, party) -> the view for each purpose, or None for 403.
MATRIX: dict[tuple[str, str], tuple[str | None, ...]] = {
    # tier              party        LE NS RE commercial
    ("government_only", "police"): (R, R, R, X),
    ("government_only", "mapco"): (X, X, X, X),
    ("government_only", "lab"): (X, X, X, X),
    ("open", "police"): (R, X, P, X),
    ("open", "mapco"): (X, P, P, X),
    ("open", "lab"): (X, P, P, X),
    ("regulated", "police"): (R, X, X, X),
    ("regulated", "mapco"): (X, X, X, X),
    ("regulated", "lab"): (X, X, X, X),
}


def _shape_problems(
    exchange: Exchange, tier: str, party: str, view: str, body: dict[str, Any]
) -> list[str]:
    """What is wrong with an allowed page's records for its view: raw as published, or
    protected (the reader's own pseudonym for the plate, an H3 cell, the photo redacted,
    the driver's note withheld)."""
    published = {r["id"]: r for r in records_of(tier)}
    records = body["records"]
    organization = exchange.parties[party].organization
    problems = []
    label = "raw" if view == "raw" else "deidentified"
    if body["label"] != label:
        problems.append(f"label {body['label']}, want {label}")
    if sorted(r["id"] for r in records) != sorted(published):
        problems.append(f"records {[r['id'] for r in records]}")
    for shown in records:
        original = published.get(shown["id"], {})
        if view == "raw":
            if shown.get("plate") != original.get("plate") or "photo" not in shown:
                problems.append(f"raw record not as published: {shown}")
        elif (
            shown.get("plate")
            != pseudonym_for(
                exchange.settings,
                organization,
                SLUG[tier],
                original.get("plate"),
                body["pseudonyms_until"],
            )
            or shown.get("photo") != {"ref": original.get("photo"), "redacted": True}
            or "driver_note" in shown
            or not shown.get("location", {}).get("cell", "").startswith("h3:")
        ):
            problems.append(f"protected record not protected: {shown}")
    return problems


@pytest.mark.parametrize("tier", TIERS)
def test_read_matrix(exchange: Exchange, tier: str) -> None:
    build_world(exchange)
    path = f"/v1/products/{SLUG[tier]}/records"
    mismatches = []
    for (row_tier, party), views in MATRIX.items():
        if row_tier != tier:
            continue
        for purpose, view in zip(PURPOSES, views, strict=True):
            response = exchange.get(party, path, params={"purpose": purpose})
            cell = f"{tier} {party} {purpose}"
            if view is None:
                if not is_problem(response, 403, "access_denied"):
                    mismatches.append(f"{cell}: want 403, got {response.status_code}")
                continue
            if response.status_code != 200:
                mismatches.append(f"{cell}: want 200 {view}, got {response.status_code}")
                continue
            body = response.json()
            if body["view"] != view or body["purpose"] != purpose:
                mismatches.append(f"{cell}: want view {view}, got {body['view']}")
            problems = _shape_problems(exchange, tier, party, view, body)
            mismatches += [f"{cell}: {problem}" for problem in problems]
    assert mismatches == []


@pytest.mark.parametrize(
    ("tier", "party", "purpose", "reason", "hint"),
    [
        ("regulated", "mapco", "navigation_safety", "regulated", "request access"),
        ("regulated", "lab", "research", "regulated", "request access"),
        ("open", "mapco", "commercial", "not declared", "declared purposes"),
        ("government_only", "police", "commercial", "not declared", "declared purposes"),
        ("open", "lab", "law_enforcement", "denied by rule", None),
        ("government_only", "mapco", "research", "denied by rule", None),
    ],
)
def test_a_denial_says_why_and_what_to_do(
    exchange: Exchange, tier: str, party: str, purpose: str, reason: str, hint: str | None
) -> None:
    build_world(exchange)
    response = exchange.get(
        party, f"/v1/products/{SLUG[tier]}/records", params={"purpose": purpose}
    )
    assert is_problem(response, 403, "access_denied"), response.text
    body = response.json()
    assert reason in body["detail"]
    assert re.fullmatch(r"v[0-9]+", body["policy_version"])
    if hint is None:
        assert body.get("hint") is None
    else:
        assert hint in body["hint"]


# --- every data route denies what the policy denies --------------------------------------------

DATA_ROUTES = ["/v1/products/{slug}/records", "/v1/products/{slug}/records/cap-000001"]


def _content_values(tier: str) -> list[str]:
    return [
        value
        for record in records_of(tier)
        for value in (record["plate"], record["driver_note"], record["photo"])
    ]


@pytest.mark.parametrize("party", ["mapco", "lab"])
@pytest.mark.parametrize("route", DATA_ROUTES)
def test_every_data_route_denies_what_the_policy_denies(
    exchange: Exchange, route: str, party: str
) -> None:
    build_world(exchange)
    path = route.format(slug=SLUG["government_only"])
    params = {"purpose": "navigation_safety"}

    # The route does return content to a reader the policy allows ...
    allowed = exchange.get("police", path, params=params)
    assert allowed.status_code == 200, allowed.text
    assert "粤B·70001" in allowed.text

    # ... and none to one it denies.
    denied = exchange.get(party, path, params=params)
    assert is_problem(denied, 403, "access_denied"), denied.text
    leaked = [value for value in _content_values("government_only") if value in denied.text]
    assert leaked == []
    assert "record" not in denied.json()
    assert "records" not in denied.json()

    request_id = denied.headers["X-Request-ID"]
    assert request_id
    entries = exchange.get(
        "auditor",
        "/v1/audit/entries",
        params={"product": SLUG["government_only"], "decision": "deny", "action": "read"},
    )
    assert entries.status_code == 200, entries.text
    matching = [
        e["entry"] for e in entries.json()["entries"] if e["entry"]["request_id"] == request_id
    ]
    assert len(matching) == 1, entries.json()
    entry = matching[0]
    assert entry["organization"] == exchange.parties[party].organization
    assert entry["actor"] == exchange.parties[party].client_id
    assert entry["purpose"] == "navigation_safety"
    assert entry["record_count"] == 0
    assert entry["view"] is None


@pytest.mark.parametrize("params", [{}, {"purpose": ""}], ids=["absent", "empty"])
@pytest.mark.parametrize("route", DATA_ROUTES)
def test_a_read_without_purpose_is_refused(
    exchange: Exchange, route: str, params: dict[str, str]
) -> None:
    build_world(exchange)
    response = exchange.get("police", route.format(slug=SLUG["open"]), params=params)
    assert is_problem(response, 400, "purpose_required"), response.text
    assert "粤A·10001" not in response.text


@pytest.mark.parametrize(
    ("who", "tier"),
    [
        ("hotline", "open"),  # a publisher, but of another organisation
        ("hotline", "regulated"),
        ("fleet", "government_only"),
        ("mapco", "open"),  # not a publisher at all
        ("police", "government_only"),
    ],
)
@pytest.mark.parametrize("method", ["POST records", "PATCH product"])
def test_only_the_owner_may_publish_or_change(
    exchange: Exchange, who: str, tier: str, method: str
) -> None:
    build_world(exchange)
    slug = SLUG[tier]
    if method == "POST records":
        response = exchange.publish(who, slug, [capture(99)])
    else:
        response = exchange.patch(who, f"/v1/products/{slug}", json={"title": "Taken over"})
    assert is_problem(response, 403, "access_denied"), response.text

    unchanged = exchange.get(OWNER[tier], f"/v1/products/{slug}")
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["version"] == 1
    assert unchanged.json()["title"] == "Violation captures"
    assert unchanged.json()["record_count"] == COUNT


@pytest.mark.parametrize(
    ("who", "method", "path", "params"),
    [
        ("police", "GET", "/v1/products/no-such/records", {"purpose": "law_enforcement"}),
        ("police", "GET", "/v1/products/no-such/records/cap-000001", {"purpose": "research"}),
        ("police", "GET", "/v1/products/no-such", {}),
        ("fleet", "POST", "/v1/products/no-such/records", {}),
        ("fleet", "PATCH", "/v1/products/no-such", {}),
    ],
)
def test_an_unknown_product_is_not_found(
    exchange: Exchange, who: str, method: str, path: str, params: dict[str, str]
) -> None:
    build_world(exchange)
    body = [capture(1)] if method == "POST" else {"title": "x"}
    kwargs: dict[str, Any] = {"params": params}
    if method != "GET":
        kwargs["json"] = body
    response = exchange.client.request(method, path, headers=exchange.headers(who), **kwargs)
    assert is_problem(response, 404, "not_found"), response.text


# --- no /v1 route is open ----------------------------------------------------------------------

# Open by design (API.md): the checkpoint verifier key, so anyone can check a checkpoint.
PUBLIC = {("GET", "/v1/audit/public-key")}


def v1_operations(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every path operation under /v1/. Since FastAPI 0.137,
    `app.routes` holds included routers as nodes; `iter_route_contexts` (0.137.2+)
    flattens them into one context per route (older versions are flat already)."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    operations = []
    for route in flatten(app.routes):
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute) and route.path.startswith("/v1/"):
            operations.append((sorted(route.methods)[0], route.path))
    return operations


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
    ids=["no-token", "bad-token", "basic"],
)
def test_every_v1_route_needs_a_token(exchange: Exchange, headers: dict[str, str]) -> None:
    build_world(exchange)
    operations = v1_operations(exchange.client.app)
    paths = {path for _, path in operations}
    assert {
        "/v1/products",
        "/v1/products/{product}",
        "/v1/products/{product}/records",
        "/v1/products/{product}/records/{record_id}",
        "/v1/audit/entries",
        "/v1/audit/export",
        "/v1/audit/checkpoint",
        "/v1/audit/proofs/inclusion",
        "/v1/audit/proofs/consistency",
        "/v1/organizations",
        "/v1/organizations/{org}/principals",
    } <= paths
    assert set(operations) >= PUBLIC
    open_routes = []
    for method, template in operations:
        if (method, template) in PUBLIC:
            continue
        path = re.sub(r"\{[^}/]+\}", "x", template)
        response = exchange.client.request(method, path, headers=headers)
        if not is_problem(response, 401, "unauthorized"):
            open_routes.append(f"{method} {template}: {response.status_code}")
        elif response.headers.get("www-authenticate") != "Bearer":
            open_routes.append(f"{method} {template}: no WWW-Authenticate: Bearer")
    assert open_routes == []


# --- the catalog hides what the caller may not discover ----------------------------------------


@pytest.mark.parametrize(
    ("party", "sees_government_only"),
    [("police", True), ("hotline", True), ("mapco", False), ("lab", False), ("fleet", False)],
)
def test_catalog_visibility(exchange: Exchange, party: str, sees_government_only: bool) -> None:
    build_world(exchange)
    listed = exchange.get(party, "/v1/products")
    assert listed.status_code == 200, listed.text
    slugs = {p["slug"] for p in listed.json()["products"]}
    expected = {SLUG["open"], SLUG["regulated"]}
    if sees_government_only:
        expected.add(SLUG["government_only"])
    assert slugs == expected

    only = exchange.get(party, "/v1/products", params={"tier": "government_only"})
    assert only.status_code == 200, only.text
    assert [p["slug"] for p in only.json()["products"]] == (
        [SLUG["government_only"]] if sees_government_only else []
    )

    slug = SLUG["government_only"]
    details = exchange.get(party, f"/v1/products/{slug}")
    if sees_government_only:
        assert details.status_code == 200, details.text
        assert details.json()["tier"] == "government_only"
    else:
        # Indistinguishable from a product that does not exist.
        missing = exchange.get(party, "/v1/products/no-such-product")
        assert is_problem(details, 404, "not_found"), details.text
        assert details.json()["detail"] == f"no product {slug!r}"
        assert is_problem(missing, 404, "not_found")
        assert "粤B·7" not in details.text


@pytest.mark.parametrize("version", [1, 2, 99])
@pytest.mark.parametrize("party", ["mapco", "lab"])
def test_a_hidden_product_is_not_found_at_any_version(
    exchange: Exchange, party: str, version: int
) -> None:
    """Open at version 1, government_only from version 2: whatever version an
    enterprise or a researcher asks for, it learns what a missing product would say."""
    build_world(exchange)
    slug = SLUG["open"]
    changed = exchange.patch("fleet", f"/v1/products/{slug}", json={"tier": "government_only"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    police = exchange.get("police", f"/v1/products/{slug}", params={"version": 1})
    assert police.status_code == 200, police.text

    response = exchange.get(party, f"/v1/products/{slug}", params={"version": version})
    assert is_problem(response, 404, "not_found"), response.text
    assert response.json()["detail"] == f"no product {slug!r}"
