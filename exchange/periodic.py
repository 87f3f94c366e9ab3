"""Work the server does on its own, at a fixed interval, in a daemon thread."""

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Periodic:
    """Runs `work` every `interval` seconds until stopped. Several workers may each
    run it: the work must be safe to repeat. A failed run is logged and the next
    tick tries again."""

    def __init__(self, name: str, interval: float, work: Callable[[], None]) -> None:
        self._name, self._interval, self._work = name, interval, work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._work()
            except Exception:  # keep going; the next tick retries
                logger.exception("periodic %s failed", self._name)
