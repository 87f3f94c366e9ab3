"""The tamper-evident audit log. Imports nothing else of ours.

Invariants: entries are never updated or deleted (database triggers refuse it);
indexes are dense, starting at 0; each entry stores the exact bytes that were
hashed, and every query column is derived from those bytes; the entries are the
leaves of an RFC 6962 Merkle tree whose complete subtrees are stored, and signed
checkpoints commit to its root. See docs/audit-format.md.

This package's top level is pure and needs only `cryptography`, so an auditor can
verify an export offline; the database side is `audit.store`.
"""

from audit.checkpoint import Checkpoint, CheckpointError, Verifier, open_note, sign, verifier_key
from audit.encoding import canonical_bytes, chain_hash
from audit.errors import AuditWriteError
from audit.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from audit.verify import ChainBreak, verify_chain

__all__ = [
    "AuditWriteError",
    "ChainBreak",
    "Checkpoint",
    "CheckpointError",
    "ProofError",
    "Verifier",
    "canonical_bytes",
    "chain_hash",
    "leaf_hash",
    "open_note",
    "sign",
    "verifier_key",
    "verify_chain",
    "verify_consistency",
    "verify_inclusion",
]
