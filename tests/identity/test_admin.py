"""Organisations and principals: created by admins over HTTP or with the CLI, nobody else."""

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from exchange.settings import Settings
from tests.conftest import DAY, Exchange, Party, run_cli
from tests.products import captures_product

PROBLEM_JSON = "application/problem+json"
OPERATOR = "exchange-operator"


@pytest.fixture
def admin_only(client: TestClient, settings: Settings) -> Exchange:
    """A lean exchange for the input matrices: the operator's admin and one other party."""
    run_cli(settings, "org", "create", "--slug", OPERATOR, "--name", "Op", "--kind", "government")
    admin = json.loads(
        run_cli(settings, "principal", "create", "--org", OPERATOR, "--name", "op", "--role=admin")
    )
    world = Exchange(client, settings)
    world.parties["admin"] = Party(
        "admin", admin["client_id"], admin["client_secret"], OPERATOR, "government", ["admin"]
    )
    world.add_party("mapco", "lingnan-maps", "enterprise", ["subscriber"])
    return world


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    return body


def test_admin_creates_an_organization_and_a_principal_whose_secret_is_shown_once(
    exchange: Exchange,
) -> None:
    created = exchange.post(
        "admin",
        "/v1/organizations",
        json={"slug": "huangpu-port", "name": "Huangpu Port", "kind": "enterprise"},
    )
    assert created.status_code == 201, created.text
    assert created.json() | {"created_at": None} == {
        "slug": "huangpu-port",
        "name": "Huangpu Port",
        "kind": "enterprise",
        "created_at": None,
    }

    made = exchange.post(
        "admin",
        "/v1/organizations/huangpu-port/principals",
        json={"name": "berth planner", "roles": ["subscriber", "publisher", "subscriber"]},
    )
    assert made.status_code == 201, made.text
    principal = made.json()
    assert principal["client_id"].startswith("cl_")
    assert principal["client_secret"].startswith("cs_")
    assert principal["organization"] == "huangpu-port"
    assert principal["roles"] == ["publisher", "subscriber"]
    assert principal["active"] is True

    listed = exchange.get("admin", "/v1/organizations/huangpu-port/principals")
    assert listed.status_code == 200, listed.text
    (shown,) = listed.json()["principals"]
    assert shown["client_id"] == principal["client_id"]
    assert shown["name"] == "berth planner"
    assert shown["roles"] == ["publisher", "subscriber"]
    assert not [name for name in shown if "secret" in name or "hash" in name]
    assert principal["client_secret"] not in listed.text

    token = exchange.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": principal["client_id"],
            "client_secret": principal["client_secret"],
        },
    )
    assert token.status_code == 200, token.text


