"""Encryption at rest, seen from the API and from the tables themselves.

Protected fields (personal, sensitive, location, image) and images leave the API as
before, but the database holds only ciphertext, keyed digests and wrapped keys; a
sealed value moved or changed in the database is refused (500 `integrity`) rather
than shown; rotating the master key re-wraps data keys and touches no record.
"""

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connectors.fleet.photos import scene
from exchange.privacy.sealing import unwrap
from exchange.settings import Settings
from tests.conftest import Exchange, run_cli
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, cell_of, pseudonym_for
from tests.responses import ok, problem
from tests.storage import database

PRODUCT = "violation-captures"
RECORDS = f"/v1/products/{PRODUCT}/records"
LAW = {"purpose": "law_enforcement"}  # police: the raw view
NAVIGATION = {"purpose": "navigation_safety"}  # mapco: the protected view

# Sealed fields that can be filtered on besides text: an integer and a boolean.
SEALED_FLAGS = [
    {"name": "occupants", "type": "integer", "sensitivity": "personal", "required": False},
    {"name": "seatbelt_off", "type": "boolean", "sensitivity": "sensitive", "required": False},
]
REPEATED = capture(3)["plate"]  # 粤A·10003, also the plate of record 13
IMAGED = (1, 2, 3)


def definition(slug: str = PRODUCT) -> dict[str, Any]:
    product = captures_product(slug)
    product["fields"] = [*product["fields"], *SEALED_FLAGS]
    return product


@cache
def photo(n: int) -> tuple[bytes, list[dict[str, Any]]]:
    data, boxes = scene(n, capture(n)["plate"])
    return data, [box.as_dict() for box in boxes]


def published(n: int) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "lane": n % 3 + 1,
        "night": n % 4 == 0,
        "occupants": n % 4 + 1,
        "seatbelt_off": n % 3 == 0,
    }
    if n % 5 == 0:
        changes["driver_note"] = f"driver {n} looked tired"
    if n == 13:
        changes["plate"] = REPEATED
    if n == 14:
        changes["plate"] = REPEATED + "0"  # shares a prefix with the repeated plate
    if n in IMAGED:
        changes["photo"] = {"ref": f"captures/cap-{n:06d}.jpg", "boxes": photo(n)[1]}
    return capture(n, **changes)


BATCH = [published(n) for n in range(1, 26)]
PLATES = sorted({record["plate"] for record in BATCH})


