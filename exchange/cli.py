"""The `exchange` command: run the server, migrate, administer, and set up the demo."""

import json
from typing import Annotated

import typer
import uvicorn
from sqlmodel import Session

from exchange.auditing.trail import Origin, record
from exchange.db import make_engine
from exchange.identity import service as identity
from exchange.identity.models import OrganizationCreate, OrgKind, PrincipalCreate, Role
from exchange.migrate import upgrade
from exchange.settings import Settings

app = typer.Typer(
    help="The data-sharing exchange.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations (participants).", no_args_is_help=True)
principal_app = typer.Typer(
    help="Principals (people and services) of an organisation.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(principal_app, name="principal")

CLI = Origin(request_id=None, client_address="cli")


def _session(settings: Settings) -> Session:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Session(make_engine(settings.resolved_database_url), expire_on_commit=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: EXCHANGE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: EXCHANGE_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the HTTP API (migrating the schema first)."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    uvicorn.run(
        "exchange.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@org_app.command("create")
def org_create(
    slug: Annotated[str, typer.Option(help="Short stable name, e.g. gz-traffic-police")],
    name: Annotated[str, typer.Option(help="Display name")],
    kind: Annotated[OrgKind, typer.Option(help="government, enterprise or research")],
) -> None:
    """Register an organisation (audited, as from the command line)."""
    with _session(Settings()) as session:
        created = identity.create_organization(
            session, OrganizationCreate(slug=slug, name=name, kind=kind)
        )
        record(
            session,
            CLI,
            None,
            action="organization.create",
            allowed=True,
            reason="command line",
            details={"organization": created.slug, "kind": created.kind},
        )
        session.commit()
    typer.echo(json.dumps({"slug": slug, "name": name, "kind": kind.value}))


@principal_app.command("create")
def principal_create(
    org: Annotated[str, typer.Option(help="The organisation's slug")],
    name: Annotated[str, typer.Option(help="A person or service")],
    role: Annotated[list[Role], typer.Option(help="Repeat for several roles")],
) -> None:
    """Create a principal; prints its client id and secret, which is shown only now."""
    with _session(Settings()) as session:
        created = identity.create_principal(session, org, PrincipalCreate(name=name, roles=role))
        record(
            session,
            CLI,
            None,
            action="principal.create",
            allowed=True,
            reason="command line",
            details={"organization": org, "client_id": created.client_id, "roles": created.roles},
        )
        session.commit()
    typer.echo(
        json.dumps(
            {
                "client_id": created.client_id,
                "client_secret": created.client_secret,
                "organization": org,
                "roles": created.roles,
            }
        )
    )


@app.command()
def demo() -> None:
    """Set up the day on the exchange: organisations, principals, products, records."""
    from exchange.demo.seed import seed
    from policies import PolicyEngine

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    with _session(settings) as session:
        outcome = seed(session, settings.data_dir, PolicyEngine.default())
        session.commit()
    typer.echo(json.dumps(outcome, indent=2))
