"""The engine, the naming convention, and the session each request owns.

One style of access, chosen once: synchronous SQLAlchemy sessions (see
docs/architecture.md). The request's session commits when the endpoint returns —
before the response is sent — and rolls back on any exception, so an action and
its audit entry commit or fail together. Services only `flush()`.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from exchange.errors import ServiceUnavailable

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _sqlite_single_writer(engine: Engine) -> None:
    """SQLite: WAL, foreign keys, and `BEGIN IMMEDIATE` for every transaction.

    Nearly every request writes (each data access appends to the audit log), so
    taking the write lock at the start avoids deadlocked lock upgrades between two
    readers-turned-writers; the busy timeout queues writers instead of failing them.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def sqlite_reader(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the engine's SQLite file: a WAL reader, which
    takes no lock, for looking without queueing behind (or blocking) writers."""
    uri = f"file:{engine.url.database}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)) as reader:
        yield reader


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_single_writer(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        try:
            session.commit()
        except SQLAlchemyError as error:
            session.rollback()
            raise ServiceUnavailable(
                "the change could not be committed; nothing was kept"
            ) from error


# scope="function": the commit runs when the endpoint returns, before the response
# is sent, so no data leaves unless its audit entry is durable.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
