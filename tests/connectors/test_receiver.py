"""`exchange receive` and its sinks: the live exchange delivering to a real receiver
over HTTP, requests signed here with the `standardwebhooks` package (the reference,
not our code) to check what is refused, and sink files left as a crash leaves
them, reopened."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from connectors import ExchangeClient
from connectors.receiver import Receiver
from connectors.sinks import Delivery, SinkError, open_sink, stored_events
from exchange.cli import app as cli
from exchange.settings import Settings
from tests.connectors.conftest import Live, eventually, free_port
from tests.products import capture, captures_product

PRODUCT = "violation-captures"
LAW = "law_enforcement"
SINKS = ["events.ndjson", "events.db"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Webhooks may go to this test's loopback receiver, and are sent promptly."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        webhook_allow_private=True,
        delivery_poll_seconds=0.05,
        delivery_retry_base_seconds=0.05,
        delivery_retry_max_seconds=0.2,
        delivery_timeout_seconds=10,
        delivery_max_attempts=4,
    )


# --- helpers ------------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@contextmanager
def receiving(out: Path, *secrets: str, **options: Any) -> Iterator[Receiver]:
    """A receiver on a free loopback port (unless `port` is given), storing into `out`."""
    with open_sink(out) as sink:
        receiver = Receiver(sink, list(secrets), **{"port": 0, "path": "/hook"} | options)
        receiver.start()
        try:
            yield receiver
        finally:
            receiver.stop()


def message(events: range, subscription: int = 7) -> bytes:
    """A records.published body as the exchange writes it."""
    body = {
        "type": "records.published",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "subscription": subscription,
            "product": PRODUCT,
            "version": 1,
            "purpose": LAW,
            "view": "raw",
            "label": "raw",
            "fields": {},
            "pseudonyms_until": None,
            "grant": None,
            "events": [{"event": n, "record": capture(n)} for n in events],
        },
    }
    return json.dumps(body, ensure_ascii=False).encode()


def signed(
    body: bytes, *secrets: str, webhook_id: str = "msg_test_1", at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers, one signature per secret, made by the reference library."""
    moment = at or datetime.now(UTC)
    signatures = [Webhook(secret).sign(webhook_id, moment, body.decode()) for secret in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


def post(receiver: Receiver, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(receiver.url, content=body, headers=headers, timeout=10)


def numbers(path: Path) -> list[int]:
    return [event["event"] for event in stored_events(path)]


# --- from the exchange --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SINKS)
def test_the_exchange_delivers_into_the_sink(live: Live, tmp_path: Path, name: str) -> None:
    live.exchange.register("fleet", captures_product())
    out = tmp_path / name
    port = free_port()
    env = live.environment("police")
    with ExchangeClient(live.url, env["EXCHANGE_CLIENT_ID"], env["EXCHANGE_CLIENT_SECRET"]) as sdk:
        made = sdk.subscribe(
            PRODUCT,
            purpose=LAW,
            delivery="webhook",
            url=f"http://127.0.0.1:{port}/hook",
            batch_size=2,
        )
        assert made.secret is not None
        with receiving(out, made.secret, port=port):
            published = live.exchange.publish("fleet", PRODUCT, [capture(n) for n in range(1, 6)])
            assert published.status_code == 200, published.text
            eventually(lambda: len(numbers(out)) == 5, "five events in the sink")

            def settled() -> bool:
                health = sdk.subscription(made.id).health
                return health["delivered"] == 5 and health["events_waiting"] == 0

            eventually(settled, "the exchange to count the batches delivered")
        attempts = list(sdk.deliveries(made.id))

    stored = list(stored_events(out))
    assert [event["event"] for event in stored] == [1, 2, 3, 4, 5]
    assert [event["record"]["id"] for event in stored] == [f"cap-{n:06d}" for n in range(1, 6)]
    assert {(e["subscription"], e["product"], e["purpose"], e["view"]) for e in stored} == {
        (made.id, PRODUCT, LAW, "raw")
    }
    assert stored[0]["record"]["plate"] == capture(1)["plate"], "police see the plate raw"
    delivered = {a["webhook_id"] for a in attempts if a["outcome"] == "delivered"}
    assert len(delivered) == 3, "batches of two, each answered 2xx"
    assert {event["webhook_id"] for event in stored} == delivered


# --- refused requests ---------------------------------------------------------------------------


def _wrong_secret(body: bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, new_secret())


def _tampered(body: bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"red_light", b"bus_lane"), signed(body, secret)


def _unsigned(body: bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    headers = signed(body, secret)
    del headers["webhook-signature"]
    return body, headers


def _garbled(body: bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, secret) | {"webhook-signature": "v1 not-base64"}


@pytest.mark.parametrize("forge", [_wrong_secret, _tampered, _unsigned, _garbled])
def test_a_request_not_signed_by_the_secret_is_refused(
    tmp_path: Path, forge: Callable[[bytes, str], tuple[bytes, dict[str, str]]]
) -> None:
    secret = new_secret()
    out = tmp_path / "events.ndjson"
    with receiving(out, secret) as receiver:
        body, headers = forge(message(range(1, 3)), secret)
        answer = post(receiver, body, headers)
    assert answer.status_code == 401, answer.text
    assert numbers(out) == []


@pytest.mark.parametrize(
    ("offset", "tolerance"),
    [(-600, 300), (600, 300), (-120, 60)],
    ids=["ten-minutes-old", "ten-minutes-ahead", "older-than-a-narrow-tolerance"],
)
def test_a_stale_or_future_timestamp_is_refused(
    tmp_path: Path, offset: int, tolerance: float
) -> None:
    secret = new_secret()
    out = tmp_path / "events.db"
    body = message(range(1, 3))
    at = datetime.now(UTC) + timedelta(seconds=offset)
    with receiving(out, secret, tolerance=tolerance) as receiver:
        answer = post(receiver, body, signed(body, secret, at=at))
        assert answer.status_code == 400, answer.text
        assert "webhook-timestamp" in answer.json()["detail"]
        fresh = post(receiver, body, signed(body, secret))
    assert fresh.status_code == 200, "the same body with a fresh timestamp goes in"
    assert numbers(out) == [1, 2]


def test_a_malformed_signature_entry_does_not_hide_a_valid_one(tmp_path: Path) -> None:
    secret = new_secret()
    out = tmp_path / "events.ndjson"
    body = message(range(1, 3))
    headers = signed(body, secret)
    with receiving(out, secret) as receiver:
        mixed = f"v1,abc v1 v2,{'x' * 8} {headers['webhook-signature']}"
        answer = post(receiver, body, headers | {"webhook-signature": mixed})
    assert answer.status_code == 200, answer.text
    assert numbers(out) == [1, 2]


@pytest.mark.parametrize("stamp", ["9" * 5000, "1e9", "-5", "17.5"])
def test_a_timestamp_that_is_not_seconds_is_refused(tmp_path: Path, stamp: str) -> None:
    secret = new_secret()
    out = tmp_path / "events.ndjson"
    body = message(range(1, 3))
    with receiving(out, secret) as receiver:
        answer = post(receiver, body, signed(body, secret) | {"webhook-timestamp": stamp})
    assert answer.status_code == 400, answer.text
    assert numbers(out) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"type": "records.erased", "data": {}}',
        json.dumps(json.loads(message(range(1, 2))) | {"data": []}).encode(),
        message(range(1, 2)).replace(b'"record"', b'"recorded"'),
        message(range(1, 2)).replace(b'"subscription": 7', b'"subscription": "7"'),
    ],
    ids=["not-json", "another-type", "data-not-an-object", "event-without-record", "string-id"],
)
def test_a_signed_body_that_is_not_a_delivery_is_refused(tmp_path: Path, body: bytes) -> None:
    secret = new_secret()
    out = tmp_path / "events.ndjson"
    with receiving(out, secret) as receiver:
        answer = post(receiver, body, signed(body, secret))
    assert answer.status_code == 400, answer.text
    assert numbers(out) == []


