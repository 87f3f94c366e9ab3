"""The envelope that keeps records at rest: sealed fields and images open only under
their key, for their product and record; wrapped data keys only under their master
and product; digests are keyed and separated by purpose. Pure; keys made here."""

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from exchange.privacy.sealing import (
    KEY_BYTES,
    DataKey,
    SealError,
    canonical_json,
    new_key,
    unwrap,
    wrap,
)

PRODUCT = 7
RECORD = "cap-000001"
FIELDS: dict[str, Any] = {
    "plate": "粤A·10001",
    "location": {"lat": 23.1246, "lon": 113.3612},
    "driver_note": "driver looked tired",
    "photo": {"ref": "captures/cap-000001.jpg", "boxes": []},
}
IMAGE = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
MASTER_ID = "mk-0123456789abcdef"
# What the record's row keeps in the clear, which its sealed part is bound to.
CLEAR = [{"captured_at": "2026-11-21T08:01:00Z", "violation_type": "red_light"}, None]


@pytest.fixture
def material() -> bytes:
    return new_key()


@pytest.fixture
def key(material: bytes) -> DataKey:
    return DataKey(material, PRODUCT)


def sealed_fields(key: DataKey) -> bytes:
    return key.seal_fields(RECORD, FIELDS, CLEAR)


def sealed_image(key: DataKey) -> bytes:
    return key.seal_image(RECORD, IMAGE)


# --- round trips --------------------------------------------------------------------------------


def test_fields_round_trip(key: DataKey) -> None:
    assert key.open_fields(RECORD, key.seal_fields(RECORD, FIELDS, CLEAR), CLEAR) == FIELDS


def test_an_image_round_trips_byte_for_byte(key: DataKey) -> None:
    assert key.open_image(RECORD, key.seal_image(RECORD, IMAGE)) == IMAGE


def test_the_same_key_bytes_open_what_another_instance_sealed() -> None:
    material = new_key()
    blob = DataKey(material, PRODUCT).seal_fields(RECORD, FIELDS, CLEAR)
    assert DataKey(material, PRODUCT).open_fields(RECORD, blob, CLEAR) == FIELDS


def test_the_sealed_blob_holds_no_plaintext(key: DataKey) -> None:
    blob = sealed_fields(key)
    for secret in ("粤A·10001", "23.1246", "113.3612", "looked tired", "captures/"):
        assert secret.encode() not in blob
    assert IMAGE[:64] not in sealed_image(key)


def test_a_blob_is_version_nonce_ciphertext_and_tag(key: DataKey) -> None:
    image = sealed_image(key)
    assert image[:1] == b"\x01"
    assert len(image) == 1 + 12 + len(IMAGE) + 16


def test_two_seals_of_the_same_data_use_different_nonces(key: DataKey) -> None:
    first, second = sealed_fields(key), sealed_fields(key)
    assert first[1:13] != second[1:13]
    assert first != second
    assert key.open_fields(RECORD, first, CLEAR) == key.open_fields(RECORD, second, CLEAR) == FIELDS
    assert sealed_image(key)[1:13] != sealed_image(key)[1:13]


# --- a blob opens only where it was sealed ------------------------------------------------------

# Each attempt gets the key material the blob was sealed with and the blob.
Opener = Callable[[bytes, bytes], Any]
ELSEWHERE: list[Any] = [
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT).open_fields("cap-000002", blob, CLEAR),
        id="another-record",
    ),
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT).open_fields(RECORD + " ", blob, CLEAR),
        id="record-id-plus-space",
    ),
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT).open_fields("", blob, CLEAR), id="empty-record-id"
    ),
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT + 1).open_fields(RECORD, blob, CLEAR),
        id="same-key-another-product",
    ),
    pytest.param(
        lambda _k, blob: DataKey(new_key(), PRODUCT).open_fields(RECORD, blob, CLEAR),
        id="another-key",
    ),
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT).open_image(RECORD, blob), id="fields-opened-as-image"
    ),
]


@pytest.mark.parametrize("attempt", ELSEWHERE)
def test_sealed_fields_do_not_open_anywhere_else(
    material: bytes, key: DataKey, attempt: Opener
) -> None:
    blob = sealed_fields(key)
    with pytest.raises(SealError):
        attempt(material, blob)


IMAGE_ELSEWHERE: list[Any] = [
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT).open_image("cap-000002", blob), id="another-record"
    ),
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT + 1).open_image(RECORD, blob),
        id="same-key-another-product",
    ),
    pytest.param(
        lambda _k, blob: DataKey(new_key(), PRODUCT).open_image(RECORD, blob), id="another-key"
    ),
    pytest.param(
        lambda k, blob: DataKey(k, PRODUCT).open_fields(RECORD, blob, CLEAR),
        id="image-opened-as-fields",
    ),
]


