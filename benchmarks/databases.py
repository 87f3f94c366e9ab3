"""Fresh, migrated databases for a benchmark, so no run touches an existing one."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from exchange.migrate import upgrade


@contextmanager
def fresh_database(scratch: Path, database_url: str | None, name: str) -> Iterator[str]:
    """A new migrated database: `scratch/NAME.db`, or a PostgreSQL database created
    next to the one `database_url` names, dropped on exit."""
    if not database_url or database_url.startswith("sqlite"):
        path = scratch / f"{name}.db"
        for stale in scratch.glob(f"{name}.db*"):
            stale.unlink()
        url = f"sqlite:///{path}"
        upgrade(url)
        try:
            yield url
        finally:
            for leftover in scratch.glob(f"{name}.db*"):
                leftover.unlink()
        return
    base = make_url(database_url)
    database = f"exchange_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    url = base.set(database=database).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