def test_the_secret_is_stored_only_as_an_scrypt_hash(exchange: Exchange) -> None:
    police = exchange.parties["police"]
    engine = create_engine(exchange.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT secret_hash FROM principal WHERE client_id = :client_id"),
                {"client_id": police.client_id},
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("scrypt$")
    assert police.client_secret not in stored
    assert police.client_secret.removeprefix("cs_") not in stored
    scheme, n, _r, _p, salt, digest = stored.split("$")
    assert scheme == "scrypt"
    assert int(n) >= 2**14
    assert len(base64.b64decode(salt)) >= 16
    assert len(base64.b64decode(digest)) == 32


ROUTES = [
    ("post", "/v1/organizations", {"slug": "rogue-org", "name": "Rogue", "kind": "enterprise"}),
    ("get", "/v1/organizations", None),
    ("post", "/v1/organizations/pearl-robotaxi/principals", {"name": "x", "roles": ["admin"]}),
    ("get", "/v1/organizations/pearl-robotaxi/principals", None),
]


@pytest.mark.parametrize("who", ["fleet", "police", "steward", "auditor"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_non_admins_are_refused_and_the_refusal_is_audited(
    exchange: Exchange, who: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    kwargs = {"json": body} if body is not None else {}
    response = getattr(exchange, method)(who, path, **kwargs)
    problem = assert_problem(response, 403)
    assert problem["type"] == "urn:exchange:problem:access_denied"

    log = exchange.get(
        "auditor", "/v1/audit/entries", params={"action": "identity.manage", "decision": "deny"}
    )
    assert log.status_code == 200, log.text
    entries = [e["entry"] for e in log.json()["entries"]]
    party = exchange.parties[who]
    assert [(e["actor"], e["organization"], e["decision"]) for e in entries] == [
        (party.client_id, party.organization, "deny")
    ]

    organizations = exchange.get("admin", "/v1/organizations").json()["organizations"]
    assert "rogue-org" not in [o["slug"] for o in organizations]
    principals = exchange.get("admin", "/v1/organizations/pearl-robotaxi/principals").json()
    assert [p["client_id"] for p in principals["principals"]] == [
        exchange.parties["fleet"].client_id
    ]


def test_a_duplicate_slug_is_a_conflict(exchange: Exchange) -> None:
    again = {"slug": "gz-traffic-police", "name": "Another police", "kind": "government"}
    problem = assert_problem(exchange.post("admin", "/v1/organizations", json=again), 409)
    assert problem["type"] == "urn:exchange:problem:conflict"
    organizations = exchange.get("admin", "/v1/organizations").json()["organizations"]
    police = [o for o in organizations if o["slug"] == "gz-traffic-police"]
    assert [o["name"] for o in police] == ["Gz-Traffic-Police"]


ORG = {"slug": "new-org", "name": "New org", "kind": "research"}
PRINCIPAL = {"name": "analyst", "roles": ["subscriber"]}
MAPCO_PRINCIPALS = "/v1/organizations/lingnan-maps/principals"

BAD_INPUT = {
    "uppercase slug": ("/v1/organizations", ORG | {"slug": "New-Org"}, "slug"),
    "slug with spaces": ("/v1/organizations", ORG | {"slug": "new org"}, "slug"),
    "slug with a leading hyphen": ("/v1/organizations", ORG | {"slug": "-new-org"}, "slug"),
    "slug too long": ("/v1/organizations", ORG | {"slug": "a" * 65}, "slug"),
    "empty name": ("/v1/organizations", ORG | {"name": ""}, "name"),
    "unknown kind": ("/v1/organizations", ORG | {"kind": "charity"}, "kind"),
    "no kind": ("/v1/organizations", {"slug": "new-org", "name": "New org"}, "kind"),
    "empty roles": (MAPCO_PRINCIPALS, PRINCIPAL | {"roles": []}, "roles"),
    "unknown role": (MAPCO_PRINCIPALS, PRINCIPAL | {"roles": ["subscriber", "superuser"]}, "roles"),
    "roles not a list": (MAPCO_PRINCIPALS, PRINCIPAL | {"roles": "subscriber"}, "roles"),
    "empty principal name": (MAPCO_PRINCIPALS, PRINCIPAL | {"name": ""}, "name"),
}


@pytest.mark.parametrize(("path", "body", "field"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_a_problem_naming_the_field(
    admin_only: Exchange, path: str, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(admin_only.post("admin", path, json=body), 400)
    assert problem["type"] == "urn:exchange:problem:bad_request"
    named = [error.get("field", "").split(".")[0] for error in problem["errors"]]
    assert field in named, problem["errors"]

    organizations = admin_only.get("admin", "/v1/organizations").json()["organizations"]
    assert [o["slug"] for o in organizations] == [OPERATOR, "lingnan-maps"]
    principals = admin_only.get("admin", MAPCO_PRINCIPALS).json()
    assert len(principals["principals"]) == 1


@pytest.mark.parametrize("org", ["no-such-org", "Lingnan-Maps", "a%00b"])
@pytest.mark.parametrize("method", ["post", "get"])
def test_principals_of_an_unknown_organization_are_not_found(
    admin_only: Exchange, org: str, method: str
) -> None:
    kwargs = {"json": PRINCIPAL} if method == "post" else {}
    path = f"/v1/organizations/{org}/principals"
    problem = assert_problem(getattr(admin_only, method)("admin", path, **kwargs), 404)
    assert problem["type"] == "urn:exchange:problem:not_found"


@pytest.mark.parametrize("extra", [0, 3], ids=["8 organizations", "11 organizations"])
def test_organizations_page_by_cursor_without_repeats(exchange: Exchange, extra: int) -> None:
    for n in range(extra):
        body = {"slug": f"extra-{n}", "name": f"Extra {n}", "kind": "research"}
        assert exchange.post("admin", "/v1/organizations", json=body).status_code == 201
    expected = [OPERATOR, *(org for org, _, _ in DAY.values())]
    expected += [f"extra-{n}" for n in range(extra)]

    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(len(expected)):
        page = exchange.get("admin", "/v1/organizations", params=params)
        assert page.status_code == 200, page.text
        pages.append([o["slug"] for o in page.json()["organizations"]])
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert [slug for page in pages for slug in page] == expected
    assert all(1 <= len(page) <= 2 for page in pages), pages  # no cursor to an empty page


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


FORGED_CURSORS = {
    "not base64 json": "not-a-cursor",
    "bad padding": "abc",
    "a list": cursor([1]),
    "no after": cursor({"before": 1}),
    "negative": cursor({"after": -1}),
    "a string": cursor({"after": "3"}),
    "a float": cursor({"after": 1.5}),
    "null": cursor({"after": None}),
    "a boolean": cursor({"after": True}),
    "beyond any id": cursor({"after": 10**30}),
}


@pytest.mark.parametrize("forged", FORGED_CURSORS.values(), ids=FORGED_CURSORS.keys())
def test_a_forged_cursor_is_a_bad_request(admin_only: Exchange, forged: str) -> None:
    response = admin_only.get("admin", "/v1/organizations", params={"cursor": forged, "limit": 2})
    problem = assert_problem(response, 400)
    assert [error["field"] for error in problem["errors"]] == ["cursor"]


def test_cli_creates_an_organization_and_a_principal_with_two_roles(exchange: Exchange) -> None:
    org = json.loads(
        run_cli(
            exchange.settings,
            "org",
            "create",
            "--slug",
            "pazhou-lab",
            "--name",
            "Pazhou Lab",
            "--kind",
            "research",
        )
    )
    assert org == {"slug": "pazhou-lab", "name": "Pazhou Lab", "kind": "research"}

    made = json.loads(
        run_cli(
            exchange.settings,
            "principal",
            "create",
            "--org",
            "pazhou-lab",
            "--name",
            "pipeline",
            "--role",
            "subscriber",
            "--role",
            "publisher",
        )
    )
    assert made["organization"] == "pazhou-lab"
    assert sorted(made["roles"]) == ["publisher", "subscriber"]
    assert made["client_id"].startswith("cl_")

    token = exchange.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": made["client_id"],
            "client_secret": made["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    registered = exchange.client.post("/v1/products", headers=bearer, json=captures_product())
    assert registered.status_code == 201, registered.text

    listed = exchange.get("admin", "/v1/organizations/pazhou-lab/principals").json()
    (principal,) = listed["principals"]
    assert principal["client_id"] == made["client_id"]
    assert principal["roles"] == ["publisher", "subscriber"]
    organizations = exchange.get("admin", "/v1/organizations").json()["organizations"]
    assert {"slug": "pazhou-lab", "kind": "research"}.items() <= organizations[-1].items()

    log = exchange.get(
        "auditor", "/v1/audit/entries", params={"action": "principal.create"}
    ).json()["entries"]
    from_cli = [e["entry"] for e in log if e["entry"]["client"] == "cli"]
    assert made["client_id"] in [e["details"]["client_id"] for e in from_cli]
