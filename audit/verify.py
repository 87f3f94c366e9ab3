"""Checking a run of stored entries against their hashes. Pure; no I/O.

Names the first entry that is wrong and how: a gap or reordering in the indexes,
a body whose hash differs, a chain that does not link, or a query column that
says something other than the hashed body.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from audit.encoding import COLUMN_KEYS, GENESIS, chain_hash
from audit.merkle import leaf_hash


class StoredEntry(Protocol):
    index: int
    body: bytes
    leaf_hash: str
    chain_hash: str


@dataclass(frozen=True)
class ChainBreak:
    index: int
    problem: str


def verify_chain(
    entries: Iterable[StoredEntry], expected_size: int | None = None
) -> ChainBreak | None:
    """None if the entries, in the order given, form an intact log from index 0."""
    previous = GENESIS
    count = 0
    for position, entry in enumerate(entries):
        count += 1
        if entry.index != position:
            return ChainBreak(position, f"expected entry {position}, found entry {entry.index}")
        leaf = leaf_hash(bytes(entry.body))
        if leaf.hex() != entry.leaf_hash:
            return ChainBreak(position, "body does not match its leaf hash (altered)")
        previous = chain_hash(previous, leaf)
        if previous.hex() != entry.chain_hash:
            return ChainBreak(position, "chain hash does not link to the previous entry")
        try:
            body = json.loads(bytes(entry.body))
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return ChainBreak(position, "body is not a JSON object")
        if body.get("index") != position:
            return ChainBreak(position, f"body says index {body.get('index')}")
        for column, key in COLUMN_KEYS.items():
            if getattr(entry, column, body.get(key)) != body.get(key):
                return ChainBreak(position, f"column {column} differs from the hashed body")
    if expected_size is not None and count != expected_size:
        first_unaccounted = min(count, expected_size)
        return ChainBreak(first_unaccounted, f"log has {count} entries, head says {expected_size}")
    return None
