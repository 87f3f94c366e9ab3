"""Two real worker processes on one database agree on the policy and on grants.

Each worker is its own `uvicorn` subprocess (on its own loopback port) against the
test's database and data directory, so they share the signing keys: a token from
one is good at the other. A policy change made through one worker must be in
force in the other within a second (its watcher polls `policy_head` on SQLite and
hears NOTIFY on PostgreSQL); a grant revocation must stop reads in the other at
once, because grants are looked up on every request. Runs on SQLite by default
and on PostgreSQL when `EXCHANGE_TEST_DATABASE_URL` names one.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from exchange.settings import Settings
from tests.conftest import BASE_URL, create_admin
from tests.products import capture, captures_product

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = "violation-captures"
READS = f"/v1/products/{PRODUCT}/records"
RESEARCH = {"purpose": "research"}
NEW_LINE = "p, org:lingnan-maps, product:violation-captures, read, research, protected, allow"
BOUND_SECONDS = 1.0  # a change through one worker is in force in every other within this
POLL_EVERY = 0.02
STARTUP_SECONDS = 30.0
DATABASE = "postgresql" if BASE_URL.startswith("postgresql") else "sqlite"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Worker:
    """One `uvicorn` process serving the exchange, and an httpx client to it."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]


def _environment(settings: Settings) -> dict[str, str]:
    """The caller's environment without any EXCHANGE_* setting, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_DATABASE_URL"] = settings.resolved_database_url
    env["EXCHANGE_DATA_DIR"] = str(settings.data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start(name: str, settings: Settings, logs: Path, stack: ExitStack) -> Worker:
    """Start a worker and wait until `/readyz` answers 200; fail with its output if it
    exits or never becomes ready. A lost race for the free port is retried."""
    for attempt in range(3):
        port = _free_port()
        log = logs / f"worker-{name}-{attempt}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "exchange.main:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=_environment(settings),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        stack.callback(_stop, process)
        client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        worker = Worker(name, process, log, client)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            with suppress(httpx.TransportError):  # not listening yet
                if client.get("/readyz").status_code == 200:
                    return worker
            time.sleep(0.05)
        _stop(process)
        output = worker.output()
        if "address already in use" in output.lower() and attempt < 2:
            continue
        pytest.fail(
            f"worker {name} (port {port}) did not become ready (exit code "
            f"{process.returncode}); its output:\n{output}"
        )
    raise AssertionError("unreachable")


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    """Two worker processes on the test's database and data directory, always stopped.

    B starts after A is ready: the first worker creates the keys under the data
    directory, and the second must load the very same ones."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        a = _start("A", settings, tmp_path, stack)
        b = _start("B", settings, tmp_path, stack)
        yield a, b


@dataclass
class Party:
    key: str
    client_id: str
    client_secret: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _login(worker: Worker, party: Party) -> Party:
    response = worker.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": party.client_id,
            "client_secret": party.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    party.token = response.json()["access_token"]
    return party


def _admin(settings: Settings) -> Party:
    made = create_admin(settings)
    return Party("admin", made["client_id"], made["client_secret"])


PARTIES = {
    "fleet": ("pearl-robotaxi", "enterprise", ["publisher"]),
    "mapco": ("lingnan-maps", "enterprise", ["subscriber"]),
    "steward": ("gz-data-bureau", "government", ["steward"]),
}