def upload(exchange: Exchange, n: int, product: str = PRODUCT) -> Any:
    return exchange.put(
        "fleet",
        f"/v1/products/{product}/records/cap-{n:06d}/image",
        content=photo(n)[0],
        headers={"Content-Type": "image/jpeg"},
    )


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The captures product (with two sealed flags), 25 records, three with images."""
    exchange.register("fleet", definition())
    response = exchange.publish("fleet", PRODUCT, BATCH)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 25
    for n in IMAGED:
        stored = upload(exchange, n)
        assert stored.status_code == 200, stored.text
    return exchange


def read(exchange: Exchange, who: str, purpose: dict[str, str], **params: Any) -> Any:
    return exchange.get(who, RECORDS, params={**purpose, "limit": 1000, **params})


def ids(page: dict[str, Any]) -> list[str]:
    return [record["id"] for record in page["records"]]


def ids_where(test: Any) -> list[str]:
    return [record["id"] for record in BATCH if test(record)]


def as_published(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("seq", "published_at")}


def image(exchange: Exchange, who: str, n: int, purpose: dict[str, str]) -> Any:
    return exchange.get(who, f"{RECORDS}/cap-{n:06d}/image", params=purpose)


# --- the tables, read directly ------------------------------------------------------------------


def table(settings: Settings, name: str) -> list[dict[str, Any]]:
    with database(settings) as connection:
        return [dict(row._mapping) for row in connection.execute(text(f'SELECT * FROM "{name}"'))]


def product_id(settings: Settings, slug: str = PRODUCT) -> int:
    with database(settings) as connection:
        found = connection.execute(
            text("SELECT id FROM product WHERE slug = :slug"), {"slug": slug}
        ).scalar_one()
    return int(found)


def forms(value: Any) -> list[bytes]:
    """Every byte form a stored value could be searched in."""
    if value is None:
        return []
    if isinstance(value, bytes | bytearray | memoryview):
        return [bytes(value)]
    if isinstance(value, dict | list):
        return [
            json.dumps(value, ensure_ascii=False).encode(),
            json.dumps(value).encode(),
        ]
    return [str(value).encode()]


def needles() -> dict[str, bytes]:
    """What must not be found at rest: plates (as UTF-8 and as JSON escapes), the
    sensitive note, coordinates, image references and image bytes."""
    found: dict[str, bytes] = {}
    for plate in PLATES:
        found[plate] = plate.encode()
        found[f"{plate} (escaped)"] = json.dumps(plate)[1:-1].encode()
    found["driver note"] = b"looked tired"
    found["latitude"] = b"23.1246"
    found["longitude"] = b"113.3612"
    found["image reference"] = b"captures/cap-"
    for n in IMAGED:
        data = photo(n)[0]
        found[f"image {n} head"] = data[:64]
        found[f"image {n} middle"] = data[len(data) // 2 : len(data) // 2 + 64]
    return found


def as_json(value: Any) -> Any:
    """A JSON column's value: SQLite gives its text, PostgreSQL the decoded value."""
    return json.loads(value) if isinstance(value, str) else value


def sqlite_files(settings: Settings) -> list[Path]:
    database_file = Path(str(make_url(settings.resolved_database_url).database))
    candidates = [database_file, *(Path(f"{database_file}{s}") for s in ("-wal", "-journal"))]
    return [path for path in candidates if path.exists()]


PLAIN_FIELDS = {"captured_at", "violation_type", "speed_kmh", "lane", "night"}
SEALED_FIELDS = {"plate", "location", "driver_note", "photo", "occupants", "seatbelt_off"}


def test_no_protected_value_is_stored_in_the_clear(world: Exchange, settings: Settings) -> None:
    # The reads a day brings, so that anything they log is at rest too.
    ok(read(world, "police", LAW))
    ok(read(world, "police", LAW, filter=f"plate={REPEATED}"))
    ok(read(world, "mapco", NAVIGATION))
    assert image(world, "police", 1, LAW).status_code == 200
    assert image(world, "mapco", 1, NAVIGATION).status_code == 200

    searched = needles()
    for name in ("record", "record_image", "data_key"):
        rows = table(settings, name)
        assert rows, name
        for row in rows:
            for column, value in row.items():
                for form in forms(value):
                    for what, needle in searched.items():
                        assert needle not in form, (name, column, what)

    if settings.resolved_database_url.startswith("sqlite"):
        files = sqlite_files(settings)
        everything = b"".join(path.read_bytes() for path in files)
        assert b"violation_type" in everything  # the scan does see the records
        for what, needle in searched.items():
            assert needle not in everything, what


def test_the_record_row_keeps_only_plain_fields_in_content(
    world: Exchange, settings: Settings
) -> None:
    rows = {row["record_id"]: row for row in table(settings, "record")}
    assert len(rows) == 25
    for original in BATCH:
        row = rows[original["id"]]
        content = as_json(row["content"])
        assert content == {k: v for k, v in original.items() if k in PLAIN_FIELDS}
        assert not SEALED_FIELDS & set(content)
        sealed = bytes(row["sealed"])
        assert sealed[:1] == b"\x01"
        blind = as_json(row["blind"])
        filterable = {"plate", "driver_note", "occupants"} & set(original)  # no booleans
        assert set(blind) == filterable
        assert all(len(d) == 32 and int(d, 16) >= 0 for d in blind.values())
        assert len(row["content_hash"]) == 64
        unkeyed = hashlib.sha256(original["plate"].encode()).hexdigest()
        assert unkeyed not in row["content_hash"] and blind["plate"] not in unkeyed
    # One plate, one digest: the blind index is what a filter matches.
    digests = [as_json(rows[f"cap-0000{n}"]["blind"])["plate"] for n in ("03", "13", "14")]
    assert digests[0] == digests[1] != digests[2]


