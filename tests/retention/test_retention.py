"""Removing data: records past their product's retention (by the command line and by
the server on its own), and whole products erased by destroying their data key.

Retention counts from a record's event time, else its publication time; each run
that removes something says so in the audit log. An erased product answers 410
`product_erased` to every read and write, and nothing of it can be opened again.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from typer.testing import CliRunner, Result

from connectors.fleet.photos import scene
from exchange.cli import app as cli
from exchange.main import create_app
from exchange.privacy.sealing import DataKey, SealError, unwrap
from exchange.records.models import Record
from exchange.settings import Settings
from exchange.timeutil import parse_rfc3339
from tests.conftest import Exchange, run_cli
from tests.products import capture, captures_product
from tests.responses import ok, problem
from tests.storage import database

LAW = {"purpose": "law_enforcement"}
NAVIGATION = {"purpose": "navigation_safety"}
SHORT = "short-lived"  # kept 30 days
LONG = "violation-captures"  # kept 90 days
UNTIMED = "untimed-reports"  # no timestamp field: judged by publication time


NOW = datetime.now(UTC).replace(microsecond=0)  # one "now" for every record of the run


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def photo(n: int) -> tuple[bytes, list[dict[str, Any]]]:
    data, boxes = scene(n, capture(n)["plate"])
    return data, [box.as_dict() for box in boxes]


def with_photo(record: dict[str, Any], n: int) -> dict[str, Any]:
    return record | {"photo": {"ref": f"captures/{n}.jpg", "boxes": photo(n)[1]}}


def path(product: str, record_id: str = "") -> str:
    base = f"/v1/products/{product}/records"
    return f"{base}/{record_id}" if record_id else base


def upload(exchange: Exchange, product: str, n: int) -> Any:
    return exchange.put(
        "fleet",
        path(product, f"cap-{n:06d}") + "/image",
        content=photo(n)[0],
        headers={"Content-Type": "image/jpeg"},
    )


def ids(exchange: Exchange, product: str) -> list[str]:
    page = ok(exchange.get("police", path(product), params=LAW | {"limit": 1000}))
    return [record["id"] for record in page["records"]]


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


def invoke(settings: Settings, *args: str) -> Result:
    """The real CLI, whatever its exit code."""
    env = {
        "EXCHANGE_DATABASE_URL": settings.resolved_database_url,
        "EXCHANGE_DATA_DIR": str(settings.data_dir),
    }
    return CliRunner().invoke(cli, list(args), env=env)


def product_id(settings: Settings, slug: str) -> int:
    with database(settings) as connection:
        found = connection.execute(
            text("SELECT id FROM product WHERE slug = :slug"), {"slug": slug}
        ).scalar_one()
    return int(found)


def count(settings: Settings, table: str, slug: str) -> int:
    with database(settings) as connection:
        found = connection.execute(
            text(f'SELECT COUNT(*) FROM "{table}" WHERE product_id = :id'),
            {"id": product_id(settings, slug)},
        ).scalar_one()
    return int(found)


def published_long_ago(settings: Settings, slug: str, record_id: str, days: int) -> None:
    """Move a record's publication time back, as if it had been published `days` ago."""
    with database(settings) as connection:
        connection.execute(
            update(Record)
            .where(Record.product_id == product_id(settings, slug), Record.record_id == record_id)
            .values(published_at=datetime.now(UTC) - timedelta(days=days))
        )


# --- retention ----------------------------------------------------------------------------------

OLD = (1, 2)  # captured 45 days ago: past 30 days
RECENT = (3, 4, 5)  # captured 5 days ago; 5 was published (we pretend) 400 days ago


def short_lived(n: int) -> dict[str, Any]:
    record = capture(n, captured_at=ago(45 if n in OLD else 5))
    return with_photo(record, n) if n in (1, 3) else record


@pytest.fixture
def world(exchange: Exchange, settings: Settings) -> Exchange:
    """A 30-day product with two old and three recent records (images on 1 and 3), and
    the 90-day captures product whose records are all recent."""
    exchange.register("fleet", captures_product(SHORT, retention_days=30))
    exchange.register("fleet", captures_product(LONG))
    assert ok(exchange.publish("fleet", SHORT, [short_lived(n) for n in (*OLD, *RECENT)]))
    assert ok(
        exchange.publish(
            "fleet",
            LONG,
            [with_photo(capture(n), n) if n == 2 else capture(n) for n in range(1, 6)],
        )
    )
    for n in (1, 3):
        assert upload(exchange, SHORT, n).status_code == 200
    assert upload(exchange, LONG, 2).status_code == 200
    published_long_ago(settings, SHORT, "cap-000005", days=400)
    return exchange


