"""`exchange pull`: a follower of a pull subscription on the live exchange, run as
the command (in process, and as a real process to kill or stop), storing every
event exactly once across runs, kills and restarts."""

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from connectors import ExchangeClient
from connectors.sinks import open_sink, stored_events
from exchange.cli import app as cli
from tests.conftest import run_cli
from tests.connectors.conftest import Live, eventually
from tests.products import capture, captures_product

PRODUCT = "violation-captures"
LAW = "law_enforcement"
SINKS = ["events.ndjson", "events.db"]


def police(live: Live) -> ExchangeClient:
    env = live.environment("police")
    return ExchangeClient(live.url, env["EXCHANGE_CLIENT_ID"], env["EXCHANGE_CLIENT_SECRET"])


def subscribed(live: Live) -> int:
    """The captures product, and a pull subscription to it as the police; its id."""
    live.exchange.register("fleet", captures_product())
    with police(live) as sdk:
        return sdk.subscribe(PRODUCT, purpose=LAW, delivery="pull").id


def publish(live: Live, numbers: range) -> None:
    answer = live.exchange.publish("fleet", PRODUCT, [capture(n) for n in numbers])
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(numbers)


def follow(live: Live, *args: str) -> Result:
    """`exchange pull ARGS` as the police, in this process."""
    return CliRunner().invoke(cli, ["pull", *args], env=live.environment("police"))


def events(path: Path) -> list[int]:
    return [event["event"] for event in stored_events(path)]


@pytest.mark.parametrize("name", SINKS)
def test_each_run_continues_from_its_cursor(live: Live, tmp_path: Path, name: str) -> None:
    sid = subscribed(live)
    out = tmp_path / name
    publish(live, range(1, 6))

    first = follow(live, str(sid), "--out", str(out), "--once", "--limit", "2")
    assert first.exit_code == 0, first.output
    assert events(out) == [1, 2, 3, 4, 5]
    assert "5 new events stored" in first.stderr
    assert first.stdout == "", "progress goes to stderr, records to the sink only"

    publish(live, range(6, 9))
    second = follow(live, str(sid), "--out", str(out), "--once")
    assert second.exit_code == 0, second.output
    assert "3 new events stored" in second.stderr
    stored = list(stored_events(out))
    assert [event["event"] for event in stored] == list(range(1, 9))
    assert [event["record"]["id"] for event in stored] == [f"cap-{n:06d}" for n in range(1, 9)]
    assert {(e["subscription"], e["view"], e["webhook_id"]) for e in stored} == {(sid, "raw", None)}

    replay = follow(live, str(sid), "--out", str(out), "--once", "--from-start")
    assert replay.exit_code == 0, replay.output
    assert "from the oldest event" in replay.stderr
    assert "8 events, 0 new" in replay.stderr, "all eight came again, none stored twice"
    assert "0 new events stored" in replay.stderr
    assert events(out) == list(range(1, 9))

    with open_sink(out) as sink:
        cursor = sink.cursor(sid)
    with police(live) as sdk:
        assert sdk.subscription(sid).health["events_waiting"] == 0, "the cursor acknowledged all"
        assert sdk.pull(sid, cursor=cursor).events == []


def pull_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exchange", "pull", *args]


def test_a_follower_killed_mid_run_stores_every_event_once(live: Live, tmp_path: Path) -> None:
    sid = subscribed(live)
    out = tmp_path / "events.ndjson"
    publish(live, range(1, 61))
    env = os.environ | live.environment("police")
    killed = subprocess.Popen(
        pull_command(str(sid), "--out", str(out), "--limit", "1", "--wait", "1"),
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        eventually(lambda: out.exists() and len(out.read_bytes().splitlines()) >= 10, "events")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
    assert killed.returncode == -signal.SIGKILL

    # Restarted, it catches up and then waits in long polls, which SIGTERM breaks off.
    # (Short ones: the exchange's side of a poll waits on after its client has gone.)
    publish(live, range(61, 71))
    restarted = subprocess.Popen(
        pull_command(str(sid), "--out", str(out), "--limit", "7", "--wait", "2"),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: len(set(events(out))) == 70, "all seventy events")
    finally:
        restarted.send_signal(signal.SIGTERM)
        progress = restarted.communicate(timeout=15)[1]
    assert restarted.returncode == 0, progress
    assert "new events stored" in progress.splitlines()[-1]
    counted = Counter(events(out))
    assert sorted(counted) == list(range(1, 71))
    assert set(counted.values()) == {1}, "no event twice"


def deny_police(live: Live) -> None:
    lines = live.exchange.get("steward", "/v1/policies").json()["lines"]
    denied = [*lines, f"p, org:gz-traffic-police, product:{PRODUCT}, read, *, -, deny"]
    changed = live.exchange.put(
        "steward", "/v1/policies", json={"lines": denied, "reason": "cut off"}
    )
    assert changed.status_code == 200, changed.text


def erase(live: Live) -> None:
    run_cli(live.exchange.settings, "product", "erase", PRODUCT, "--reason", "court order")


@pytest.mark.parametrize(
    ("refuse", "expected"),
    [(deny_police, ["403", "409"]), (erase, ["410", "410"])],
    ids=["access-revoked", "product-erased"],
)
def test_a_refusal_stops_the_follower_with_a_message(
    live: Live, tmp_path: Path, refuse: Callable[[Live], Any], expected: list[str]
) -> None:
    sid = subscribed(live)
    out = tmp_path / "events.ndjson"
    publish(live, range(1, 3))
    assert follow(live, str(sid), "--out", str(out), "--once").exit_code == 0
    publish(live, range(3, 4))

    refuse(live)
    first = follow(live, str(sid), "--out", str(out), "--once")
    second = follow(live, str(sid), "--out", str(out), "--once")
    assert [first.exit_code, second.exit_code] == [1, 1]
    for result, status in zip([first, second], expected, strict=True):
        assert result.stderr.startswith(f"subscription {sid}: from "), result.stderr
        assert f"error: subscription {sid}: {status} " in result.stderr
        assert "Traceback" not in result.output
    assert events(out) == [1, 2], "nothing stored after the refusal"

    unknown = follow(live, "999", "--out", str(out), "--once")
    assert unknown.exit_code == 1
    assert "error: subscription 999: 404 " in unknown.stderr