def test_images_are_stored_as_ciphertext(world: Exchange, settings: Settings) -> None:
    stored = {row["record_id"]: row for row in table(settings, "record_image")}
    assert set(stored) == {f"cap-{n:06d}" for n in IMAGED}
    for n in IMAGED:
        data, row = photo(n)[0], stored[f"cap-{n:06d}"]
        sealed = bytes(row["sealed"])
        assert sealed[:1] == b"\x01" and not sealed.startswith(b"\xff\xd8")
        assert len(sealed) == len(data) + 1 + 12 + 16
        assert row["size"] == len(data)
        assert all(data[start : start + 16] not in sealed for start in range(0, len(data), 997))


def test_the_data_key_is_stored_only_wrapped(world: Exchange, settings: Settings) -> None:
    (row,) = table(settings, "data_key")
    assert row["product_id"] == product_id(settings)
    wrapped = bytes(row["wrapped"])
    assert len(wrapped) == 1 + 12 + 32 + 16
    master_file = settings.resolved_master_key_dir / f"{row['master_key_id']}.key"
    assert master_file.stat().st_mode & 0o777 == 0o600
    data_key = unwrap(master_file.read_bytes(), row["master_key_id"], row["product_id"], wrapped)
    assert data_key not in wrapped
    for other in table(settings, "record"):
        assert data_key not in bytes(other["sealed"])


# --- reading back -------------------------------------------------------------------------------


def test_the_police_read_every_record_exactly_as_published(world: Exchange) -> None:
    page = ok(read(world, "police", LAW))
    assert page["view"] == "raw"
    assert [as_published(record) for record in page["records"]] == BATCH
    for n in (3, 13, 14):
        one = ok(world.get("police", f"{RECORDS}/cap-{n:06d}", params=LAW))
        assert as_published(one["record"]) == published(n)


FILTERS = [
    pytest.param([f"plate={REPEATED}"], lambda r: r["plate"] == REPEATED, id="plate"),
    pytest.param(["plate=粤A10003"], lambda r: False, id="plate-spelled-otherwise"),
    pytest.param(["plate=粤A·1000"], lambda r: False, id="plate-prefix"),
    pytest.param([f"plate={REPEATED}0"], lambda r: r["id"] == "cap-000014", id="longer-plate"),
    pytest.param(
        ["driver_note=driver 5 looked tired"], lambda r: r["id"] == "cap-000005", id="sensitive"
    ),
    pytest.param(["occupants=2"], lambda r: r["occupants"] == 2, id="integer"),
    pytest.param(["occupants=9"], lambda r: False, id="integer-nobody-has"),
    pytest.param(
        [f"plate={REPEATED}", "lane=2"],
        lambda r: r["plate"] == REPEATED and r["lane"] == 2,
        id="sealed-and-plain",
    ),
    pytest.param(
        ["occupants=1", f"plate={REPEATED}"],
        lambda r: r["occupants"] == 1 and r["plate"] == REPEATED,
        id="two-sealed",
    ),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERS)
def test_the_police_filter_on_sealed_fields_by_exact_value(
    world: Exchange, filters: list[str], expected: Any
) -> None:
    page = ok(read(world, "police", LAW, filter=filters))
    assert ids(page) == ids_where(expected)
    assert all(as_published(r) in BATCH for r in page["records"])