def retention_run(settings: Settings) -> list[dict[str, Any]]:
    removed: list[dict[str, Any]] = json.loads(run_cli(settings, "retention", "run"))
    return removed


def test_retention_removes_old_records_and_their_images(
    world: Exchange, settings: Settings
) -> None:
    removed = retention_run(settings)

    assert [(r["product"], r["records"], r["images"]) for r in removed] == [(SHORT, 2, 1)]
    cutoff = parse_rfc3339(removed[0]["before"])
    assert abs(cutoff - (datetime.now(UTC) - timedelta(days=30))) < timedelta(hours=1)
    assert ids(world, SHORT) == ["cap-000003", "cap-000004", "cap-000005"]
    assert ids(world, LONG) == [f"cap-{n:06d}" for n in range(1, 6)]
    assert (count(settings, "record", SHORT), count(settings, "record_image", SHORT)) == (3, 1)
    assert count(settings, "record_image", LONG) == 1
    for n in OLD:
        gone = world.get("police", path(SHORT, f"cap-{n:06d}"), params=LAW)
        problem(gone, 404, "not_found")
    problem(world.get("police", path(SHORT, "cap-000001") + "/image", params=LAW), 404, "not_found")
    kept = world.get("police", path(SHORT, "cap-000003") + "/image", params=LAW)
    assert kept.content == photo(3)[0]


def test_event_time_decides_over_publication_time(world: Exchange, settings: Settings) -> None:
    retention_run(settings)
    # Published 400 days ago by its row, captured 5 days ago: kept.
    one = ok(world.get("police", path(SHORT, "cap-000005"), params=LAW))
    assert one["record"]["captured_at"] == short_lived(5)["captured_at"]


def test_each_removal_is_audited_with_its_count(world: Exchange, settings: Settings) -> None:
    removed = retention_run(settings)

    (entry,) = audit(world, action="retention")
    assert (entry["decision"], entry["product"], entry["actor"]) == ("allow", SHORT, None)
    assert entry["record_count"] == 2
    assert entry["records"] == [[1, 2]]
    assert entry["details"] == {"records": 2, "images": 1, "cutoff": removed[0]["before"]}
    assert "30 days" in entry["reason"]


def test_a_second_run_removes_nothing_and_writes_no_entry(
    world: Exchange, settings: Settings
) -> None:
    retention_run(settings)
    assert retention_run(settings) == []

    assert len(audit(world, action="retention")) == 1
    assert ids(world, SHORT) == ["cap-000003", "cap-000004", "cap-000005"]


def test_a_record_without_event_time_is_judged_by_its_publication_time(
    exchange: Exchange, settings: Settings
) -> None:
    definition = captures_product(UNTIMED, retention_days=30)
    definition["fields"] = [f for f in definition["fields"] if f["type"] != "timestamp"]
    exchange.register("fleet", definition)
    untimed = [{k: v for k, v in capture(n).items() if k != "captured_at"} for n in range(1, 4)]
    assert ok(exchange.publish("fleet", UNTIMED, untimed))["accepted"] == 3
    published_long_ago(settings, UNTIMED, "cap-000002", days=31)

    removed = retention_run(settings)

    assert [(r["product"], r["records"]) for r in removed] == [(UNTIMED, 1)]
    assert ids(exchange, UNTIMED) == ["cap-000001", "cap-000003"]


def test_the_server_sweeps_on_its_own(world: Exchange, settings: Settings) -> None:
    fast = Settings(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        retention_interval_seconds=0.2,
    )
    with TestClient(create_app(fast), raise_server_exceptions=False):
        deadline = time.monotonic() + 15
        while count(settings, "record", SHORT) == 5 and time.monotonic() < deadline:
            time.sleep(0.1)

    assert ids(world, SHORT) == ["cap-000003", "cap-000004", "cap-000005"]
    assert count(settings, "record_image", SHORT) == 1
    (entry,) = audit(world, action="retention")
    assert (entry["product"], entry["details"]["records"]) == (SHORT, 2)
    assert entry["client"] == "server"


# --- erasing a product --------------------------------------------------------------------------

ERASED = LONG
KEPT = "other-captures"
REASON = "court order 2026-117: unlawfully collected"


