"""The `exchange` command: run the server, migrate, administer, and set up the demo;
and the connectors' commands for participants.

The server's modules are imported inside the commands that use them, so that the
connectors' commands (publish, pull, receive, ...) start without loading the
database layer, the web app and the policy engine they never use."""

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from connectors import follower, publisher, receiver, simulator, subscribing
from connectors.product_commands import infer_command, register_command
from exchange.identity.kinds import OrgKind, Role

if TYPE_CHECKING:
    from sqlmodel import Session

    from audit import Verifier
    from exchange.auditing.trail import Origin
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
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(help="Encryption at rest: master and data keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
retention_app = typer.Typer(help="Removing records past their retention.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
product_app = typer.Typer(
    help="Data products: infer and register a definition (publishers, over the API); "
    "erase one (the operator, on the database).",
    no_args_is_help=True,
)
app.add_typer(product_app, name="product")

# The connectors: commands for participants, talking to an exchange over its API.
app.command("publish")(publisher.publish)
app.command("receive")(receiver.receive)
app.command("subscribe")(subscribing.subscribe)
app.command("pull")(follower.pull)
app.command("simulate")(simulator.simulate)
product_app.command("infer")(infer_command)
product_app.command("register")(register_command)


def _origin() -> "Origin":
    from exchange.auditing.trail import Origin

    return Origin(request_id=None, client_address="cli")


def _settings() -> "Settings":
    from exchange.settings import Settings

    return Settings()


def _session(settings: "Settings") -> "Session":
    from sqlmodel import Session

    from exchange.db import make_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Session(make_engine(settings.resolved_database_url), expire_on_commit=False)


def _upgrade(settings: "Settings") -> dict[str, int]:
    """Migrate the schema, then seal any records stored before encryption at rest."""
    from exchange.keyring.master import MasterKeys
    from exchange.keyring.service import Keyring
    from exchange.migrate import upgrade
    from exchange.records.resealing import seal_unsealed

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    with _session(settings) as session:
        keyring = Keyring(MasterKeys(settings.resolved_master_key_dir))
        sealed = seal_unsealed(session, keyring, _origin())
        session.commit()
    return sealed


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    sealed = _upgrade(_settings())
    for product, count in sealed.items():
        typer.echo(f"{product}: {count} records stored before encryption at rest are now sealed")
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: EXCHANGE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: EXCHANGE_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the HTTP API (migrating the schema first)."""
    import uvicorn

    from exchange.main import create_app

    settings = _settings()
    _upgrade(settings)
    if workers > 1:
        # Each worker creates missing keys on start; create them once here, so that
        # workers starting together cannot race to write the same key file.
        create_app(settings)
    uvicorn.run(
        "exchange.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@app.command()
def worker(
    threads: Annotated[
        int | None, typer.Option(min=1, max=64, help="Default: EXCHANGE_DELIVERY_WORKERS or 2")
    ] = None,
) -> None:
    """Deliver webhooks, without serving HTTP: for more delivery capacity than the
    servers' own workers. On PostgreSQL run as many as you like, on any machine;
    on SQLite, one."""
    from exchange.feeds.delivery import Deliverer
    from exchange.feeds.doorbell import Listener
    from exchange.main import create_app

    settings = _settings()
    _upgrade(settings)
    app = create_app(settings)
    state = app.state
    deliverer = Deliverer(
        state, state.engine, settings, state.doorbell, threads or settings.delivery_workers or 2
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    listener = Listener(state.engine, state.doorbell)
    state.policy.start()
    listener.start()
    deliverer.start()
    typer.echo(f"delivering as {deliverer.name}", err=True)
    stopping.wait()
    deliverer.stop()
    listener.stop()
    state.policy.stop()
    state.engine.dispose()


@org_app.command("create")
def org_create(
    slug: Annotated[str, typer.Option(help="Short stable name, e.g. gz-traffic-police")],
    name: Annotated[str, typer.Option(help="Display name")],
    kind: Annotated[OrgKind, typer.Option(help="government, enterprise or research")],
) -> None:
    """Register an organisation (audited, as from the command line)."""
    from exchange.auditing.trail import record
    from exchange.identity import service as identity
    from exchange.identity.models import OrganizationCreate

    with _session(_settings()) as session:
        created = identity.create_organization(
            session, OrganizationCreate(slug=slug, name=name, kind=kind)
        )
        record(
            session,
            _origin(),
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
    from exchange.auditing.trail import record
    from exchange.identity import service as identity
    from exchange.identity.models import PrincipalCreate

    with _session(_settings()) as session:
        created = identity.create_principal(session, org, PrincipalCreate(name=name, roles=role))
        record(
            session,
            _origin(),
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
    from exchange.auditing.checkpoints import Signer
    from exchange.demo.seed import seed
    from exchange.keyring.master import MasterKeys
    from exchange.keyring.service import Keyring
    from exchange.policy.store import load_engine

    settings = _settings()
    _upgrade(settings)
    with _session(settings) as session:
        keyring = Keyring(MasterKeys(settings.resolved_master_key_dir))
        url = f"http://{settings.host}:{settings.port}"
        outcome = seed(session, settings.data_dir, load_engine(session), keyring, url)
        outcome["checkpoint_size"] = Signer.from_settings(settings).checkpoint(session).size
        session.commit()
    typer.echo(json.dumps(outcome, indent=2))


def _verifier(public_key: str | None, settings: "Settings") -> "Verifier":
    """The key text, a file holding it, or (for the database) this exchange's own key."""
    from audit import Verifier
    from exchange.auditing.checkpoints import Signer

    if public_key is None:
        return Verifier.parse(Signer.from_settings(settings).verifier_key)
    text = Path(public_key).read_text() if Path(public_key).is_file() else public_key
    return Verifier.parse(text)


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None, typer.Argument(help="An NDJSON export to verify offline")
    ] = None,
    public_key: Annotated[
        str | None, typer.Option(help="Verifier key text or file (GET /v1/audit/public-key)")
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="Verify the whole stored log in this database")
    ] = None,
) -> None:
    """Verify an export against its signed checkpoint, or a whole stored log
    against its hashes, Merkle nodes and checkpoints. Names the first bad entry;
    exits 1 if anything was altered, removed, reordered or inserted."""
    from sqlmodel import Session

    from audit import CheckpointError
    from audit import store as log
    from audit.export import ExportProblem, verify_export
    from audit.integrity import verify_stored
    from exchange.db import make_engine

    settings = _settings()
    if (export is None) == (database is None):
        raise typer.BadParameter("give an EXPORT file or --database URL (one of them)")
    try:
        verifier = _verifier(public_key, settings)
    except (CheckpointError, OSError) as error:
        raise typer.BadParameter(f"public key: {error}") from None
    if export is not None:
        if public_key is None:
            raise typer.BadParameter("an export is verified with --public-key")
        with export.open(encoding="utf-8") as lines:
            outcome = verify_export(lines, verifier)
        if isinstance(outcome, ExportProblem):
            typer.echo(f"FAILED at {outcome}", err=True)
            raise typer.Exit(1)
        size = outcome.checkpoint.size
        typer.echo(f"OK: {outcome.entries} entries verified against the checkpoint of size {size}")
        return
    assert database is not None
    engine = make_engine(database)
    with Session(engine) as session:
        broken = verify_stored(session, verifier)
        size = log.head(session).size
    engine.dispose()
    if broken:
        typer.echo(f"FAILED at entry {broken.index}: {broken.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {size} entries, their Merkle tree and every checkpoint verified")