def test_the_filter_tables_are_not_empty() -> None:
    """Guards the table above: most filters select some records, and not all."""
    assert len(ids_where(lambda r: r["plate"] == REPEATED)) == 2
    assert 0 < len(ids_where(lambda r: r["occupants"] == 2)) < 25
    assert 0 < len(ids_where(lambda r: r["occupants"] == 1)) < 25


def test_a_sealed_boolean_has_no_blind_index_and_cannot_be_filtered_on(world: Exchange) -> None:
    """Two digests would give every value of the column away to a database reader."""
    body = problem(read(world, "police", LAW, filter="seatbelt_off=true"), 400, "bad_request")
    assert "cannot be filtered on" in body["errors"][0]["reason"]


@pytest.mark.parametrize("text", [f"plate={REPEATED}", "occupants=2", "seatbelt_off=true"])
def test_a_protected_view_cannot_filter_on_a_sealed_field(world: Exchange, text: str) -> None:
    body = problem(read(world, "mapco", NAVIGATION, filter=text), 400, "bad_request")
    assert "raw view" in body["errors"][0]["reason"]


def test_the_mapco_protected_read_keeps_its_shape(world: Exchange) -> None:
    page = ok(read(world, "mapco", NAVIGATION))

    assert (page["view"], page["label"]) == ("protected", "deidentified")
    assert page["fields"] == {
        "captured_at": "raw",
        "location": "generalized",
        "violation_type": "raw",
        "plate": "pseudonymized",
        "speed_kmh": "raw",
        "lane": "raw",
        "night": "raw",
        "driver_note": "withheld",
        "photo": "redacted",
        "occupants": "pseudonymized",
        "seatbelt_off": "withheld",
    }
    until = page["pseudonyms_until"]
    for shown, original in zip(page["records"], BATCH, strict=True):
        expected = {
            "id": original["id"],
            **{name: original[name] for name in PLAIN_FIELDS},
            "plate": pseudonym_for(
                world.settings, "lingnan-maps", PRODUCT, original["plate"], until
            ),
            "location": cell_of(original["location"]),
            "photo": {
                "ref": original["photo"]["ref"]
                if isinstance(original["photo"], dict)
                else original["photo"],
                "redacted": True,
            },
            "occupants": shown["occupants"],
        }
        assert as_published(shown) == expected
        assert PSEUDONYM.fullmatch(shown["occupants"]), shown
    text_shown = json.dumps(page, ensure_ascii=False)
    assert not any(plate in text_shown for plate in PLATES)
    assert "looked tired" not in text_shown and "boxes" not in text_shown


# --- tampering in the database ------------------------------------------------------------------


def set_sealed(
    settings: Settings, changes: dict[int, bytes | None], column: str = "sealed"
) -> None:
    """Write `sealed` of record rows (by row id) directly."""
    with database(settings) as connection:
        for row_id, value in changes.items():
            connection.execute(
                text(f'UPDATE "record" SET {column} = :value WHERE id = :id'),
                {"value": value, "id": row_id},
            )


def rows_by_record(settings: Settings, slug: str = PRODUCT) -> dict[str, dict[str, Any]]:
    wanted = product_id(settings, slug)
    return {
        row["record_id"]: row for row in table(settings, "record") if row["product_id"] == wanted
    }


def refused_with_nothing_sent(response: Any) -> None:
    body = problem(response, 500, "integrity")
    assert set(body) <= {"type", "title", "status", "detail", "instance"}
    shown = response.text
    assert not any(plate in shown or json.dumps(plate) in shown for plate in PLATES)
    assert "cap-0000" not in shown.replace(body["instance"], "")


TAMPERING = [
    pytest.param("swap", id="two-rows-swapped"),
    pytest.param("flip", id="a-byte-flipped"),
    pytest.param("truncate", id="truncated"),
    pytest.param("foreign", id="the-same-id-from-another-product"),
]