@pytest.mark.parametrize("attempt", IMAGE_ELSEWHERE)
def test_a_sealed_image_does_not_open_anywhere_else(
    material: bytes, key: DataKey, attempt: Opener
) -> None:
    blob = sealed_image(key)
    with pytest.raises(SealError):
        attempt(material, blob)


def test_place_parts_cannot_be_shifted_between_product_and_record() -> None:
    """Product 1 with record "2x" and product 12 with record "x" must not share a place."""
    material = new_key()
    blob = DataKey(material, 1).seal_fields("2x", FIELDS, CLEAR)
    with pytest.raises(SealError):
        DataKey(material, 12).open_fields("x", blob, CLEAR)


# --- tampering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seal", [sealed_fields, sealed_image], ids=["fields", "image"])
def test_any_flipped_bit_is_refused(key: DataKey, seal: Callable[[DataKey], bytes]) -> None:
    blob = seal(key)

    def opener(record_id: str, blob: bytes) -> Any:
        if seal is sealed_fields:
            return key.open_fields(record_id, blob, CLEAR)
        return key.open_image(record_id, blob)

    for position in range(len(blob)):
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[position] ^= bit
            with pytest.raises(SealError):
                opener(RECORD, bytes(tampered))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda blob: blob[:-1], id="last-byte-cut"),
        pytest.param(lambda blob: blob + b"\x00", id="byte-appended"),
        pytest.param(lambda blob: blob[:29], id="header-and-tag-only"),
        pytest.param(lambda blob: blob[:13], id="header-only"),
        pytest.param(lambda blob: b"", id="empty"),
        pytest.param(lambda blob: blob[:1] + blob[13:], id="nonce-removed"),
    ],
)
def test_a_cut_or_grown_blob_is_refused(key: DataKey, change: Callable[[bytes], bytes]) -> None:
    with pytest.raises(SealError):
        key.open_fields(RECORD, change(sealed_fields(key)), CLEAR)


@pytest.mark.parametrize("version", [b"\x00", b"\x02", b"\xff"])
def test_an_unknown_version_byte_is_refused(key: DataKey, version: bytes) -> None:
    blob = sealed_fields(key)
    with pytest.raises(SealError, match="version"):
        key.open_fields(RECORD, version + blob[1:], CLEAR)


def test_sealed_content_that_is_not_an_object_is_refused(key: DataKey) -> None:
    blob = key.seal_fields(RECORD, ["not", "an", "object"], CLEAR)  # type: ignore[arg-type]
    with pytest.raises(SealError):
        key.open_fields(RECORD, blob, CLEAR)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_data_key_is_32_bytes(size: int) -> None:
    with pytest.raises(ValueError):
        DataKey(b"k" * size, PRODUCT)


def test_new_keys_are_32_random_bytes() -> None:
    keys = {new_key() for _ in range(20)}
    assert len(keys) == 20
    assert {len(k) for k in keys} == {KEY_BYTES} == {32}


# --- wrapping data keys -------------------------------------------------------------------------


def test_wrap_unwrap_round_trip() -> None:
    master, data_key = new_key(), new_key()
    wrapped = wrap(master, MASTER_ID, PRODUCT, data_key)
    assert data_key not in wrapped
    assert len(wrapped) == 1 + 12 + 32 + 16
    assert unwrap(master, MASTER_ID, PRODUCT, wrapped) == data_key
    assert wrap(master, MASTER_ID, PRODUCT, data_key) != wrapped  # a fresh nonce each time


@pytest.mark.parametrize(
    ("master_id", "product_id", "other_master"),
    [
        pytest.param("mk-fedcba9876543210", PRODUCT, False, id="another-master-id"),
        pytest.param(MASTER_ID, PRODUCT + 1, False, id="another-product"),
        pytest.param(MASTER_ID, 17, False, id="product-with-a-shared-prefix"),
        pytest.param(MASTER_ID, PRODUCT, True, id="another-master-key"),
    ],
)
def test_a_wrapped_key_opens_only_for_its_master_and_product(
    master_id: str, product_id: int, other_master: bool
) -> None:
    master = new_key()
    wrapped = wrap(master, MASTER_ID, PRODUCT, new_key())
    with pytest.raises(SealError):
        unwrap(new_key() if other_master else master, master_id, product_id, wrapped)


