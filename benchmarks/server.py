"""A real exchange for a benchmark: migrated database, uvicorn on a free loopback
port in a background thread, the parties of the day, and an httpx client."""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from sqlmodel import Session

from exchange.db import make_engine
from exchange.demo.seed import MEMBERS, _ensure_member
from exchange.main import create_app
from exchange.migrate import upgrade
from exchange.settings import Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Running:
    base_url: str
    settings: Settings
    credentials: dict[str, dict[str, str]]

    def token(self, key: str) -> str:
        response = httpx.post(
            f"{self.base_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                **{k: self.credentials[key][k] for k in ("client_id", "client_secret")},
            },
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token(key)}"},
            timeout=120,
        )


@contextmanager
def running_exchange(data_dir: Path, database_url: str | None) -> Iterator[Running]:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    credentials = {}
    with Session(engine) as session:
        for member in MEMBERS:
            credentials[member.key] = _ensure_member(session, member, None)
        session.commit()
    engine.dispose()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield Running(f"http://127.0.0.1:{port}", settings, json.loads(json.dumps(credentials)))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def calls_per_second(call: Callable[[], None], rounds: int) -> float:
    """The better of two runs of `rounds` calls: the machine is shared and noisy."""
    best = 0.0
    for _ in range(2):
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        best = max(best, rounds / (time.perf_counter() - started))
    return best