def test_a_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    secret = new_secret()
    out = tmp_path / "events.ndjson"
    body = message(range(1, 40))
    with receiving(out, secret, max_body=4096) as receiver:
        declared = post(receiver, body, signed(body, secret))
        streamed = post(receiver, iter([body[:3000], body[3000:]]), signed(body, secret))
        small = message(range(1, 2))
        accepted = post(receiver, small, signed(small, secret, webhook_id="msg_test_2"))
        elsewhere = httpx.post(receiver.url.replace("/hook", "/other"), content=small)
        fetched = httpx.get(receiver.url)
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert (declared.status_code, streamed.status_code, accepted.status_code) == (413, 413, 200)
    assert (elsewhere.status_code, fetched.status_code) == (404, 405)
    assert numbers(out) == [1]


# --- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SINKS)
def test_a_replayed_delivery_is_stored_once_across_restarts(tmp_path: Path, name: str) -> None:
    secret = new_secret()
    out = tmp_path / name
    body = message(range(1, 4))
    headers = signed(body, secret, webhook_id="msg_sub_1")
    with receiving(out, secret) as receiver:
        first = post(receiver, body, headers)
        again = post(receiver, body, headers)
    assert first.json() == {"stored": 3, "duplicate": False}
    assert again.json() == {"stored": 0, "duplicate": True}

    with receiving(out, secret) as receiver:  # a new process on the same file
        replayed = post(receiver, body, signed(body, secret, webhook_id="msg_sub_1"))
        # A part of the batch redelivered under a new id, with one event more.
        overlapping = message(range(3, 5))
        more = post(receiver, overlapping, signed(overlapping, secret, webhook_id="msg_sub_2"))
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    assert more.json() == {"stored": 1, "duplicate": False}
    assert numbers(out) == [1, 2, 3, 4]


