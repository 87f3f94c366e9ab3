"""The policy in force in this worker, kept in step with the database.

Every worker process holds a `PolicyEngine` and swaps it whole when the version
in `policy_head` moves (engines are immutable, so a request never sees half a
change). A background thread notices the move: on PostgreSQL it LISTENs on the
channel a change NOTIFYs inside its own transaction (delivered on commit), and
also reads the head at least every poll interval in case a notification was
missed; on SQLite it reads the head every poll interval over a plain read-only
connection, which takes no lock. Catching up applies only the lines that
changed since the worker's version (`store.caught_up`).
"""

import logging
import sqlite3
import threading
from contextlib import closing

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from exchange.policy import store
from policies import PolicyEngine

log = logging.getLogger(__name__)

CHANNEL = "exchange_policy"
_HEAD = "SELECT version FROM policy_head WHERE id = 1"
_RETRY_SECONDS = 2.0


def notify_change(session: Session, version: int) -> None:
    """Tell every PostgreSQL worker, when this transaction commits, that `version` is in force."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :version)"),
            {"channel": CHANNEL, "version": str(version)},
        )


class LivePolicy:
    def __init__(self, engine: Engine, poll_seconds: float) -> None:
        self._engine = engine
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            with Session(engine) as session:
                self._current = store.load_engine(session)
        except SQLAlchemyError as error:
            raise RuntimeError(
                f"cannot load the policy ({type(error).__name__}): run `exchange db upgrade`"
            ) from error

    @property
    def current(self) -> PolicyEngine:
        return self._current

    def adopt(self, engine: PolicyEngine) -> None:
        """Use a version this worker just committed, unless a newer one is already here."""
        with self._lock:
            if _number(engine) > _number(self._current):
                self._current = engine

    def refresh(self) -> PolicyEngine:
        """Catch up with the database now."""
        with self._lock, Session(self._engine) as session:
            self._current = store.caught_up(session, self._current)
            return self._current

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="policy-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                if self._engine.dialect.name == "postgresql":
                    self._listen()
                else:
                    self._poll_sqlite()
            except Exception as error:  # the database may be restarting: keep trying
                log.warning("policy watcher: %s; retrying", type(error).__name__)
                self._stop.wait(_RETRY_SECONDS)

    def _seen(self, version: int | None) -> None:
        if version is not None and version != _number(self._current):
            engine = self.refresh()
            log.info("policy version %s in force", engine.version)

    def _poll_sqlite(self) -> None:
        path = self._engine.url.database
        uri = f"file:{path}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)) as db:
            while not self._stop.wait(self._poll):
                row = db.execute(_HEAD).fetchone()
                self._seen(row[0] if row else None)

    def _listen(self) -> None:
        url = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set():
                row = connection.execute(_HEAD).fetchone()
                self._seen(row[0] if row else None)
                for _ in connection.notifies(timeout=self._poll, stop_after=1):
                    break


def _number(engine: PolicyEngine) -> int:
    return store.number_of(engine.version) or 0
