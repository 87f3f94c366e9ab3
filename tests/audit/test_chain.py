"""The audit log's encoding and chain verification, pure and in memory.

Entries are built exactly as `audit.store.append` builds them (event body → canonical
bytes → leaf hash → chain hash, query columns copied from the body), then damaged
in the ways an attacker or a bug could damage a stored log.
"""

import hashlib
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from audit import canonical_bytes, chain_hash, leaf_hash, verify_chain
from audit.encoding import COLUMN_KEYS, GENESIS
from audit.store import AuditEvent

START = datetime(2026, 11, 28, 8, 15, 2, 500000, tzinfo=UTC)

# --- canonical_bytes -----------------------------------------------------------------


def test_canonical_bytes_sorts_keys_at_every_level() -> None:
    body = {"b": 1, "a": {"z": [3, {"y": 1, "x": 2}], "c": None}}
    assert canonical_bytes(body) == b'{"a":{"c":null,"z":[3,{"x":2,"y":1}]},"b":1}'


def test_canonical_bytes_has_no_insignificant_whitespace() -> None:
    encoded = canonical_bytes({"list": [1, 2, 3], "map": {"k": "v w"}, "t": True})
    assert encoded == b'{"list":[1,2,3],"map":{"k":"v w"},"t":true}'
    assert b" " not in encoded.replace(b"v w", b"")
    assert b"\n" not in encoded


def test_canonical_bytes_is_independent_of_insertion_order() -> None:
    one = {"actor": "a", "decision": "allow", "index": 3}
    other = {"index": 3, "decision": "allow", "actor": "a"}
    assert canonical_bytes(one) == canonical_bytes(other)


def test_canonical_bytes_keeps_non_ascii_as_utf8() -> None:
    encoded = canonical_bytes({"plate": "粤A·10001", "note": "café"})
    assert encoded == '{"note":"café","plate":"粤A·10001"}'.encode()
    assert b"\\u" not in encoded
    assert encoded.decode("utf-8") == '{"note":"café","plate":"粤A·10001"}'


def test_canonical_bytes_refuses_an_empty_body() -> None:
    with pytest.raises(ValueError):
        canonical_bytes({})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_canonical_bytes_refuses_nan_and_infinities(value: float) -> None:
    with pytest.raises(ValueError):
        canonical_bytes({"speed": value})
    with pytest.raises(ValueError):
        canonical_bytes({"nested": {"list": [1.0, value]}})


@pytest.mark.parametrize(
    "value", [{1, 2}, b"raw", datetime(2026, 1, 1, tzinfo=UTC)], ids=["set", "bytes", "datetime"]
)
def test_canonical_bytes_refuses_values_json_cannot_carry_with_value_error(value: object) -> None:
    """The docstring promises ValueError for "a value JSON cannot carry exactly";
    `audit.append` only turns ValueError (not TypeError) into AuditWriteError."""
    with pytest.raises(ValueError):
        canonical_bytes({"details": value})


# --- leaf_hash and chain_hash --------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b'{"a":1}', "粤A".encode(), bytes(range(256))],
    ids=["empty", "braces", "object", "utf8", "all-bytes"],
)
def test_leaf_hash_is_sha256_of_zero_byte_then_entry(data: bytes) -> None:
    assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()
    assert leaf_hash(data) != hashlib.sha256(data).digest()
    assert len(leaf_hash(data)) == 32


def test_chain_hash_is_sha256_of_previous_then_leaf() -> None:
    leaf = leaf_hash(b'{"index":0}')
    assert chain_hash(GENESIS, leaf) == hashlib.sha256(bytes(32) + leaf).digest()
    assert bytes(32) == GENESIS


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_chain_hash_refuses_inputs_that_are_not_32_bytes(size: int) -> None:
    good = bytes(32)
    with pytest.raises(ValueError):
        chain_hash(bytes(size), good)
    with pytest.raises(ValueError):
        chain_hash(good, bytes(size))


def test_chain_hash_refuses_hex_text_of_a_digest() -> None:
    with pytest.raises(ValueError):
        chain_hash(GENESIS.hex().encode(), GENESIS)


# --- building entries as audit.store.append does ---------------------------------------


