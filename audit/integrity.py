"""Checking a whole stored log: entries, Merkle nodes and checkpoints.

Walks the entries in index order (chain, leaf and column checks), rebuilds the
tree beside them and compares every stored node, and checks every checkpoint's
signature and root when the walk reaches its size. Names the first bad entry.
"""

from sqlmodel import Session, col, select

from audit.checkpoint import CheckpointError, Verifier, open_note
from audit.merkle import Frontier
from audit.store import STORED_FROM_LEVEL, AuditCheckpoint, AuditEntry, AuditNode, head
from audit.verify import ChainBreak, ChainWalker


def verify_stored(session: Session, verifier: Verifier) -> ChainBreak | None:
    """Check the whole stored log: each entry against its hashes and the chain,
    every stored Merkle node against the tree rebuilt from the entries, and every
    checkpoint's signature and root against that tree. None if all is intact;
    otherwise the first entry that is wrong and how (for a re-hashed rewrite that
    only a signed root exposes: the first entry of the range it must lie in)."""
    checkpoints = list(
        session.scalars(
            select(AuditCheckpoint).order_by(col(AuditCheckpoint.size), col(AuditCheckpoint.id))
        )
    )
    size = head(session).size
    walker, frontier = ChainWalker(), Frontier()
    completed: list[tuple[int, int, bytes]] = []
    verified_up_to = 0
    entries = session.scalars(select(AuditEntry).order_by(col(AuditEntry.index))).yield_per(2000)
    for entry in entries:
        leaf, broken = walker.check(entry)
        if broken:
            return broken
        if walker.position > size:
            return ChainBreak(entry.index, f"the log has more entries than the head's {size}")
        completed += [n for n in frontier.append(leaf) if n[0] >= STORED_FROM_LEVEL]
        if len(completed) >= 2000:
            if broken := _check_nodes(session, completed):
                return broken
            completed = []
        while checkpoints and checkpoints[0].size == frontier.size:
            checkpoint = checkpoints.pop(0)
            if problem := _checkpoint_problem(checkpoint, verifier):
                return ChainBreak(verified_up_to, problem)
            if bytes.fromhex(checkpoint.root_hash) != frontier.root():
                return ChainBreak(
                    verified_up_to,
                    f"the tree of {checkpoint.size} entries does not have the root checkpoint "
                    f"{checkpoint.id} signed; "
                    f"an entry in [{verified_up_to}, {frontier.size}) differs",
                )
            verified_up_to = frontier.size
    if broken := _check_nodes(session, completed):
        return broken
    if checkpoints:
        return ChainBreak(
            frontier.size,
            f"a checkpoint covers {checkpoints[-1].size} entries; the log has {frontier.size}",
        )
    if size != frontier.size:
        return ChainBreak(
            min(size, frontier.size), f"log has {frontier.size} entries, head says {size}"
        )
    return None


def _check_nodes(session: Session, completed: list[tuple[int, int, bytes]]) -> ChainBreak | None:
    wanted = {(level, index): value for level, index, value in completed}
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    stored: dict[tuple[int, int], str] = {}
    for level, indexes in by_level.items():
        rows = session.execute(
            select(col(AuditNode.index), col(AuditNode.hash)).where(
                col(AuditNode.level) == level, col(AuditNode.index).in_(indexes)
            )
        )
        stored.update(((level, index), value) for index, value in rows)
    for (level, index), value in sorted(wanted.items(), key=lambda item: item[0][1] << item[0][0]):
        if stored.get((level, index)) != value.hex():
            first = index << level
            return ChainBreak(
                first, f"stored Merkle node ({level}, {index}) over entries from {first} differs"
            )
    return None


def _checkpoint_problem(checkpoint: AuditCheckpoint, verifier: Verifier) -> str | None:
    """What is wrong with the checkpoint itself (not with the entries it covers)."""
    try:
        signed = open_note(checkpoint.note, verifier)
    except CheckpointError as error:
        return f"checkpoint {checkpoint.id}: {error}"
    if signed.size != checkpoint.size or signed.root.hex() != checkpoint.root_hash:
        return f"checkpoint {checkpoint.id}'s columns differ from its signed note"
    return None
