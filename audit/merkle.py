"""The RFC 6962 / RFC 9162 Merkle tree over audit entries. Pure; no I/O.

    leaf  = SHA-256(0x00 ‖ entry bytes)
    node  = SHA-256(0x01 ‖ left ‖ right)
    MTH(D[0:n]) splits at k, the largest power of two smaller than n.

Stored state is the hash of every *complete aligned subtree* — node (level, i)
covers leaves [i·2^level, (i+1)·2^level) — so any subtree hash, root, inclusion
proof or consistency proof needs O(log n) node reads, through the `NodeReader`
the caller supplies. `Frontier` is the log's compact right edge: the roots of its
complete subtrees, from which appends derive the new nodes and the root, without
reading anything.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, and refuses
anything malformed (wrong lengths, index out of range, leftover proof hashes).
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]
"""(level, index) → the hash of that complete aligned subtree."""


class ProofError(ValueError):
    """A proof or its parameters are malformed or do not verify."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ProofError("node children must be 32-byte hashes")
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(start: int, end: int, read: NodeReader) -> bytes:
    """MTH(D[start:end]) for a range that is the right part of a subtree split.

    A complete aligned range is one stored node; any other range splits at its
    largest power of two, so at most O(log n) nodes are read.
    """
    size = end - start
    if size <= 0:
        raise ProofError("empty range")
    if size & (size - 1) == 0 and start % size == 0:
        return read(size.bit_length() - 1, start // size)
    k = _split(size)
    return node_hash(subtree_hash(start, start + k, read), subtree_hash(start + k, end, read))


def root(size: int, read: NodeReader) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, read)


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """The root straight from leaf hashes (O(n)); for tests and whole-log checks."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of_leaves(leaves[:k]), root_of_leaves(leaves[k:]))


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size])."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    return _path(index, 0, size, read)


def _path(index: int, start: int, end: int, read: NodeReader) -> list[bytes]:
    if end - start == 1:
        return []
    k = _split(end - start)
    if index < start + k:
        return [*_path(index, start, start + k, read), subtree_hash(start + k, end, read)]
    return [*_path(index, start + k, end, read), subtree_hash(start, start + k, read)]


def consistency_proof(old: int, new: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old, D[0:new])."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to {new}")
    if old == new:
        return []
    return _subproof(old, 0, new, True, read)


def _subproof(m: int, start: int, end: int, complete: bool, read: NodeReader) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [subtree_hash(start, end, read)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, complete, read), subtree_hash(start + k, end, read)]
    return [*_subproof(m - k, start + k, end, False, read), subtree_hash(start, start + k, read)]


def _check_hashes(*hashes: bytes) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("hashes must be 32 bytes")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """RFC 9162 §2.1.3.2. Raises ProofError unless the leaf is at `index` of the tree."""
    _check_hashes(leaf, root_hash, *proof)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path")
    if r != root_hash:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2. Raises ProofError unless the old tree is a prefix of the new."""
    _check_hashes(old_root, new_root, *proof)
    if not 0 < old <= new:
        raise ProofError(f"no consistency from size {old} to {new}")
    if old == new:
        if proof:
            raise ProofError("equal sizes take an empty proof")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        raise ProofError("empty consistency proof")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than needed")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than needed")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")


@dataclass
class Frontier:
    """The roots of the log's complete subtrees, one per set bit of `size`
    (`levels[l]` set iff bit l of size is 1). Appending returns the nodes it
    completes, for the caller to store."""

    size: int = 0
    levels: dict[int, bytes] = field(default_factory=dict)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; the (level, index, hash) of each node (level ≥ 1) completed."""
        _check_hashes(leaf)
        completed = []
        carry, level, index = leaf, 0, self.size
        while self.size >> level & 1:
            carry = node_hash(self.levels.pop(level), carry)
            level += 1
            index >>= 1
            completed.append((level, index, carry))
        self.levels[level] = carry
        self.size += 1
        return completed

    def root(self) -> bytes:
        if self.size == 0:
            return EMPTY_ROOT
        result: bytes | None = None
        for level in sorted(self.levels):
            result = self.levels[level] if result is None else node_hash(self.levels[level], result)
        assert result is not None
        return result