@pytest.mark.parametrize("how", TAMPERING)
def test_a_tampered_sealed_value_fails_the_read_and_sends_nothing(
    world: Exchange, settings: Settings, how: str
) -> None:
    rows = rows_by_record(settings)
    first, second = rows["cap-000001"], rows["cap-000002"]
    blob = bytes(first["sealed"])
    if how == "swap":
        changes = {first["id"]: bytes(second["sealed"]), second["id"]: blob}
    elif how == "flip":
        changes = {first["id"]: blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]}
    elif how == "truncate":
        changes = {first["id"]: blob[:-1]}
    else:
        world.register("fleet", definition("other-captures"))
        assert world.publish("fleet", "other-captures", [published(1)]).status_code == 200
        foreign = rows_by_record(settings, "other-captures")["cap-000001"]
        changes = {first["id"]: bytes(foreign["sealed"])}
    set_sealed(settings, changes)

    refused_with_nothing_sent(read(world, "police", LAW))
    refused_with_nothing_sent(read(world, "mapco", NAVIGATION))
    refused_with_nothing_sent(world.get("police", f"{RECORDS}/cap-000001", params=LAW))
    refused_with_nothing_sent(world.get("mapco", f"{RECORDS}/cap-000001", params=NAVIGATION))
    # Records whose rows were not touched still read.
    untouched = ok(read(world, "police", LAW, filter=f"plate={REPEATED}"))
    assert ids(untouched) == ["cap-000003", "cap-000013"]
    assert ok(world.get("police", f"{RECORDS}/cap-000005", params=LAW))["record"]["plate"]


def test_a_sealed_value_removed_from_its_row_fails_the_read(
    world: Exchange, settings: Settings
) -> None:
    """Setting `sealed` to NULL must not pass off the plain half as the whole record:
    plate, location and photo are required, so the row was tampered with."""
    row = rows_by_record(settings)["cap-000001"]
    set_sealed(settings, {row["id"]: None})

    refused_with_nothing_sent(world.get("police", f"{RECORDS}/cap-000001", params=LAW))
    refused_with_nothing_sent(read(world, "police", LAW))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("content", '{"violation_type": "bus_lane"}', id="clear-fields-edited"),
        pytest.param("blind", '{"plate": "00000000000000000000000000000000"}', id="blind-forged"),
    ],
)
def test_a_row_whose_clear_columns_were_edited_fails_the_read(
    world: Exchange, settings: Settings, column: str, value: str
) -> None:
    """The sealed part is bound to the row's clear columns: an edit there does not
    make the record read differently, it makes it fail."""
    row = rows_by_record(settings)["cap-000001"]
    with database(settings) as connection:
        connection.execute(
            text(f"UPDATE record SET {column} = :value WHERE id = :id"),
            {"value": value, "id": row["id"]},
        )

    refused_with_nothing_sent(world.get("police", f"{RECORDS}/cap-000001", params=LAW))


def test_swapped_images_fail_the_read_and_send_nothing(world: Exchange, settings: Settings) -> None:
    stored = {row["record_id"]: row for row in table(settings, "record_image")}
    first, second = stored["cap-000001"], stored["cap-000002"]
    with database(settings) as connection:
        for row, value in ((first, second["sealed"]), (second, first["sealed"])):
            connection.execute(
                text("UPDATE record_image SET sealed = :value WHERE id = :id"),
                {"value": bytes(value), "id": row["id"]},
            )

    for who, purpose in (("police", LAW), ("mapco", NAVIGATION)):
        response = image(world, who, 1, purpose)
        problem(response, 500, "integrity")
        assert photo(1)[0] not in response.content and photo(2)[0] not in response.content
    assert image(world, "police", 3, LAW).content == photo(3)[0]


# --- rotating the master key --------------------------------------------------------------------


def rotate(settings: Settings) -> dict[str, Any]:
    rotated: dict[str, Any] = json.loads(run_cli(settings, "keys", "rotate"))
    return rotated