def _event(n: int) -> AuditEvent:
    allowed = n % 3 != 2
    return AuditEvent(
        action="read",
        decision="allow" if allowed else "deny",
        reason="allowed by rule [x]" if allowed else "purpose 'commercial' is not declared",
        actor=f"client-{n % 2}",
        organization="gz-traffic-police" if n % 2 else "lingnan-maps",
        product="violation-captures",
        purpose="law_enforcement" if allowed else "commercial",
        policy_version="sha256:0123456789abcdef",
        view="raw" if allowed else None,
        record_count=n if allowed else 0,
        records=[[1, n]] if allowed and n else [],
        request_id=f"req-{n}",
        client_address="testclient",
        details={"plate": "粤A·10001", "n": n},
    )


def _stored(index: int, body: dict, previous: bytes) -> SimpleNamespace:
    """One stored entry, as `append` writes its row."""
    encoded = canonical_bytes(body)
    leaf = leaf_hash(encoded)
    linked = chain_hash(previous, leaf)
    columns = {column: body[key] for column, key in COLUMN_KEYS.items()}
    return SimpleNamespace(
        index=index, body=encoded, leaf_hash=leaf.hex(), chain_hash=linked.hex(), **columns
    )


def _log(size: int = 6) -> list[SimpleNamespace]:
    entries, previous = [], GENESIS
    for index in range(size):
        body = _event(index).body(index, START + timedelta(seconds=index))
        entry = _stored(index, body, previous)
        previous = bytes.fromhex(entry.chain_hash)
        entries.append(entry)
    return entries


def _copy(entry: SimpleNamespace, **changes: object) -> SimpleNamespace:
    return SimpleNamespace(**(vars(entry) | changes))


def test_built_entries_match_the_documented_format() -> None:
    entries = _log(3)
    body = json.loads(entries[1].body)
    assert body["index"] == 1
    assert body["time"] == "2026-11-28T08:15:03.500000Z"
    first_leaf = hashlib.sha256(b"\x00" + entries[0].body).digest()
    assert entries[0].leaf_hash == first_leaf.hex()
    assert entries[0].chain_hash == hashlib.sha256(bytes(32) + first_leaf).hexdigest()
    assert entries[2].reason == "purpose 'commercial' is not declared"
    assert entries[2].view is None


def test_event_body_refuses_a_decision_other_than_allow_or_deny() -> None:
    with pytest.raises(ValueError):
        replace(_event(0), decision="maybe").body(0, START)


# --- verify_chain --------------------------------------------------------------------


def test_an_intact_log_verifies() -> None:
    entries = _log()
    assert verify_chain(entries) is None
    assert verify_chain(entries, expected_size=len(entries)) is None
    assert verify_chain(iter(entries), expected_size=len(entries)) is None


def test_an_empty_log_verifies_against_size_zero() -> None:
    assert verify_chain([]) is None
    assert verify_chain([], expected_size=0) is None
    found = verify_chain([], expected_size=2)
    assert found is not None
    assert found.index == 0


def test_the_body_leaf_and_chain_columns_may_be_memoryviews() -> None:
    """Database drivers may hand back bytes-like objects rather than bytes."""
    entries = [_copy(e, body=memoryview(e.body)) for e in _log()]
    assert verify_chain(entries) is None


@pytest.mark.parametrize("altered", [0, 3, 5])
def test_an_altered_body_is_named(altered: int) -> None:
    entries = _log()
    body = bytearray(entries[altered].body)
    position = body.index(b'"reason":"') + len(b'"reason":"')
    body[position] = ord("X") if body[position] != ord("X") else ord("Y")
    entries[altered] = _copy(entries[altered], body=bytes(body))
    found = verify_chain(entries)
    assert found is not None
    assert found.index == altered
    assert "altered" in found.problem


def test_an_altered_body_with_a_recomputed_leaf_hash_is_named() -> None:
    """Rewriting the leaf hash along with the body does not help: the chain breaks."""
    entries = _log()
    body = entries[2].body.replace(b'"decision":"deny"', b'"decision":"allow"')
    assert body != entries[2].body
    entries[2] = _copy(entries[2], body=body, leaf_hash=leaf_hash(body).hex(), decision="allow")
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 2
    assert "link" in found.problem


@pytest.mark.parametrize("removed", [0, 2, 4])
def test_a_removed_entry_is_named(removed: int) -> None:
    entries = _log()
    del entries[removed]
    found = verify_chain(entries)
    assert found is not None
    assert found.index == removed


