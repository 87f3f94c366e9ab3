"""Verifying an exported slice of the log offline. Needs only `cryptography`.

An export is NDJSON. The first line is `{"checkpoint": "<signed note>"}`; each
further line is one entry: `{"index", "leaf_hash", "entry", "inclusion_proof"}`,
with the proof (hex hashes) against the checkpoint's tree. Verification checks the
checkpoint's signature with the exchange's verifier key, then for every entry
that its canonical bytes hash to the leaf, that the body's index is the line's,
that indexes only increase and lie inside the tree, and that the inclusion proof
leads to the signed root. The first failure is named by entry index.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.checkpoint import Checkpoint, CheckpointError, Verifier, open_note
from audit.encoding import canonical_bytes
from audit.merkle import ProofError, leaf_hash, verify_inclusion


@dataclass(frozen=True)
class ExportProblem:
    """Where an export fails: the entry's index (None for the checkpoint line) or
    the line number, and what is wrong."""

    line: int
    index: int | None
    problem: str

    def __str__(self) -> str:
        where = f"entry {self.index}" if self.index is not None else f"line {self.line}"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class ExportReport:
    checkpoint: Checkpoint
    entries: int


def export_line(index: int, leaf: bytes, entry: dict[str, Any], proof: list[bytes]) -> str:
    return (
        json.dumps(
            {
                "index": index,
                "leaf_hash": leaf.hex(),
                "entry": entry,
                "inclusion_proof": [p.hex() for p in proof],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
    )


def _entry_problem(
    item: Any, checkpoint: Checkpoint, previous: int
) -> tuple[int | None, str | None]:
    if not isinstance(item, dict) or not isinstance(item.get("entry"), dict):
        return None, "not an entry line"
    index = item.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        return None, "the entry has no index"
    if index <= previous:
        return index, f"out of order or repeated (after entry {previous})"
    if index >= checkpoint.size:
        return index, f"not covered by the checkpoint (tree size {checkpoint.size})"
    entry = item["entry"]
    if entry.get("index") != index:
        return index, f"the entry's body says index {entry.get('index')}"
    try:
        leaf = leaf_hash(canonical_bytes(entry))
        if leaf.hex() != item.get("leaf_hash"):
            return index, "the entry does not hash to its leaf hash (altered)"
        proof = [bytes.fromhex(h) for h in item.get("inclusion_proof", [])]
        verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)
    except (ValueError, TypeError) as error:
        return index, f"not in the signed tree: {error}"
    return index, None


def verify_export(lines: Iterable[str], verifier: Verifier) -> ExportReport | ExportProblem:
    """The report if every line verifies; otherwise the first problem."""
    checkpoint: Checkpoint | None = None
    previous, count = -1, 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            return ExportProblem(number, None, "not JSON")
        if checkpoint is None:
            if not isinstance(item, dict) or not isinstance(item.get("checkpoint"), str):
                return ExportProblem(number, None, "the first line must carry the checkpoint")
            try:
                checkpoint = open_note(item["checkpoint"], verifier)
            except (CheckpointError, ValueError) as error:
                return ExportProblem(number, None, f"checkpoint: {error}")
            continue
        index, problem = _entry_problem(item, checkpoint, previous)
        if problem:
            return ExportProblem(number, index, problem)
        assert index is not None
        previous, count = index, count + 1
    if checkpoint is None:
        return ExportProblem(0, None, "the export is empty")
    return ExportReport(checkpoint, count)


__all__ = ["ExportProblem", "ExportReport", "ProofError", "export_line", "verify_export"]