def master_files(settings: Settings) -> list[str]:
    return sorted(path.name for path in settings.resolved_master_key_dir.glob("*.key"))


def current_master(settings: Settings) -> str:
    (row,) = table(settings, "key_head")
    current: str = row["current_master_id"]
    return current


def sealed_at_rest(settings: Settings) -> dict[str, Any]:
    return {
        "records": {row["record_id"]: bytes(row["sealed"]) for row in table(settings, "record")},
        "images": {
            row["record_id"]: bytes(row["sealed"]) for row in table(settings, "record_image")
        },
    }


def data_key_row(settings: Settings) -> dict[str, Any]:
    (row,) = table(settings, "data_key")
    return row


def plain_data_key(settings: Settings, row: dict[str, Any]) -> bytes:
    master = (settings.resolved_master_key_dir / f"{row['master_key_id']}.key").read_bytes()
    return unwrap(master, row["master_key_id"], row["product_id"], bytes(row["wrapped"]))


def test_rotating_twice_rewraps_the_data_key_and_re_encrypts_nothing(
    world: Exchange, settings: Settings
) -> None:
    before, key_before = sealed_at_rest(settings), data_key_row(settings)
    original = plain_data_key(settings, key_before)
    first = current_master(settings)
    assert master_files(settings) == [f"{first}.key"]
    assert key_before["master_key_id"] == first

    previous, previous_wrapped = first, bytes(key_before["wrapped"])
    rotations = []
    for _ in range(2):
        rotated = rotate(settings)
        rotations.append(rotated)
        assert rotated["current"] != previous
        assert (rotated["rewrapped"], rotated["retired"]) == (1, [previous])
        assert current_master(settings) == rotated["current"]
        assert master_files(settings) == [f"{rotated['current']}.key"]
        assert (settings.resolved_master_key_dir / f"{rotated['current']}.key").stat().st_mode & (
            0o777
        ) == 0o600

        row = data_key_row(settings)
        assert row["master_key_id"] == rotated["current"]
        assert bytes(row["wrapped"]) != previous_wrapped
        assert row["rewrapped_at"] is not None
        assert plain_data_key(settings, row) == original  # the same data key, re-wrapped
        assert sealed_at_rest(settings) == before  # not one record or image re-encrypted
        previous, previous_wrapped = rotated["current"], bytes(row["wrapped"])

        page = ok(read(world, "police", LAW))
        assert [as_published(record) for record in page["records"]] == BATCH
        for n in IMAGED:
            served = image(world, "police", n, LAW)
            assert served.status_code == 200, served.text
            assert served.content == photo(n)[0]

    entries = audit(world, action="keys.rotate")
    assert [(e["decision"], e["details"]) for e in entries] == [
        ("allow", {"from": first, "to": rotations[0]["current"], "rewrapped": 1}),
        ("allow", {"from": rotations[0]["current"], "to": rotations[1]["current"], "rewrapped": 1}),
    ]


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


def test_a_running_server_follows_a_rotation_made_from_the_command_line(
    world: Exchange, settings: Settings
) -> None:
    # The server has the data key unwrapped and the first master key loaded.
    assert ok(read(world, "police", LAW))["records"]
    rotated = rotate(settings)

    again = world.publish("fleet", PRODUCT, BATCH)
    assert ok(again) | {"rejected": []} == {
        "accepted": 0,
        "unchanged": 25,
        "rejected": [],
        "first_seq": None,
        "last_seq": None,
    }
    changed = world.publish("fleet", PRODUCT, [published(4) | {"speed_kmh": 99.0}])
    assert changed.status_code == 409, changed.text
    added = ok(world.publish("fleet", PRODUCT, [published(26)]))
    assert (added["accepted"], added["last_seq"]) == (1, 26)

    page = ok(read(world, "police", LAW))
    assert [as_published(record) for record in page["records"]] == [*BATCH, published(26)]
    assert ok(read(world, "mapco", NAVIGATION))["records"][25]["id"] == "cap-000026"
    assert image(world, "police", 2, LAW).content == photo(2)[0]
    assert image(world, "mapco", 2, NAVIGATION).status_code == 200

    # A product whose first record comes after the rotation gets a key under the new master.
    world.register("fleet", definition("later-captures"))
    assert ok(world.publish("fleet", "later-captures", [published(1)]))["accepted"] == 1
    later = next(
        row
        for row in table(settings, "data_key")
        if row["product_id"] == product_id(settings, "later-captures")
    )
    assert later["master_key_id"] == rotated["current"]
    rotated_again = rotate(settings)
    assert rotated_again["rewrapped"] == 2
    assert ok(world.get("police", "/v1/products/later-captures/records", params=LAW))["records"]


