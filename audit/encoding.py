"""Canonical entry bytes and the hashes over them. Pure; no I/O.

Canonical form: JSON, keys sorted, UTF-8 (non-ASCII kept as is), no insignificant
whitespace, no NaN or infinities. Leaves are hashed as RFC 6962 leaves
(`audit.merkle.leaf_hash`); the chain links each leaf to the one before.
"""

import hashlib
import json
from typing import Any

GENESIS = bytes(32)

# Query columns of a stored entry and the body keys they copy; verification
# checks that they agree.
COLUMN_KEYS = {
    "actor": "actor",
    "organization": "organization",
    "action": "action",
    "product": "product",
    "purpose": "purpose",
    "decision": "decision",
    "reason": "reason",
    "policy_version": "policy_version",
    "view": "view",
    "record_count": "record_count",
    "grant_id": "grant",
    "request_id": "request_id",
    "client_address": "client",
}


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


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """Raises ValueError unless both are 32-byte SHA-256 digests."""
    if len(previous) != 32 or len(leaf) != 32:
        raise ValueError("chain hashing takes two 32-byte digests")
    return hashlib.sha256(previous + leaf).digest()
