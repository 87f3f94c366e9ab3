"""Canonical entry bytes and the hashes over them. Pure; no I/O.

Canonical form: JSON, keys sorted, UTF-8 (non-ASCII kept as is), no insignificant
whitespace, no NaN or infinities. Leaf hash as RFC 6962: SHA-256(0x00 ‖ bytes), so
the same leaves can later form a Merkle tree.
"""

import hashlib
import json
from typing import Any

GENESIS = bytes(32)


def canonical_bytes(body: dict[str, Any]) -> bytes:
    """Raises ValueError for an empty body or a value JSON cannot carry exactly."""
    if not body:
        raise ValueError("an audit entry cannot be empty")
    try:
        text = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except TypeError as error:
        raise ValueError(f"an audit entry holds a value JSON cannot carry: {error}") from error
    return text.encode("utf-8")


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """Raises ValueError unless both are 32-byte SHA-256 digests."""
    if len(previous) != 32 or len(leaf) != 32:
        raise ValueError("chain hashing takes two 32-byte digests")
    return hashlib.sha256(previous + leaf).digest()