def test_a_tampered_wrapped_key_is_refused() -> None:
    master = new_key()
    wrapped = wrap(master, MASTER_ID, PRODUCT, new_key())
    for position in range(len(wrapped)):
        tampered = bytearray(wrapped)
        tampered[position] ^= 0x01
        with pytest.raises(SealError):
            unwrap(master, MASTER_ID, PRODUCT, bytes(tampered))


@pytest.mark.parametrize(
    ("master", "data_key"),
    [(b"m" * 16, b"d" * 32), (b"m" * 32, b"d" * 16), (b"m" * 32, b""), (b"", b"d" * 32)],
)
def test_only_32_byte_keys_are_wrapped(master: bytes, data_key: bytes) -> None:
    with pytest.raises(ValueError):
        wrap(master, MASTER_ID, PRODUCT, data_key)


# --- keyed digests ------------------------------------------------------------------------------

CONTENT: dict[str, Any] = {"violation_type": "red_light", **FIELDS}


def test_digests_are_deterministic_for_one_key() -> None:
    material = new_key()
    one, again = DataKey(material, PRODUCT), DataKey(material, PRODUCT)
    assert one.content_hash(CONTENT) == one.content_hash(CONTENT) == again.content_hash(CONTENT)
    assert one.blind("plate", "粤A·10001") == again.blind("plate", "粤A·10001")
    reordered = dict(reversed(list(CONTENT.items())))
    assert one.content_hash(reordered) == one.content_hash(CONTENT)


def test_digests_differ_between_keys_and_between_products_keys() -> None:
    """Each product has its own data key, so two products never share a digest."""
    keys = [DataKey(new_key(), PRODUCT), DataKey(new_key(), PRODUCT), DataKey(new_key(), 8)]
    assert len({key.content_hash(CONTENT) for key in keys}) == 3
    assert len({key.blind("plate", "粤A·10001") for key in keys}) == 3


def test_content_hash_follows_every_change_of_content(key: DataKey) -> None:
    digests = {
        key.content_hash(CONTENT),
        key.content_hash(CONTENT | {"plate": "粤A·10002"}),
        key.content_hash(CONTENT | {"speed_kmh": 42.5}),
        key.content_hash({k: v for k, v in CONTENT.items() if k != "driver_note"}),
    }
    assert len(digests) == 4


def test_the_blind_index_differs_by_field_value_and_type(key: DataKey) -> None:
    digests = [
        key.blind("plate", "粤A·10001"),
        key.blind("driver_note", "粤A·10001"),
        key.blind("plate", "粤A·10002"),
        key.blind("plate", "粤A10001"),
        key.blind("lane", 2),
        key.blind("lane", "2"),
        key.blind("night", True),
        key.blind("night", "true"),
        key.blind("night", 1),
    ]
    assert len(set(digests)) == len(digests)


def test_the_two_digests_use_separate_keys(key: DataKey) -> None:
    """Fed the very bytes the blind index digests, the content hash gives another value."""
    same_input: Any = ["plate", "粤A·10001"]  # canonical_json of this is blind's input
    assert key.content_hash(same_input)[:32] != key.blind("plate", "粤A·10001")


def test_no_digest_is_an_unkeyed_hash_of_the_value(key: DataKey) -> None:
    plate = "粤A·10001"
    unkeyed = {
        hashlib.sha256(plate.encode()).hexdigest(),
        hashlib.sha256(canonical_json(plate)).hexdigest(),
        hashlib.sha256(canonical_json(["plate", plate])).hexdigest(),
        hashlib.sha256(canonical_json(CONTENT)).hexdigest(),
        hashlib.sha256(canonical_json({"plate": plate})).hexdigest(),
    }
    blind = key.blind("plate", plate)
    assert blind not in unkeyed
    assert not any(digest.startswith(blind) for digest in unkeyed)
    assert key.content_hash(CONTENT) not in unkeyed
    assert key.content_hash({"plate": plate}) not in unkeyed


def test_canonical_json_is_one_byte_form() -> None:
    assert canonical_json({"b": 1, "a": "粤"}) == '{"a":"粤","b":1}'.encode()
    assert canonical_json({"a": "粤", "b": 1}) == canonical_json({"b": 1, "a": "粤"})


@pytest.mark.parametrize(
    "clear",
    [
        pytest.param([{**CLEAR[0], "violation_type": "bus_lane"}, None], id="clear-field-edited"),
        pytest.param([CLEAR[0], {"plate": "0" * 32}], id="blind-index-added"),
        pytest.param([{}, None], id="clear-fields-removed"),
    ],
)
def test_sealed_fields_do_not_open_when_the_row_changed_around_them(
    key: DataKey, clear: Any
) -> None:
    with pytest.raises(SealError):
        key.open_fields(RECORD, sealed_fields(key), clear)
