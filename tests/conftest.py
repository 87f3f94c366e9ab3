"""One fixture set for SQLite and PostgreSQL: `EXCHANGE_TEST_DATABASE_URL` picks the engine.

Every test gets its own fresh, migrated database: a copy of a template SQLite file,
or a PostgreSQL database cloned from a migrated template (`CREATE DATABASE …
TEMPLATE …`), dropped afterwards. Tests drive the real app over HTTP (httpx via
Starlette's TestClient); the first admin is made with the real CLI, everything
else through the API.
"""

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from exchange.cli import app as cli
from exchange.main import create_app
from exchange.migrate import upgrade
from exchange.settings import Settings

BASE_URL = os.environ.get("EXCHANGE_TEST_DATABASE_URL", "")


class _Postgres:
    """Creates and drops databases next to the one the URL names."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=None)
        self.prefix = f"exchange_t{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tpl"
        self.count = 0

    def _url(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def create_template(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.template}"'))
        upgrade(self._url(self.template))

    def clone(self) -> str:
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return self._url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.drop(self._url(self.template))
        self.admin.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if BASE_URL.startswith("postgresql"):
        postgres = _Postgres(BASE_URL)
        postgres.create_template()
        yield postgres
        postgres.close()
        return
    template = tmp_path_factory.mktemp("template") / "exchange.db"
    upgrade(f"sqlite:///{template}")
    yield template


@pytest.fixture
def database_url(database_template: Any, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database for this test."""
    if isinstance(database_template, _Postgres):
        url = database_template.clone()
        yield url
        database_template.drop(url)
        return
    copy = tmp_path / "exchange.db"
    shutil.copyfile(database_template, copy)
    yield f"sqlite:///{copy}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def run_cli(settings: Settings, *args: str) -> str:
    """Run the real `exchange` CLI against the test's database; its stdout."""
    env = {
        "EXCHANGE_DATABASE_URL": settings.resolved_database_url,
        "EXCHANGE_DATA_DIR": str(settings.data_dir),
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@dataclass
class Party:
    """A principal the test acts as, with its credentials and a cached token."""

    key: str
    client_id: str
    client_secret: str
    organization: str
    kind: str
    roles: list[str]
    token: str | None = field(default=None, repr=False)


class Exchange:
    """The exchange under test, with the parties of the day."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.parties: dict[str, Party] = {}

    def token(self, party: Party) -> str:
        if party.token is None:
            response = self.client.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": party.client_id,
                    "client_secret": party.client_secret,
                },
            )
            assert response.status_code == 200, response.text
            party.token = response.json()["access_token"]
        return party.token

    def headers(self, who: str | Party) -> dict[str, str]:
        party = self.parties[who] if isinstance(who, str) else who
        return {"Authorization": f"Bearer {self.token(party)}"}

    def request(self, method: str, who: str, path: str, **kwargs: Any) -> Any:
        headers = self.headers(who) | kwargs.pop("headers", {})
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.request("GET", who, path, **kwargs)

    def post(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.request("POST", who, path, **kwargs)

    def patch(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", who, path, **kwargs)

    def put(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", who, path, **kwargs)

    def delete(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", who, path, **kwargs)

    def add_party(
        self, key: str, org: str, kind: str, roles: list[str], name: str | None = None
    ) -> Party:
        """Create the organisation (if new) and a principal in it, as the admin, over HTTP."""
        response = self.post(
            "admin", "/v1/organizations", json={"slug": org, "name": org.title(), "kind": kind}
        )
        assert response.status_code in (201, 409), response.text
        response = self.post(
            "admin",
            f"/v1/organizations/{org}/principals",
            json={"name": name or key, "roles": roles},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        party = Party(key, body["client_id"], body["client_secret"], org, kind, roles)
        self.parties[key] = party
        return party

    def register(self, who: str, definition: dict[str, Any]) -> dict[str, Any]:
        response = self.post(who, "/v1/products", json=definition)
        assert response.status_code == 201, response.text
        return response.json()

    def publish(self, who: str, product: str, records: list[dict[str, Any]], **params: Any) -> Any:
        return self.post(who, f"/v1/products/{product}/records", json=records, params=params)


# The parties of the day, as PRODUCT.md names them.
DAY = {
    "fleet": ("pearl-robotaxi", "enterprise", ["publisher"]),
    "hotline": ("gz-12345", "government", ["publisher"]),
    "police": ("gz-traffic-police", "government", ["subscriber"]),
    "mapco": ("lingnan-maps", "enterprise", ["subscriber"]),
    "lab": ("scut-mobility-lab", "research", ["subscriber"]),
    "steward": ("gz-data-bureau", "government", ["steward"]),
    "auditor": ("gz-audit-office", "government", ["auditor"]),
}


def create_admin(settings: Settings) -> dict[str, str]:
    """The first admin, made with the real CLI: `{"client_id", "client_secret", ...}`."""
    run_cli(
        settings,
        "org",
        "create",
        "--slug",
        "exchange-operator",
        "--name",
        "Operator",
        "--kind",
        "government",
    )
    made: dict[str, str] = json.loads(
        run_cli(
            settings,
            "principal",
            "create",
            "--org",
            "exchange-operator",
            "--name",
            "operator",
            "--role",
            "admin",
        )
    )
    return made


@pytest.fixture
def exchange(client: TestClient, settings: Settings) -> Exchange:
    """The exchange with an admin (made by the CLI) and the parties of the day."""
    admin = create_admin(settings)
    world = Exchange(client, settings)
    world.parties["admin"] = Party(
        "admin",
        admin["client_id"],
        admin["client_secret"],
        "exchange-operator",
        "government",
        ["admin"],
    )
    for key, (org, kind, roles) in DAY.items():
        world.add_party(key, org, kind, roles)
    return world
