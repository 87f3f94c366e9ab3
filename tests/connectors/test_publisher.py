"""`exchange publish` and its library, against the exchange served for real: files
of three kinds published, rejects listed where they were found, a run killed
mid-upload resumed without loss or duplicates, changed input refused, images
uploaded by record id and served back."""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from connectors import ExchangeClient
from connectors.checkpoints import (
    Checkpoint,
    CheckpointError,
    FileMark,
    Fingerprint,
    InputChanged,
    begin,
    default_path,
    load,
)
from connectors.publisher import InputError, Publisher, image_index
from exchange.cli import app as cli
from tests.connectors.conftest import Live
from tests.products import capture, captures_product

PRODUCT = "violation-captures"
LAW = {"purpose": "law_enforcement"}  # the police read captures raw


@pytest.fixture
def world(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    """The captures product registered by the fleet; the working directory (where the
    checkpoint and rejects go by default) is the test's own."""
    live.exchange.register("fleet", captures_product())
    monkeypatch.chdir(tmp_path)
    return live


@pytest.fixture
def fleet(world: Live) -> Iterator[ExchangeClient]:
    party = world.party("fleet")
    with ExchangeClient(world.url, party.client_id, party.client_secret) as client:
        yield client


def write_ndjson(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    """Captures as a CSV export would have them: a point as "lat, lon", the photo as
    its reference."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["id", "captured_at", "location", "violation_type", "plate", "speed_kmh", "photo"]
    writer.writerow(columns)
    for record in records:
        point = record["location"]
        values = {**record, "location": f"{point['lat']}, {point['lon']}"}
        writer.writerow([values[column] for column in columns])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def record_count(live: Live) -> int:
    response = live.exchange.get("fleet", f"/v1/products/{PRODUCT}")
    assert response.status_code == 200, response.text
    count: int = response.json()["record_count"]
    return count


def stored_ids(live: Live) -> list[str]:
    """Every record id on the exchange, read back as the police."""
    ids, cursor = [], None
    while True:
        params = {**LAW, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = live.exchange.get("police", f"/v1/products/{PRODUCT}/records", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [record["id"] for record in body["records"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def rejects_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(live: Live, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["publish", PRODUCT, *args], env=live.environment("fleet"), catch_exceptions=False
    )


def test_ndjson_json_and_csv_files_are_published(world: Live, tmp_path: Path) -> None:
    ndjson = write_ndjson(tmp_path / "day1.ndjson", [capture(n) for n in range(0, 30)])
    array = tmp_path / "day2.json"
    array.write_text(json.dumps([capture(n) for n in range(30, 40)]), encoding="utf-8")
    table = write_csv(tmp_path / "day3.csv", [capture(n) for n in range(40, 50)])

    result = run(world, str(ndjson), str(array), str(table), "--batch", "2", "--id-column", "id")

    assert result.exit_code == 0, result.output
    assert "accepted 50, unchanged 0, rejected 0" in result.stdout
    assert f"{PRODUCT}: 40 records" in result.stderr  # not a terminal: a line per 20 batches
    assert record_count(world) == 50
    assert sorted(stored_ids(world)) == [f"cap-{n:06d}" for n in range(50)]
    police = world.exchange.get("police", f"/v1/products/{PRODUCT}/records/cap-000041", params=LAW)
    converted = police.json()["record"]
    assert converted["speed_kmh"] == 42.5
    assert converted["location"] == capture(41)["location"]

    again = run(world, str(ndjson), str(array), str(table), "--id-column", "id")
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.stdout
    assert record_count(world) == 50


def test_local_csv_times_are_read_in_the_given_zone(world: Live, tmp_path: Path) -> None:
    local = capture(1, captured_at="2026-11-30 08:15:00")
    table = write_csv(tmp_path / "shanghai.csv", [local])

    refused = run(world, str(table), "--id-column", "id", "--zone", "Mars/Olympus")
    assert refused.exit_code == 2 and "not a time zone" in refused.output
    result = run(world, str(table), "--id-column", "id", "--zone", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    police = world.exchange.get("police", f"/v1/products/{PRODUCT}/records/cap-000001", params=LAW)
    assert police.json()["record"]["captured_at"] == "2026-11-30T00:15:00Z"


def test_rejected_rows_are_listed_and_the_rest_published(
    fleet: ExchangeClient, world: Live, tmp_path: Path
) -> None:
    rows = [
        capture(1),
        {k: v for k, v in capture(2).items() if k != "plate"},  # a required field missing
        capture(3, speed_kmh="fast"),  # the wrong type
        capture(4, captured_at="yesterday at noon"),  # not a timestamp
        capture(5),
    ]
    ndjson = write_ndjson(tmp_path / "captures.ndjson", rows)
    with ndjson.open("a", encoding="utf-8") as stream:
        stream.write("{not json\n")
    table = write_csv(tmp_path / "more.csv", [capture(7), capture(8, speed_kmh="fast")])

    summary = Publisher(fleet, PRODUCT, batch_size=2, id_column="id").publish_paths([ndjson, table])

    assert (summary.accepted, summary.rejected) == (3, 5)
    assert sorted(stored_ids(world)) == ["cap-000001", "cap-000005", "cap-000007"]
    rejects = rejects_of(tmp_path / f"{PRODUCT}.rejects.ndjson")
    found = [(r["file"], r["position"], r["id"], r["field"]) for r in rejects]
    assert found == [
        (str(ndjson), 2, "cap-000002", "plate"),
        (str(ndjson), 3, "cap-000003", "speed_kmh"),
        (str(ndjson), 4, "cap-000004", "captured_at"),
        (str(ndjson), 6, None, None),
        (str(table), 2, "cap-000008", "speed_kmh"),
    ]
    assert rejects[0]["reason"] == "required"
    assert rejects[3]["reason"].startswith("not JSON")
    assert rejects[4]["line"] == 3  # the header is line 1
    assert all(r["reason"] for r in rejects)
    assert (tmp_path / f"{PRODUCT}.rejects.ndjson").stat().st_mode & 0o077 == 0, "rows' values"


def test_stop_on_reject_stops_at_the_first(
    fleet: ExchangeClient, world: Live, tmp_path: Path
) -> None:
    rows = [capture(n) for n in range(1, 11)]
    rows[3] = capture(4, speed_kmh="fast")
    ndjson = write_ndjson(tmp_path / "captures.ndjson", rows)
    rejects = tmp_path / "rejects.ndjson"
    args = (str(ndjson), "--batch", "3", "--stop-on-reject", "--rejects", str(rejects))

    result = run(world, *args)

    assert result.exit_code == 3, result.output
    assert "stopped at the first reject" in result.stdout
    assert [(r["position"], r["field"]) for r in rejects_of(rejects)] == [(4, "speed_kmh")]
    # The batch with the reject is stored apart from it; nothing after that batch.
    assert sorted(stored_ids(world)) == [f"cap-{n:06d}" for n in (1, 2, 3, 5, 6)]

    again = run(world, *args)  # resumes before the reject, so meets it again, listed once
    assert again.exit_code == 3, again.output
    assert "skipped 3 rows" in again.stdout
    assert [r["position"] for r in rejects_of(rejects)] == [4]
    assert record_count(world) == 5

    # A CSV row that cannot be converted: the rows before it are published, then it stops.
    rows = [capture(21), capture(22), capture(23, speed_kmh="fast"), capture(24)]
    table = write_csv(tmp_path / "captures.csv", rows)
    summary = Publisher(fleet, PRODUCT, id_column="id", stop_on_reject=True).publish_paths([table])
    assert summary.stopped
    assert (summary.accepted, summary.rejected) == (2, 1)
    assert record_count(world) == 7
    checkpoint = load(summary.checkpoint)
    assert checkpoint is not None and not checkpoint.complete
    assert checkpoint.files[0].position == 2


def _publish_process(live: Live, cwd: Path, *args: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "exchange",
        "publish",
        PRODUCT,
        *args,
    ]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=os.environ | live.environment("fleet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _acknowledged_rows(checkpoint: Path) -> int:
    """Rows the checkpoint covers; 0 while there is none yet."""
    try:
        stored = load(checkpoint)
    except CheckpointError:
        return 0
    return stored.files[0].rows if stored else 0


def _stopped_midway(
    process: subprocess.Popen[str], checkpoint: Path, rows: int, how: signal.Signals
) -> tuple[str, str]:
    """Signal the process once the checkpoint covers `rows` rows; its output."""
    deadline = time.monotonic() + 60
    while _acknowledged_rows(checkpoint) < rows:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no progress in the checkpoint"
        time.sleep(0.005)
    process.send_signal(how)
    return process.communicate(timeout=60)


def test_a_run_killed_mid_upload_resumes_without_loss_or_duplicates(
    world: Live, tmp_path: Path
) -> None:
    total, batch = 3000, 50
    source = write_ndjson(tmp_path / "captures.ndjson", [capture(n) for n in range(total)])
    checkpoint = tmp_path / default_path(PRODUCT, [source])
    args = (str(source), "--batch", str(batch))

    interrupted = _publish_process(world, tmp_path, *args)
    _, stderr = _stopped_midway(interrupted, checkpoint, 4 * batch, signal.SIGINT)
    assert interrupted.returncode == 130, stderr
    assert "interrupted" in stderr and "run again to resume" in stderr
    assert "Traceback" not in stderr
    first_stop = _acknowledged_rows(checkpoint)

    killed = _publish_process(world, tmp_path, *args)
    _stopped_midway(killed, checkpoint, first_stop + 4 * batch, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    at_kill = load(checkpoint)
    assert at_kill is not None and not at_kill.complete
    acknowledged = at_kill.files[0].rows
    assert first_stop + 4 * batch <= acknowledged < total

    finished = run(world, *args)  # in this process: the same command, the same directory

    assert finished.exit_code == 0, finished.output
    assert f"skipped {acknowledged} rows" in finished.stdout
    counts = re.search(r"accepted (\d+), unchanged (\d+)", finished.stdout)
    assert counts is not None, finished.stdout
    accepted, unchanged = int(counts[1]), int(counts[2])
    assert accepted + unchanged == total - acknowledged
    assert unchanged <= batch  # only the batch in flight at the kill went twice
    assert record_count(world) == total
    ids = stored_ids(world)
    assert len(ids) == len(set(ids)) == total
    assert set(ids) == {f"cap-{n:06d}" for n in range(total)}
    done = load(checkpoint)
    assert done is not None and done.complete and done.files[0].rows == total


def test_a_changed_input_is_refused_unless_restarted(
    fleet: ExchangeClient, world: Live, tmp_path: Path
) -> None:
    source = write_ndjson(tmp_path / "captures.ndjson", [capture(n) for n in range(5)])
    assert Publisher(fleet, PRODUCT).publish_paths([source]).accepted == 5
    assert Publisher(fleet, PRODUCT).publish_paths([source]).already_complete

    write_ndjson(source, [capture(n) for n in range(6)])
    with pytest.raises(InputChanged, match=r"captures\.ndjson changed"):
        Publisher(fleet, PRODUCT).publish_paths([source])
    refused = run(world, str(source))
    assert refused.exit_code == 1
    assert "changed since" in refused.stderr and "--restart" in refused.stderr
    assert "Traceback" not in refused.output

    restarted = Publisher(fleet, PRODUCT, restart=True).publish_paths([source])
    assert (restarted.accepted, restarted.unchanged) == (1, 5)
    assert record_count(world) == 6


def test_bad_input_is_a_message_and_a_failing_exit(world: Live, tmp_path: Path) -> None:
    good = write_ndjson(tmp_path / "captures.ndjson", [capture(1)])
    odd = tmp_path / "captures.xml"
    odd.write_text("<captures/>", encoding="utf-8")
    other = CliRunner().invoke(
        cli, ["publish", "no-such-product", str(good)], env=world.environment("fleet")
    )
    police = CliRunner().invoke(
        cli, ["publish", PRODUCT, str(good)], env=world.environment("police")
    )
    cases = {
        "captures.missing.ndjson: no such file": run(
            world, str(tmp_path / "captures.missing.ndjson")
        ),
        "unknown kind of file": run(world, str(odd)),
        "no-such-product": other,
        "denied": police,
        "images: no such directory": run(world, str(good), "--images", str(tmp_path / "images")),
        "captures.ndjson: given more than once": run(world, str(good), str(good)),
    }
    for message, result in cases.items():
        assert result.exit_code == 1, (message, result.output)
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert record_count(world) == 0


def image(kind: str, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 90, 160)).save(out, kind)
    return out.getvalue()


def test_images_matched_by_record_id_are_uploaded_and_served(
    fleet: ExchangeClient, world: Live, tmp_path: Path
) -> None:
    records = [capture(n, photo={"ref": f"captures/{n}.jpg", "boxes": []}) for n in range(4)]
    records.append(capture(4))  # a bare reference: no boxes, so its image is refused
    source = write_ndjson(tmp_path / "captures.ndjson", records)
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {"cap-000000": image("JPEG", 10), "cap-000001": image("PNG", 20)}
    (folder / "cap-000000.jpg").write_bytes(photos["cap-000000"])
    (folder / "cap-000001.png").write_bytes(photos["cap-000001"])
    (folder / "cap-000004.webp").write_bytes(image("WEBP", 40))
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")

    summary = Publisher(fleet, PRODUCT, images=folder, batch_size=2).publish_paths([source])

    assert (summary.accepted, summary.images, summary.images_refused) == (5, 2, 1)
    for record_id, data in photos.items():
        served = world.exchange.get(
            "police", f"/v1/products/{PRODUCT}/records/{record_id}/image", params=LAW
        )
        assert served.status_code == 200, served.text
        assert served.content == data
    (refused,) = rejects_of(summary.rejects)
    assert (refused["id"], refused["field"], refused["position"]) == ("cap-000004", "photo", 5)
    assert "boxes" in refused["reason"]

    again = Publisher(fleet, PRODUCT, images=folder, restart=True).publish_paths([source])
    assert (again.unchanged, again.images, again.images_unchanged) == (5, 0, 2)


def test_an_image_index_prefers_jpeg_whatever_the_listing(tmp_path: Path) -> None:
    for name in ("a.png", "a.JPG", "b.webp", "c.gif", "d.jpeg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "e.jpg").mkdir()

    assert image_index(tmp_path) == {
        "a": tmp_path / "a.JPG",
        "b": tmp_path / "b.webp",
        "d": tmp_path / "d.jpeg",
    }
    with pytest.raises(InputError):
        image_index(tmp_path / "a.png")


def test_a_checkpoint_is_for_its_own_files_only(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "a.ndjson", [capture(1)])
    stored = Checkpoint(PRODUCT, [FileMark(str(source), Fingerprint.of(source), 1, 1, True)])
    place = tmp_path / "checkpoint.json"
    stored.save(place)
    assert load(place) == stored
    assert list(tmp_path.glob(".checkpoint.json.*")) == []  # no temporary file left

    other = write_ndjson(tmp_path / "b.ndjson", [capture(1)])
    with pytest.raises(CheckpointError, match="from other files"):
        begin(place, PRODUCT, [other], restart=False)
    assert begin(place, PRODUCT, [other], restart=True).files[0].rows == 0
    place.write_text("{}", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a publish checkpoint"):
        begin(place, PRODUCT, [source], restart=False)