def test_during_a_rotation_either_secret_verifies(tmp_path: Path) -> None:
    old, new = new_secret(), new_secret()
    out = tmp_path / "events.ndjson"
    with receiving(out, old, new) as receiver:
        answers = []
        for number, secrets in enumerate([(old,), (new,), (old, new), (new, old)], start=1):
            body = message(range(number, number + 1))
            headers = signed(body, *secrets, webhook_id=f"msg_sub_{number}")
            answers.append(post(receiver, body, headers).status_code)
    assert answers == [200, 200, 200, 200]
    assert numbers(out) == [1, 2, 3, 4]


# --- crash safety of the NDJSON sink ------------------------------------------------------------


def delivered(events: range, webhook_id: str) -> Delivery:
    return Delivery(
        7, PRODUCT, LAW, "raw", [{"event": n, "record": capture(n)} for n in events], webhook_id
    )


def test_lines_written_before_the_ledger_committed_are_not_stored_again(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    ledger = tmp_path / "events.ndjson.ledger.sqlite"
    with open_sink(out) as sink:
        sink.store(delivered(range(1, 3), "msg_sub_1"))
    shutil.copyfile(ledger, tmp_path / "before")
    with open_sink(out) as sink:
        sink.store(delivered(range(3, 5), "msg_sub_2"))
    # The state of a crash after the lines were fsync'd, before the ledger committed.
    shutil.copyfile(tmp_path / "before", ledger)

    with open_sink(out) as sink:
        retried = sink.store(delivered(range(3, 5), "msg_sub_2"))
        again = sink.store(delivered(range(3, 5), "msg_sub_2"))
    assert (retried.written, retried.duplicate) == (0, False), "the events were already there"
    assert again.duplicate, "and now the webhook id is known too"
    assert numbers(out) == [1, 2, 3, 4]


def test_a_torn_last_line_is_cut_and_its_event_stored_on_retry(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    with open_sink(out) as sink:
        sink.store(delivered(range(1, 2), "msg_sub_1"))
    whole = out.read_bytes()
    with out.open("ab") as file:  # a crash in the middle of writing the next line
        file.write(whole[: len(whole) // 2].replace(b'"event":1', b'"event":2'))

    with open_sink(out) as sink:
        assert out.read_bytes() == whole
        stored = sink.store(delivered(range(1, 3), "msg_sub_2"))
    assert stored.written == 1
    assert numbers(out) == [1, 2]
    assert all(line.endswith(b"}") for line in out.read_bytes().splitlines())


def test_a_file_that_is_not_the_ledgers_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    with open_sink(out) as sink:
        sink.store(delivered(range(1, 3), "msg_sub_1"))
        with pytest.raises(SinkError, match="another process"):
            open_sink(out)
    with out.open("ab") as file:
        file.write(b'{"note": "added by hand"}\n')
    with pytest.raises(SinkError, match=r"events\.ndjson: line 3 is not an event"):
        open_sink(out)
    out.write_bytes(b"")
    with pytest.raises(SinkError, match="shorter"):
        open_sink(out)
    with pytest.raises(SinkError, match="suffix"):
        open_sink(tmp_path / "events.csv")


# --- the command --------------------------------------------------------------------------------


def receive_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exchange", "receive", *args]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_command_receives_until_sigterm(tmp_path: Path) -> None:
    old, new = new_secret(), new_secret()
    out = tmp_path / "events.ndjson"
    port = free_port()
    process = subprocess.Popen(
        receive_command("--port", str(port), "--path", "/hook", "--out", str(out)),
        env=os.environ | {"EXCHANGE_WEBHOOK_SECRET": f"{old} {new}"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: listening(port) or process.poll() is not None, "the receiver")
        body = message(range(1, 3))
        answer = httpx.post(
            f"http://127.0.0.1:{port}/hook", content=body, headers=signed(body, new), timeout=10
        )
        refused = httpx.post(f"http://127.0.0.1:{port}/hook", content=body, timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=15)
    assert process.returncode == 0, log
    assert (answer.status_code, refused.status_code) == (200, 401)
    assert numbers(out) == [1, 2]
    assert "'msg_test_1': 2 events, 2 new" in log
    assert "refused 401" in log
    assert old not in log and new not in log
    assert old.removeprefix("whsec_") not in log


def test_the_command_refuses_a_bad_secret_without_showing_it(tmp_path: Path) -> None:
    bad = "whsec_not!base64!at!all"
    out = tmp_path / "events.ndjson"
    done = CliRunner().invoke(cli, ["receive", "--secret", bad, "--out", str(out)])
    assert done.exit_code == 2
    assert "secret 1 is not a whsec_" in done.stderr
    assert "not!base64" not in done.output
    assert not out.exists()