@pytest.fixture
def day(settings: Settings, workers: tuple[Worker, Worker]) -> dict[str, Party]:
    """The parties, made over HTTP through worker A (their tokens come from A too), and
    a regulated product registered and published by the fleet operator through A."""
    a, _ = workers
    admin = _login(a, _admin(settings))
    parties = {"admin": admin}
    for key, (org, kind, roles) in PARTIES.items():
        response = a.client.post(
            "/v1/organizations",
            json={"slug": org, "name": org.title(), "kind": kind},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        response = a.client.post(
            f"/v1/organizations/{org}/principals",
            json={"name": key, "roles": roles},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        parties[key] = _login(a, Party(key, body["client_id"], body["client_secret"]))
    fleet = parties["fleet"].headers
    response = a.client.post("/v1/products", json=captures_product(tier="regulated"), headers=fleet)
    assert response.status_code == 201, response.text
    response = a.client.post(READS, json=[capture(1), capture(2)], headers=fleet)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2, response.text
    return parties


def _read(worker: Worker, party: Party) -> httpx.Response:
    return worker.client.get(READS, params=RESEARCH, headers=party.headers)


def _wait_for(worker: Worker, party: Party, status: int, since: float) -> tuple[float, list[int]]:
    """Read every ~20 ms until a read answers `status`, for at most the bound after
    `since`; the lag from `since` to that answer, and every status seen."""
    seen: list[int] = []
    while True:
        response = _read(worker, party)
        lag = time.monotonic() - since
        seen.append(response.status_code)
        if response.status_code == status:
            return lag, seen
        if lag > BOUND_SECONDS:
            return lag, seen
        time.sleep(POLL_EVERY)


def _policy_version(worker: Worker) -> str:
    response = worker.client.get("/readyz")
    assert response.status_code == 200, response.text
    return response.json()["policy_version"]


def test_a_policy_change_through_one_worker_is_in_force_in_the_other_within_a_second(
    workers: tuple[Worker, Worker], day: dict[str, Party]
) -> None:
    a, b = workers
    mapco, steward = day["mapco"], day["steward"]

    # Before: the regulated product is closed to the map company without a grant,
    # in both workers, and both run version 1.
    assert _read(b, mapco).status_code == 403
    assert _read(a, mapco).status_code == 403
    assert _policy_version(a) == _policy_version(b) == "v1"
    response = a.client.get("/v1/policies", headers=steward.headers)
    assert response.status_code == 200, response.text
    before = response.json()
    assert before["version"] == 1
    assert NEW_LINE not in before["lines"]

    response = a.client.put(
        "/v1/policies",
        json={"lines": [*before["lines"], NEW_LINE], "reason": "map safety research pilot"},
        headers=steward.headers,
    )
    changed_at = time.monotonic()
    assert response.status_code == 200, response.text
    assert response.json()["version"]["version"] == 2
    assert response.json()["added_lines"] == [NEW_LINE]

    # The worker that made the change has it at once ...
    assert _read(a, mapco).status_code == 200
    # ... and the other within a second.
    lag, seen = _wait_for(b, mapco, 200, changed_at)
    print(f"\n[{DATABASE}] policy change A -> B: in force after {lag * 1000:.0f} ms ({seen})")
    assert seen[-1] == 200, f"B still refuses {lag:.2f} s after the change: {seen}"
    assert lag <= BOUND_SECONDS, f"B took {lag:.2f} s: {seen}"
    page = _read(b, mapco).json()
    assert page["view"] == "protected"
    assert page["grant"] is None
    assert [record["id"] for record in page["records"]] == ["cap-000001", "cap-000002"]
    assert _policy_version(b) == "v2"
    response = b.client.get("/v1/policies", headers=steward.headers)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert NEW_LINE in response.json()["lines"]

    # Restore version 1 through B: B refuses at once, A within a second.
    response = b.client.post(
        "/v1/policies/versions/1/restore",
        json={"reason": "the pilot is over"},
        headers=steward.headers,
    )
    restored_at = time.monotonic()
    assert response.status_code == 200, response.text
    assert response.json()["version"]["version"] == 3
    assert response.json()["version"]["restored_from"] == 1
    assert response.json()["removed_lines"] == [NEW_LINE]
    assert _read(b, mapco).status_code == 403
    lag, seen = _wait_for(a, mapco, 403, restored_at)
    print(f"[{DATABASE}] restore B -> A: in force after {lag * 1000:.0f} ms ({seen})")
    assert seen[-1] == 403, f"A still allows {lag:.2f} s after the restore: {seen}"
    assert lag <= BOUND_SECONDS, f"A took {lag:.2f} s: {seen}"
    assert _policy_version(a) == "v3"
    assert _read(a, mapco).status_code == 403


def test_a_grant_revoked_through_one_worker_stops_reads_through_the_other_at_once(
    workers: tuple[Worker, Worker], day: dict[str, Party]
) -> None:
    a, b = workers
    mapco, steward = day["mapco"], day["steward"]

    response = a.client.post(
        "/v1/access-requests",
        json={
            "product": PRODUCT,
            "purpose": "research",
            "justification": "Measuring how often robotaxis meet red-light runners.",
            "days": 30,
        },
        headers=mapco.headers,
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    assert _read(b, mapco).status_code == 403

    # Approved through B: the grant is a row, so both workers honour it at once.
    response = b.client.post(
        f"/v1/access-requests/{request_id}/approve",
        json={"reason": "a sound research plan"},
        headers=steward.headers,
    )
    assert response.status_code == 200, response.text
    grant_id = response.json()["grant"]["id"]
    for worker in (a, b):
        response = _read(worker, mapco)
        assert response.status_code == 200, (worker.name, response.text)
        assert response.json()["grant"] == grant_id

    response = a.client.delete(
        f"/v1/grants/{grant_id}", params={"reason": "the study ended"}, headers=steward.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "revoked"

    # The very first read after the revocation's answer, through the other worker, is
    # refused: no waiting, no polling.
    response = _read(b, mapco)
    assert response.status_code == 403, response.text
    assert _read(a, mapco).status_code == 403
    response = b.client.get(f"/v1/grants/{grant_id}", headers=steward.headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "revoked"
    # Neither worker's policy moved: the revocation is not a policy change.
    assert _policy_version(a) == _policy_version(b) == "v1"
