"""Wakes the waiting: delivery workers and long polls in this process, when a
publish that queued events commits — here, or on PostgreSQL in any process (the
publish NOTIFYs `exchange_feeds` at commit and every process LISTENs). Waiters
also wake on their own timeout, which is how SQLite finds work queued by another
process."""

import asyncio
import logging
import threading

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from exchange.feeds.outbox import CHANNEL, ENQUEUED

log = logging.getLogger(__name__)

_RETRY_SECONDS = 2.0


class Doorbell:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._rings = 0
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def ring(self) -> None:
        with self._condition:
            self._rings += 1
            self._condition.notify_all()
            for loop, woken in self._async_waiters:
                loop.call_soon_threadsafe(woken.set)

    async def wait_async(self, timeout: float) -> None:
        """`wait` for the event loop: until the next ring or `timeout`, holding no thread."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._condition:
            self._async_waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._condition:
                self._async_waiters.discard(waiter)

    def wait(self, timeout: float, stopped: threading.Event | None = None) -> None:
        """Until the next ring, `timeout` seconds, or `stopped` is set — checked under
        the lock a ring takes, so a stop that rang just before is not missed."""
        with self._condition:
            seen = self._rings
            self._condition.wait_for(
                lambda: self._rings != seen or (stopped is not None and stopped.is_set()),
                timeout,
            )

    def ring_after_commit(self, session: Session, *, queued: bool = False) -> None:
        """Ring once this session's transaction commits, if it queued events (or
        made others due: `queued`)."""
        if session.info.pop(ENQUEUED, False) or queued:
            event.listen(session, "after_commit", lambda _session: self.ring(), once=True)


class Listener:
    """On PostgreSQL, rings the doorbell on every `exchange_feeds` notification."""

    def __init__(self, engine: Engine, doorbell: Doorbell) -> None:
        self._engine, self._doorbell = engine, doorbell
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeds-listener", daemon=True)

    def start(self) -> None:
        if self._engine.dialect.name == "postgresql":
            self._thread.start()

    def stop(self) -> None:
        """Not waited for: the thread sees it within its next quarter second and ends."""
        self._stop.set()

    def _run(self) -> None:
        url = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=0.25):
                            self._doorbell.ring()
            except Exception as error:  # the database may be restarting: keep trying
                log.warning("feeds listener: %s; retrying", type(error).__name__)
                self._stop.wait(_RETRY_SECONDS)