@pytest.fixture
def two_products(exchange: Exchange) -> Exchange:
    """Two products, each with three records, two of them with images."""
    for slug in (ERASED, KEPT):
        exchange.register("fleet", captures_product(slug))
        batch = [with_photo(capture(n), n) if n < 3 else capture(n) for n in (1, 2, 3)]
        assert ok(exchange.publish("fleet", slug, batch))["accepted"] == 3
        for n in (1, 2):
            assert upload(exchange, slug, n).status_code == 200
    return exchange


def erase(settings: Settings, slug: str = ERASED) -> dict[str, Any]:
    erased: dict[str, Any] = json.loads(
        run_cli(settings, "product", "erase", slug, "--reason", REASON)
    )
    return erased


def data_key(settings: Settings, slug: str) -> dict[str, Any]:
    with database(settings) as connection:
        row = connection.execute(
            text("SELECT * FROM data_key WHERE product_id = :id"),
            {"id": product_id(settings, slug)},
        ).one()
    return dict(row._mapping)


def sealed(settings: Settings, slug: str) -> list[bytes]:
    with database(settings) as connection:
        rows = connection.execute(
            text("SELECT sealed FROM record WHERE product_id = :id ORDER BY seq"),
            {"id": product_id(settings, slug)},
        )
        return [bytes(row[0]) for row in rows]


def test_erasing_destroys_the_key_and_deletes_records_and_images(
    two_products: Exchange, settings: Settings
) -> None:
    assert erase(settings) == {"product": ERASED, "records": 3, "images": 2}

    key = data_key(settings, ERASED)
    assert (key["wrapped"], key["master_key_id"]) == (None, None)
    assert key["destroyed_at"] is not None
    assert key["destroyed_reason"] == REASON
    assert count(settings, "record", ERASED) == 0
    assert count(settings, "record_image", ERASED) == 0


def test_an_erased_product_answers_gone_to_every_read_and_write(
    two_products: Exchange, settings: Settings
) -> None:
    erase(settings)
    exchange, records = two_products, path(ERASED)
    attempts = {
        "police reads": exchange.get("police", records, params=LAW),
        "mapco reads": exchange.get("mapco", records, params=NAVIGATION),
        "owner reads": exchange.get("fleet", records, params=NAVIGATION),
        "one record": exchange.get("police", path(ERASED, "cap-000001"), params=LAW),
        "an image": exchange.get("police", path(ERASED, "cap-000001") + "/image", params=LAW),
        "a redacted image": exchange.get(
            "mapco", path(ERASED, "cap-000001") + "/image", params=NAVIGATION
        ),
        "publishing": exchange.publish("fleet", ERASED, [capture(9)]),
        "republishing": exchange.publish("fleet", ERASED, [capture(1)]),
        "an upload": upload(exchange, ERASED, 3),
        "re-identification": exchange.post(
            "police",
            f"/v1/products/{ERASED}/reidentify",
            params=LAW,
            json={
                "pseudonym": "ps_" + "a" * 26,
                "consumer": "lingnan-maps",
                "case_reference": "case 2026-0042",
            },
        ),
        "aggregates": exchange.get(
            "mapco",
            f"/v1/products/{ERASED}/aggregates",
            params=NAVIGATION | {"by": "violation_type"},
        ),
    }
    for what, response in attempts.items():
        body = problem(response, 410, "product_erased")
        assert "erased" in body["detail"], what
        assert "粤A" not in response.text, what
    assert count(settings, "record", ERASED) == 0
    # The catalog entry stays, as the record that the product existed.
    assert exchange.get("mapco", f"/v1/products/{ERASED}").status_code == 200


def test_an_erasure_is_audited(two_products: Exchange, settings: Settings) -> None:
    erase(settings)

    (entry,) = audit(two_products, action="product.erase")
    assert (entry["decision"], entry["product"], entry["reason"]) == ("allow", ERASED, REASON)
    assert entry["record_count"] == 3
    details = entry["details"]
    master = details.pop("master_key")
    assert details == {"records": 3, "images": 2, "data_key": "destroyed"}
    assert master["from"] != master["to"]  # the master that wrapped its key was rotated out
    assert entry["client"] == "cli"
    # The product's history before the erasure stays in the log.
    assert [e["action"] for e in audit(two_products, product=ERASED, action="publish")]