def test_a_removed_last_entry_is_named_given_the_expected_size() -> None:
    entries = _log()
    size = len(entries)
    del entries[-1]
    assert verify_chain(entries) is None  # the chain alone cannot see a cut tail
    found = verify_chain(entries, expected_size=size)
    assert found is not None
    assert found.index == size - 1


@pytest.mark.parametrize("first", [0, 2, 4])
def test_two_swapped_entries_are_named(first: int) -> None:
    entries = _log()
    entries[first], entries[first + 1] = entries[first + 1], entries[first]
    found = verify_chain(entries)
    assert found is not None
    assert found.index == first


def test_two_swapped_entries_with_swapped_index_columns_are_named() -> None:
    entries = _log()
    a, b = entries[1], entries[2]
    entries[1], entries[2] = _copy(b, index=1), _copy(a, index=2)
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 1


def test_a_forged_entry_inserted_with_made_up_hashes_is_named() -> None:
    entries = _log()
    forged_body = _event(9).body(3, START)
    forged = _stored(3, forged_body, GENESIS)  # chained to the wrong predecessor
    entries.insert(3, forged)
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 3


def test_a_forged_entry_inserted_and_linked_correctly_breaks_its_successor() -> None:
    """A forger who knows the algorithm can link the new entry to its predecessor,
    but the entry displaced by it no longer sits at its own index."""
    entries = _log()
    forged = _stored(3, _event(9).body(3, START), bytes.fromhex(entries[2].chain_hash))
    entries.insert(3, forged)
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 4


def test_a_forged_entry_appended_without_a_head_update_is_named_by_the_size() -> None:
    entries = _log()
    size = len(entries)
    tail = bytes.fromhex(entries[-1].chain_hash)
    entries.append(_stored(size, _event(9).body(size, START), tail))
    assert verify_chain(entries) is None
    found = verify_chain(entries, expected_size=size)
    assert found is not None
    assert found.index == size


def test_a_forged_entry_whose_body_names_another_index_is_named() -> None:
    entries = _log(3)
    previous = bytes.fromhex(entries[1].chain_hash)
    entries[2] = _stored(2, _event(2).body(7, START), previous)
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 2
    assert "index" in found.problem


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'"text"'], ids=["junk", "list", "str"])
def test_a_correctly_hashed_entry_whose_body_is_not_a_json_object_is_named(body: bytes) -> None:
    """A verifier must report a bad entry, not crash on it."""
    entries = _log(3)
    leaf = leaf_hash(body)
    linked = chain_hash(bytes.fromhex(entries[1].chain_hash), leaf)
    entries[2] = _copy(entries[2], body=body, leaf_hash=leaf.hex(), chain_hash=linked.hex())
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 2


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reason", "x"),
        ("decision", "allow"),
        ("actor", "someone-else"),
        ("organization", None),
        ("product", "other-product"),
        ("purpose", "research"),
        ("view", "raw"),
        ("record_count", 999),
        ("request_id", "req-forged"),
        ("client_address", "10.0.0.1"),
        ("grant_id", "grant-1"),
        ("policy_version", "sha256:ffffffffffffffff"),
    ],
)
def test_a_column_that_disagrees_with_the_body_is_named(column: str, value: object) -> None:
    entries = _log()
    assert getattr(entries[2], column) != value
    entries[2] = _copy(entries[2], **{column: value})
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 2
    assert column in found.problem


def test_the_first_of_several_breaks_is_named() -> None:
    entries = _log()
    entries[4] = _copy(entries[4], reason="x")
    entries[1] = _copy(entries[1], actor="x")
    found = verify_chain(entries)
    assert found is not None
    assert found.index == 1


def test_a_log_shorter_than_expected_names_the_first_missing_index() -> None:
    entries = _log(4)
    found = verify_chain(entries, expected_size=6)
    assert found is not None
    assert found.index == 4
    assert "4" in found.problem and "6" in found.problem


def test_a_log_longer_than_expected_names_the_first_entry_beyond_the_head() -> None:
    """With 6 entries and a head of 4, entries 4 and 5 are the ones the head does
    not account for; the break names entry 4 (not 6, which does not exist)."""
    entries = _log(6)
    found = verify_chain(entries, expected_size=4)
    assert found is not None
    assert found.index == 4