def test_records_stored_before_encryption_at_rest_are_sealed_by_the_upgrade(
    world: Exchange, settings: Settings
) -> None:
    """A row as migration 0003 left it — every field in the clear, an unkeyed
    content hash — is sealed by `exchange db upgrade` and then reads as before."""
    before = ok(world.get("police", f"{RECORDS}/cap-000002", params=LAW))["record"]
    content = {k: v for k, v in BATCH[1].items() if k != "id"}
    row = rows_by_record(settings)["cap-000002"]
    with database(settings) as connection:
        connection.execute(
            text(
                "UPDATE record SET content = :content, sealed = NULL, blind = NULL,"
                " content_hash = :digest WHERE id = :id"
            ),
            {
                "content": json.dumps(content, ensure_ascii=False),
                "digest": hashlib.sha256(json.dumps(content).encode()).hexdigest(),
                "id": row["id"],
            },
        )

    output = run_cli(settings, "db", "upgrade")

    assert f"{PRODUCT}: 1 records stored before encryption at rest are now sealed" in output
    resealed = rows_by_record(settings)["cap-000002"]
    assert resealed["sealed"] is not None and "plate" not in as_json(resealed["content"])
    assert ok(world.get("police", f"{RECORDS}/cap-000002", params=LAW))["record"] == before
    assert ok(world.publish("fleet", PRODUCT, [BATCH[1]]))["unchanged"] == 1
    entries = ok(world.get("auditor", "/v1/audit/entries", params={"action": "records.seal"}))
    assert [e["entry"]["record_count"] for e in entries["entries"]] == [1]
    assert "records stored before encryption at rest" not in run_cli(settings, "db", "upgrade")


def test_a_product_update_that_protects_a_field_seals_it_in_every_stored_record(
    world: Exchange, settings: Settings
) -> None:
    fields = [
        {**spec, "sensitivity": "personal"} if spec["name"] == "violation_type" else spec
        for spec in definition()["fields"]
    ]
    changed = world.patch("fleet", f"/v1/products/{PRODUCT}", json={"fields": fields})
    assert changed.status_code == 200, changed.text

    assert not any("violation_type" in as_json(row["content"]) for row in table(settings, "record"))
    page = ok(read(world, "police", LAW, filter=["violation_type=red_light"]))
    assert ids(page) == ids_where(lambda r: r["violation_type"] == "red_light") != []
    entries = ok(world.get("auditor", "/v1/audit/entries", params={"action": "product.update"}))
    assert entries["entries"][0]["entry"]["details"]["resealed"] == 25

    # And back in the clear: the column holds it again, and plain filters find it.
    unchanged = [
        {**spec, "sensitivity": "none"} if spec["name"] == "violation_type" else spec
        for spec in fields
    ]
    assert (
        world.patch("fleet", f"/v1/products/{PRODUCT}", json={"fields": unchanged}).status_code
        == 200
    )
    assert all(
        as_json(row["content"])["violation_type"] in ("red_light", "bus_lane")
        for row in table(settings, "record")
    )
    assert ids(ok(read(world, "police", LAW, filter=["violation_type=red_light"]))) == ids(page)
