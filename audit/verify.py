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


class ChainWalker:
    """Checks entries one at a time, in index order, from index 0."""

    def __init__(self) -> None:
        self.position = 0
        self.previous = GENESIS

    def check(self, entry: StoredEntry) -> tuple[bytes, ChainBreak | None]:
        """The entry's leaf hash, and what is wrong with the entry if anything."""
        position = self.position
        leaf = leaf_hash(bytes(entry.body))
        if entry.index != position:
            return leaf, ChainBreak(
                position, f"expected entry {position}, found entry {entry.index}"
            )
        if leaf.hex() != entry.leaf_hash:
            return leaf, ChainBreak(position, "body does not match its leaf hash (altered)")
        self.previous = chain_hash(self.previous, leaf)
        if self.previous.hex() != entry.chain_hash:
            return leaf, ChainBreak(position, "chain hash does not link to the previous entry")
        try:
            body = json.loads(bytes(entry.body))
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return leaf, ChainBreak(position, "body is not a JSON object")
        if body.get("index") != position:
            return leaf, ChainBreak(position, f"body says index {body.get('index')}")
        for column, key in COLUMN_KEYS.items():
            if getattr(entry, column, body.get(key)) != body.get(key):
                return leaf, ChainBreak(position, f"column {column} differs from the hashed body")
        self.position += 1
        return leaf, None


def verify_chain(
    entries: Iterable[StoredEntry], expected_size: int | None = None
) -> ChainBreak | None:
    """None if the entries, in the order given, form an intact log from index 0."""
    walker = ChainWalker()
    for entry in entries:
        _, broken = walker.check(entry)
        if broken:
            return broken
    count = walker.position
    if expected_size is not None and count != expected_size:
        first_unaccounted = min(count, expected_size)
        return ChainBreak(first_unaccounted, f"log has {count} entries, head says {expected_size}")
    return None
