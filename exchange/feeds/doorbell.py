"""Wakes the waiting: delivery workers and long polls in this process, when a
publish that queued events commits. Waiters also wake on their own timeout, which
is how work queued by another process (a second server) is found."""

import threading

from sqlalchemy import event
from sqlalchemy.orm import Session

from exchange.feeds.outbox import ENQUEUED


class Doorbell:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._rings = 0

    def ring(self) -> None:
        with self._condition:
            self._rings += 1
            self._condition.notify_all()

    def wait(self, timeout: float) -> None:
        """Until the next ring or `timeout` seconds."""
        with self._condition:
            seen = self._rings
            self._condition.wait_for(lambda: self._rings != seen, timeout)

    def ring_after_commit(self, session: Session, *, queued: bool = False) -> None:
        """Ring once this session's transaction commits, if it queued events (or
        made others due: `queued`)."""
        if session.info.pop(ENQUEUED, False) or queued:
            event.listen(session, "after_commit", lambda _session: self.ring(), once=True)