@keys_app.command("rotate")
def keys_rotate(
    keep_old: Annotated[
        bool,
        typer.Option(
            help="Keep the old master key files, so that database backups taken before "
            "now can still be opened (delete them later by rotating without this)."
        ),
    ] = False,
) -> None:
    """Make a new master key and re-wrap every product's data key under it (records
    are not re-encrypted); then delete the master keys nothing is wrapped under —
    after which backups of the database taken before the rotation cannot be opened."""
    from exchange.auditing.trail import record
    from exchange.keyring.master import MasterKeys
    from exchange.keyring.service import retire, rotate

    settings = _settings()
    masters = MasterKeys(settings.resolved_master_key_dir)
    with _session(settings) as session:
        rotated = rotate(session, masters)
        record(
            session,
            _origin(),
            None,
            action="keys.rotate",
            allowed=True,
            reason="command line",
            details={
                "from": rotated.previous,
                "to": rotated.current,
                "rewrapped": rotated.rewrapped,
            },
        )
        session.commit()
        retired = [] if keep_old else retire(session, masters)
    outcome = {"current": rotated.current, "rewrapped": rotated.rewrapped, "retired": retired}
    typer.echo(json.dumps(outcome))


@retention_app.command("run")
def retention_run() -> None:
    """Delete every product's records older than its retention (and their images),
    with an audit entry per product saying how many."""
    from exchange.retention.service import sweep
    from exchange.timeutil import to_rfc3339, utcnow

    with _session(_settings()) as session:
        removed = sweep(session, _origin(), utcnow())
        session.commit()
    typer.echo(
        json.dumps(
            [
                {
                    "product": r.product,
                    "records": r.records,
                    "images": r.images,
                    "before": to_rfc3339(r.cutoff) if r.cutoff else None,
                }
                for r in removed
            ]
        )
    )


@product_app.command("erase")
def product_erase(
    slug: Annotated[str, typer.Argument(help="The product's slug")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit entry)")],
) -> None:
    """Erase a product for good by crypto-shredding: destroy its data key and rotate
    the master key that wrapped it (so no copy of its sealed fields and images, in
    any backup, can be read again), then delete its records and images. The
    catalog entry and the audit history stay."""
    if not reason.strip():
        raise typer.BadParameter("say why the product is erased", param_hint="--reason")
    from exchange.errors import Gone, NotFound
    from exchange.keyring.master import MasterKeys
    from exchange.keyring.service import retire
    from exchange.retention.service import erase

    settings = _settings()
    masters = MasterKeys(settings.resolved_master_key_dir)
    with _session(settings) as session:
        try:
            removed = erase(session, _origin(), None, slug, reason.strip(), masters)
        except (NotFound, Gone) as error:
            typer.echo(error.detail, err=True)
            raise typer.Exit(1) from None
        session.commit()
        retire(session, masters)
    typer.echo(json.dumps({"product": slug, "records": removed.records, "images": removed.images}))