def test_a_second_erasure_fails(two_products: Exchange, settings: Settings) -> None:
    erase(settings)

    again = invoke(settings, "product", "erase", ERASED, "--reason", REASON)

    assert again.exit_code != 0
    assert len(audit(two_products, action="product.erase")) == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["product", "erase", "no-such-product", "--reason", REASON], id="unknown"),
        pytest.param(["product", "erase", ERASED, "--reason", "   "], id="blank-reason"),
        pytest.param(["product", "erase", ERASED], id="no-reason"),
    ],
)
def test_an_erasure_that_cannot_be_done_changes_nothing(
    two_products: Exchange, settings: Settings, args: list[str]
) -> None:
    assert invoke(settings, *args).exit_code != 0

    assert count(settings, "record", ERASED) == 3
    assert data_key(settings, ERASED)["wrapped"] is not None
    assert audit(two_products, action="product.erase") == []


def test_erasing_one_product_leaves_the_others_untouched(
    two_products: Exchange, settings: Settings
) -> None:
    before = data_key(settings, KEPT)
    sealed_before = sealed(settings, KEPT)
    erase(settings)

    # Its key moved to the new master with the rotation the erasure makes; its records
    # were not re-encrypted.
    after = data_key(settings, KEPT)
    assert after["master_key_id"] != before["master_key_id"] and after["wrapped"] is not None
    assert sealed(settings, KEPT) == sealed_before
    assert ids(two_products, KEPT) == ["cap-000001", "cap-000002", "cap-000003"]
    page = ok(two_products.get("police", path(KEPT), params=LAW))
    assert [r["plate"] for r in page["records"]] == [capture(n)["plate"] for n in (1, 2, 3)]
    for n in (1, 2):
        served = two_products.get("police", path(KEPT, f"cap-{n:06d}") + "/image", params=LAW)
        assert served.content == photo(n)[0]
    assert ok(two_products.publish("fleet", KEPT, [capture(4)]))["accepted"] == 1
    assert (count(settings, "record", KEPT), count(settings, "record_image", KEPT)) == (4, 2)


def test_a_product_erased_before_any_record_refuses_its_first(
    exchange: Exchange, settings: Settings
) -> None:
    exchange.register("fleet", captures_product(ERASED))
    assert erase(settings) == {"product": ERASED, "records": 0, "images": 0}

    problem(exchange.publish("fleet", ERASED, [capture(1)]), 410, "product_erased")
    problem(exchange.get("police", path(ERASED), params=LAW), 410, "product_erased")
    assert invoke(settings, "product", "erase", ERASED, "--reason", REASON).exit_code != 0


def master_files(settings: Settings) -> list[Path]:
    return sorted(settings.resolved_master_key_dir.glob("*.key"))


def test_a_backup_of_an_erased_product_cannot_be_opened_with_the_keys_that_remain(
    two_products: Exchange, settings: Settings
) -> None:
    """Crypto-shredding's promise: once erased, no copy of the product's ciphertext —
    such as last night's database backup, which holds its wrapped data key — opens
    with what the exchange still keeps."""
    backup_key = data_key(settings, ERASED)
    old_master = (
        settings.resolved_master_key_dir / f"{backup_key['master_key_id']}.key"
    ).read_bytes()
    with database(settings) as connection:
        backup_rows = connection.execute(
            select(Record.record_id, Record.sealed, Record.content, Record.blind).where(
                Record.product_id == product_id(settings, ERASED)
            )
        ).all()
    erase(settings)

    recovered = []
    for master_file in settings.resolved_master_key_dir.glob("*.key"):
        try:
            plain = unwrap(
                master_file.read_bytes(),
                backup_key["master_key_id"],
                backup_key["product_id"],
                bytes(backup_key["wrapped"]),
            )
        except SealError:
            continue
        key = DataKey(plain, backup_key["product_id"])
        recovered += [
            key.open_fields(record_id, sealed, [content, blind])["plate"]
            for record_id, sealed, content, blind in backup_rows
        ]
    assert recovered == []
    assert backup_key["master_key_id"] not in {path.stem for path in master_files(settings)}
    # The backup itself was sound: with the master key it was made under, it opened.
    plain = unwrap(
        old_master, backup_key["master_key_id"], backup_key["product_id"], backup_key["wrapped"]
    )
    opened = [
        DataKey(plain, backup_key["product_id"]).open_fields(r, sealed, [content, blind])["plate"]
        for r, sealed, content, blind in backup_rows
    ]
    assert opened == [capture(n)["plate"] for n in (1, 2, 3)]
