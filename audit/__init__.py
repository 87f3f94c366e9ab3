"""The tamper-evident audit log. Imports nothing else of ours.

Invariants: entries are never updated or deleted (database triggers refuse it);
indexes are dense, starting at 0; each entry stores the exact bytes that were
hashed, and every query column is derived from those bytes; entry i's chain hash
is SHA-256(chain hash i-1 ‖ leaf hash i), with 32 zero bytes before the first.
See docs/audit-format.md.
"""

from audit.encoding import canonical_bytes, chain_hash, leaf_hash
from audit.log import AuditEntry, AuditEvent, AuditHead, AuditWriteError, append
from audit.verify import ChainBreak, verify_chain

__all__ = [
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "AuditWriteError",
    "ChainBreak",
    "append",
    "canonical_bytes",
    "chain_hash",
    "leaf_hash",
    "verify_chain",
]
