"""The verifiable log end to end: signed checkpoints, proofs, exports and both verifiers.

Activity goes through the HTTP API; what the auditor receives is checked with the
pure `audit` package only, as an auditor offline would, and with the real command
lines (`python -m audit`, `exchange audit verify`). Attacks go straight to the
database with a connection of their own, as someone with SQL access would.
"""

import json
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, create_engine, text, update
from sqlmodel import Session
from typer.testing import CliRunner, Result

import audit
from audit import Checkpoint, ProofError, Verifier
from audit import store as log
from audit.encoding import COLUMN_KEYS, GENESIS
from audit.export import ExportReport, verify_export
from audit.merkle import Frontier, root_of_leaves
from exchange.auditing.checkpoints import Signer
from exchange.cli import app as cli
from exchange.settings import Settings
from tests.conftest import BASE_URL, Exchange, run_cli
from tests.products import capture, captures_product

POSTGRES = BASE_URL.startswith("postgresql")
CAPTURES = "violation-captures"
READS = f"/v1/products/{CAPTURES}/records"
AUDIT = "/v1/audit"
NDJSON = "application/x-ndjson"
NON_AUDITORS = ["fleet", "police", "mapco", "steward", "admin"]
AUDITOR_ONLY = [
    f"{AUDIT}/checkpoint",
    f"{AUDIT}/checkpoint?fresh=true",
    f"{AUDIT}/export",
    f"{AUDIT}/proofs/inclusion?index=0&size=1",
    f"{AUDIT}/proofs/consistency?from=1&to=2",
]


# --- activity and what the auditor sees ---------------------------------------------------


def _setup(exchange: Exchange, records: int = 6) -> None:
    exchange.register("fleet", captures_product())
    published = exchange.publish("fleet", CAPTURES, [capture(n) for n in range(1, records + 1)])
    assert published.status_code == 200, published.text


def _reads(exchange: Exchange) -> None:
    """Reads allowed and denied: four more entries, two of them denials."""
    allowed = exchange.get("police", READS, params={"purpose": "law_enforcement"})
    assert allowed.status_code == 200, allowed.text
    undeclared = exchange.get("mapco", READS, params={"purpose": "commercial"})
    assert undeclared.status_code == 403, undeclared.text
    forbidden = exchange.get("lab", READS, params={"purpose": "law_enforcement"})
    assert forbidden.status_code == 403, forbidden.text
    protected = exchange.get("mapco", READS, params={"purpose": "navigation_safety", "limit": 2})
    assert protected.status_code == 200, protected.text


def _entries(exchange: Exchange, **params: Any) -> list[dict[str, Any]]:
    """Every entry (matching the filters), page by page, as the auditor."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
        response = exchange.get("auditor", f"{AUDIT}/entries", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _leaves(entries: list[dict[str, Any]]) -> list[bytes]:
    """Each entry's leaf, recomputed from its body: SHA-256(0x00 ‖ canonical bytes)."""
    assert [e["index"] for e in entries] == list(range(len(entries)))
    leaves = [audit.leaf_hash(audit.canonical_bytes(e["entry"])) for e in entries]
    assert [leaf.hex() for leaf in leaves] == [e["leaf_hash"] for e in entries]
    return leaves


def _public_key(exchange: Exchange) -> str:
    response = exchange.client.get(f"{AUDIT}/public-key")
    assert response.status_code == 200, response.text
    return response.text.strip()


def _verifier(exchange: Exchange) -> Verifier:
    return Verifier.parse(_public_key(exchange))


def _checkpoint(exchange: Exchange, fresh: bool = True) -> tuple[str, Checkpoint]:
    """The signed note and what it says, checked with the published key."""
    response = exchange.get(
        "auditor", f"{AUDIT}/checkpoint", params={"fresh": "true" if fresh else "false"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, audit.open_note(response.text, _verifier(exchange))


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    return problem


@pytest.fixture
def raw(exchange: Exchange) -> Iterator[Engine]:
    """A plain connection pool to this test's database, outside the app."""
    engine = create_engine(exchange.settings.resolved_database_url)
    yield engine
    engine.dispose()


# --- the public key and checkpoints -------------------------------------------------------


def test_the_public_key_needs_no_token_and_is_a_verifier_key(exchange: Exchange) -> None:
    response = exchange.client.get(f"{AUDIT}/public-key")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    verifier = Verifier.parse(response.text)
    assert verifier.name == exchange.settings.audit_origin
    assert response.text.strip() == Signer.from_settings(exchange.settings).verifier_key
    assert audit.verifier_key(verifier.name, verifier.public) == response.text.strip()
    # the same with an auditor's token, and the same every time
    again = exchange.get("auditor", f"{AUDIT}/public-key")
    assert again.status_code == 200, again.text
    assert again.text == response.text


def test_a_checkpoint_verifies_and_a_fresh_one_covers_every_entry(exchange: Exchange) -> None:
    _setup(exchange)
    verifier = _verifier(exchange)
    note, first = _checkpoint(exchange, fresh=False)
    assert first.origin == exchange.settings.audit_origin
    assert len(first.extra) == 1 and first.extra[0].startswith("time ")
    assert audit.open_note(note, verifier) == first

    _reads(exchange)
    seen = _entries(exchange)
    note, fresh = _checkpoint(exchange)
    # every entry listed, and the listing's own audit.read after them
    assert fresh.size >= len(seen) + 1
    assert fresh.size > first.size

    after = _entries(exchange)
    leaves = _leaves(after)
    assert after[: len(seen)] == seen
    assert root_of_leaves(leaves[: fresh.size]) == fresh.root
    assert root_of_leaves(leaves[: first.size]) == first.root
    # the checkpoint request is the entry right after the tree it signed
    logged = after[fresh.size]["entry"]
    assert (logged["action"], logged["decision"]) == ("audit.checkpoint", "allow")
    assert logged["details"] == {"size": fresh.size, "fresh": True}
    # without `fresh`, the latest checkpoint is served as it was signed
    latest, _ = _checkpoint(exchange, fresh=False)
    assert latest == note


@pytest.mark.parametrize("who", NON_AUDITORS)
def test_only_auditors_get_checkpoints_exports_and_proofs(
    exchange: Exchange, raw: Engine, who: str
) -> None:
    _setup(exchange, records=2)
    for path in AUDITOR_ONLY:
        response = exchange.get(who, path)
        problem = _problem(response, 403)
        assert "proof" not in problem and "checkpoint" not in problem
        assert "\u2014" not in response.text, path  # no signed note
    with raw.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM audit_checkpoint")).scalar_one()
    assert kept == 0  # a refused fresh=true signs nothing


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_checkpoints_exports_and_proofs_need_a_token(
    exchange: Exchange, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for path in AUDITOR_ONLY:
        _problem(exchange.client.get(path, headers=headers), 401)
    assert exchange.client.get(f"{AUDIT}/public-key", headers=headers).status_code == 200


# --- proofs -------------------------------------------------------------------------------


def _inclusion(exchange: Exchange, index: int, size: int) -> dict[str, Any]:
    response = exchange.get(
        "auditor", f"{AUDIT}/proofs/inclusion", params={"index": index, "size": size}
    )
    assert response.status_code == 200, response.text
    proof = response.json()
    assert (proof["index"], proof["size"]) == (index, size)
    return proof


def test_inclusion_proofs_verify_against_roots_recomputed_from_the_entries(
    exchange: Exchange,
) -> None:
    _setup(exchange)
    _reads(exchange)
    _, signed = _checkpoint(exchange)
    entries = _entries(exchange)
    leaves = _leaves(entries)
    n = signed.size
    assert n > 20
    pairs = {(0, 1), (0, 2), (1, 2), (0, n), (n - 1, n), (n // 2, n), (5, 7), (6, 7), (3, 8)}
    pairs |= {(7, 8), (8, 9), (15, 16), (16, 17), (n - 2, n - 1), (len(entries) - 1, len(entries))}
    chooser = random.Random(6962)
    for _ in range(8):
        size = chooser.randint(1, len(entries))
        pairs.add((chooser.randrange(size), size))

    for index, size in sorted(pairs):
        proof = _inclusion(exchange, index, size)
        leaf = bytes.fromhex(proof["leaf_hash"])
        root = bytes.fromhex(proof["root_hash"])
        path = [bytes.fromhex(h) for h in proof["proof"]]
        assert leaf == leaves[index]
        assert root == root_of_leaves(leaves[:size]), (index, size)
        audit.verify_inclusion(leaf, index, size, path, root)
        if size == n:
            assert root == signed.root
            audit.verify_inclusion(leaves[index], index, n, path, signed.root)
        if size > 1:  # the proof is for this leaf only
            other = (index + 1) % size
            with pytest.raises(ProofError):
                audit.verify_inclusion(leaves[other], index, size, path, root)


def test_bad_proof_parameters_are_400(exchange: Exchange) -> None:
    _setup(exchange, records=2)
    _, signed = _checkpoint(exchange)
    beyond = signed.size + 2  # the log holds the signed tree and the checkpoint's entry
    inclusion = f"{AUDIT}/proofs/inclusion"
    consistency = f"{AUDIT}/proofs/consistency"
    cases = [  # the two just beyond the log first, before anything else could be logged
        (inclusion, {"index": 0, "size": beyond}),
        (consistency, {"from": 1, "to": beyond}),
        (inclusion, {"index": 3, "size": 3}),
        (inclusion, {"index": 5, "size": 3}),
        (inclusion, {"index": signed.size, "size": signed.size}),
        (inclusion, {"index": 0, "size": 10**6}),
        (inclusion, {"index": 0, "size": 2**64}),
        (inclusion, {"index": 0, "size": 0}),
        (inclusion, {"index": -1, "size": 3}),
        (inclusion, {"index": 0}),
        (inclusion, {"size": 3}),
        (inclusion, {"index": "x", "size": 3}),
        (consistency, {"from": 5, "to": 3}),
        (consistency, {"from": signed.size, "to": signed.size - 1}),
        (consistency, {"from": beyond, "to": beyond}),
        (consistency, {"from": 0, "to": 3}),
        (consistency, {"from": 0, "to": 0}),
        (consistency, {"from": 1}),
    ]
    for path, params in cases:
        response = exchange.get("auditor", path, params=params)
        problem = _problem(response, 400)
        assert "proof" not in problem, (path, params)
    # and the edges just inside are fine
    _inclusion(exchange, signed.size - 1, signed.size)
    _inclusion(exchange, 0, beyond)  # by now the log has grown past it


def test_a_chain_of_checkpoints_is_consistent_pair_by_pair(exchange: Exchange) -> None:
    _setup(exchange)
    chain = [_checkpoint(exchange)[1]]
    for round_ in range(3):
        _reads(exchange)
        if round_ == 1:
            more = exchange.publish("fleet", CAPTURES, [capture(n) for n in range(50, 53)])
            assert more.status_code == 200, more.text
        chain.append(_checkpoint(exchange)[1])
    sizes = [c.size for c in chain]
    assert sizes == sorted(set(sizes)), sizes

    for i, old in enumerate(chain):
        for new in chain[i:]:
            response = exchange.get(
                "auditor", f"{AUDIT}/proofs/consistency", params={"from": old.size, "to": new.size}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["old_size"], body["new_size"]) == (old.size, new.size)
            assert bytes.fromhex(body["old_root"]) == old.root
            assert bytes.fromhex(body["new_root"]) == new.root
            proof = [bytes.fromhex(h) for h in body["proof"]]
            audit.verify_consistency(old.size, new.size, old.root, new.root, proof)
            if old.size == new.size:
                assert proof == []
            else:  # the proof binds these two roots, not any others
                with pytest.raises(ProofError):
                    audit.verify_consistency(old.size, new.size, new.root, old.root, proof)
    leaves = _leaves(_entries(exchange))
    assert [c.root for c in chain] == [root_of_leaves(leaves[: c.size]) for c in chain]


# --- exports ------------------------------------------------------------------------------


@dataclass
class Export:
    checkpoint: Checkpoint
    note: str
    items: list[dict[str, Any]]
    text: str
    next_cursor: str | None


def _export(exchange: Exchange, **params: Any) -> Export:
    response = exchange.get("auditor", f"{AUDIT}/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(NDJSON)
    lines = response.text.splitlines()
    head = json.loads(lines[0])
    assert set(head) == {"checkpoint"}
    checkpoint = audit.open_note(head["checkpoint"], _verifier(exchange))
    items = [json.loads(line) for line in lines[1:]]
    for item in items:
        assert set(item) == {"index", "leaf_hash", "entry", "inclusion_proof"}
        assert item["entry"]["index"] == item["index"] < checkpoint.size
    return Export(
        checkpoint,
        head["checkpoint"],
        items,
        response.text,
        response.headers.get("Exchange-Next-Cursor"),
    )


def _standalone(export: Path, key: str) -> subprocess.CompletedProcess[str]:
    """`python -m audit EXPORT --public-key KEY`, run from outside the repository."""
    return subprocess.run(
        [sys.executable, "-m", "audit", str(export), "--public-key", key],
        capture_output=True,
        text=True,
        cwd=export.parent,
        timeout=120,
        check=False,
    )


def _exchange_cli(settings: Settings, *args: str) -> Result:
    """The `exchange` CLI, which may fail (`run_cli` insists on success)."""
    env = {
        "EXCHANGE_DATABASE_URL": settings.resolved_database_url,
        "EXCHANGE_DATA_DIR": str(settings.data_dir),
    }
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_an_export_verifies_with_both_verifiers(exchange: Exchange, tmp_path: Path) -> None:
    _setup(exchange)
    _reads(exchange)
    key = _public_key(exchange)
    exported = _export(exchange)
    assert exported.next_cursor is None
    size = exported.checkpoint.size
    assert [item["index"] for item in exported.items] == list(range(size))

    entries = _entries(exchange)
    leaves = _leaves(entries)
    assert exported.checkpoint.root == root_of_leaves(leaves[:size])
    for item in exported.items:
        index = item["index"]
        assert item["entry"] == entries[index]["entry"]
        assert item["leaf_hash"] == leaves[index].hex()
        proof = [bytes.fromhex(h) for h in item["inclusion_proof"]]
        audit.verify_inclusion(leaves[index], index, size, proof, exported.checkpoint.root)
    # the export request is logged right after the tree it exported
    logged = entries[size]["entry"]
    assert logged["action"] == "audit.export"
    assert logged["details"]["checkpoint_size"] == size
    assert logged["record_count"] == size

    path = tmp_path / "export.ndjson"
    path.write_text(exported.text, encoding="utf-8")
    key_file = tmp_path / "audit.pub"
    key_file.write_text(key + "\n")
    for given in (key, str(key_file)):
        outcome = _standalone(path, given)
        assert outcome.returncode == 0, outcome.stderr
        assert f"OK: {size} entries verified" in outcome.stdout
        assert f"at tree size {size}" in outcome.stdout
        output = run_cli(exchange.settings, "audit", "verify", str(path), "--public-key", given)
        assert f"OK: {size} entries verified against the checkpoint of size {size}" in output


@pytest.mark.parametrize(
    "filters",
    [
        {"product": CAPTURES},
        {"decision": "deny"},
        {"organization": "lingnan-maps", "decision": "deny"},
        {"action": "read", "decision": "allow"},
    ],
    ids=repr,
)
def test_a_filtered_export_holds_the_matches_and_verifies(
    exchange: Exchange, tmp_path: Path, filters: dict[str, str]
) -> None:
    _setup(exchange)
    _reads(exchange)
    _reads(exchange)
    key = _public_key(exchange)
    exported = _export(exchange, **filters)
    size = exported.checkpoint.size
    expected = [e["index"] for e in _entries(exchange, **filters) if e["index"] < size]
    assert expected
    assert [item["index"] for item in exported.items] == expected
    for item in exported.items:
        for name, value in filters.items():
            assert item["entry"][name] == value

    path = tmp_path / "filtered.ndjson"
    path.write_text(exported.text, encoding="utf-8")
    outcome = _standalone(path, key)
    assert outcome.returncode == 0, outcome.stderr
    assert f"OK: {len(expected)} entries verified" in outcome.stdout
    output = run_cli(exchange.settings, "audit", "verify", str(path), "--public-key", key)
    assert f"OK: {len(expected)} entries" in output


def _pages(exchange: Exchange, verifier: Verifier, **params: Any) -> list[Export]:
    pages: list[Export] = []
    cursor = None
    while True:
        page = _export(exchange, **params, **({"cursor": cursor} if cursor else {}))
        report = verify_export(page.text.splitlines(keepends=True), verifier)
        assert isinstance(report, ExportReport), report
        assert report.entries == len(page.items) <= params["limit"]
        pages.append(page)
        assert len(pages) < 100
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(page.items) == params["limit"]


def test_an_export_pages_with_limit_and_the_next_cursor_header(
    exchange: Exchange, tmp_path: Path
) -> None:
    _setup(exchange)
    _reads(exchange)
    verifier = _verifier(exchange)

    pages = _pages(exchange, verifier, limit=7)
    assert len(pages) >= 3
    seen = [item["index"] for page in pages for item in page.items]
    # each page's own export request lands in the log, and a later page picks it up
    assert seen == list(range(pages[-1].checkpoint.size))
    sizes = [page.checkpoint.size for page in pages]
    assert sizes == sorted(sizes)

    _reads(exchange)
    denials = _pages(exchange, verifier, limit=1, decision="deny")
    seen = [item["index"] for page in denials for item in page.items]
    assert all(item["entry"]["decision"] == "deny" for page in denials for item in page.items)
    expected = [e["index"] for e in _entries(exchange, decision="deny")]
    assert seen == [index for index in expected if index < denials[-1].checkpoint.size]
    assert len(denials) == len(seen) == 4

    middle = tmp_path / "page.ndjson"
    middle.write_text(pages[1].text, encoding="utf-8")
    outcome = _standalone(middle, _public_key(exchange))
    assert outcome.returncode == 0, outcome.stderr
    assert "OK: 7 entries verified" in outcome.stdout

    for params in ({"limit": 0}, {"limit": 100_001}, {"cursor": "not-a-cursor"}):
        _problem(exchange.get("auditor", f"{AUDIT}/export", params=params), 400)


# --- a tampered export fails the standalone verifier --------------------------------------


@dataclass
class Exported:
    """A full and a denials-only export of the same activity, to be damaged."""

    full: Export
    denied: Export

    def lines(self, items: list[dict[str, Any]], note: str | None = None) -> list[str]:
        head = json.dumps({"checkpoint": note or self.full.note}, ensure_ascii=False)
        return [head, *(json.dumps(item, ensure_ascii=False) for item in items)]


def _copy(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    copied: list[dict[str, Any]] = json.loads(json.dumps(items))
    return copied


def _first_denial(items: list[dict[str, Any]]) -> int:
    """The position of the first denied read, well inside the export."""
    position = next(
        i for i, item in enumerate(items) if item["entry"]["decision"] == "deny" and i > 2
    )
    assert position < len(items) - 2
    return position


def _rehash(item: dict[str, Any]) -> None:
    item["leaf_hash"] = audit.leaf_hash(audit.canonical_bytes(item["entry"])).hex()


def _deny_to_allow(exported: Exported, rehash: bool) -> tuple[list[str], str]:
    items = _copy(exported.full.items)
    target = items[_first_denial(items)]
    target["entry"]["decision"] = "allow"
    if rehash:
        _rehash(target)
        return exported.lines(items), f"entry {target['index']}: not in the signed tree"
    return exported.lines(items), f"entry {target['index']}: the entry does not hash"


def _swapped(exported: Exported) -> tuple[list[str], str]:
    items = _copy(exported.full.items)
    k = _first_denial(items)
    items[k], items[k + 1] = items[k + 1], items[k]
    lower, higher = items[k + 1]["index"], items[k]["index"]
    return exported.lines(items), f"entry {lower}: out of order or repeated (after entry {higher})"


def _repeated(exported: Exported) -> tuple[list[str], str]:
    items = _copy(exported.full.items)
    k = _first_denial(items)
    items.insert(k + 1, items[k])
    return exported.lines(items), f"entry {items[k]['index']}: out of order or repeated"


def _gap(exported: Exported) -> tuple[int, int]:
    """A position in the denials-only export and an index missing just before it."""
    items = exported.denied.items
    for position in range(1, len(items)):
        if items[position]["index"] - items[position - 1]["index"] > 1:
            return position, items[position]["index"] - 1
    raise AssertionError("no gap between denials")


def _forged(exported: Exported, *, body: bool, rehash: bool) -> tuple[list[str], str]:
    """A copy of a real denial, slipped into a gap of the denials-only export."""
    items = _copy(exported.denied.items)
    position, index = _gap(exported)
    forged = _copy([items[position]])[0]
    forged["index"] = index
    if body:
        forged["entry"]["index"] = index
    if rehash:
        _rehash(forged)
    items.insert(position, forged)
    lines = exported.lines(items, exported.denied.note)
    if not body:
        return lines, f"entry {index}: the entry's body says index {index + 1}"
    if not rehash:
        return lines, f"entry {index}: the entry does not hash to its leaf hash"
    return lines, f"entry {index}: not in the signed tree"


def _beyond(exported: Exported) -> tuple[list[str], str]:
    items = _copy(exported.full.items)
    size = exported.full.checkpoint.size
    forged = _copy([items[-1]])[0]
    forged["index"] = forged["entry"]["index"] = size
    _rehash(forged)
    return exported.lines([*items, forged]), f"entry {size}: not covered by the checkpoint"


def _proof_flipped(exported: Exported, which: int) -> tuple[list[str], str]:
    items = _copy(exported.full.items)
    target = items[_first_denial(items)]
    proof = target["inclusion_proof"]
    digit = proof[which][0]
    proof[which] = ("1" if digit == "0" else "0") + proof[which][1:]
    return exported.lines(items), f"entry {target['index']}: not in the signed tree"


def _proof_shortened(exported: Exported) -> tuple[list[str], str]:
    items = _copy(exported.full.items)
    target = items[_first_denial(items)]
    target["inclusion_proof"].pop()
    return exported.lines(items), f"entry {target['index']}: not in the signed tree"


def _resigned(exported: Exported) -> tuple[list[str], str]:
    intruder = Ed25519PrivateKey.generate()
    note = audit.sign(exported.full.checkpoint, exported.full.checkpoint.origin, intruder)
    return exported.lines(exported.full.items, note), "line 1: checkpoint: no signature by"


def _size_edited(exported: Exported, delta: int) -> tuple[list[str], str]:
    size = exported.full.checkpoint.size
    assert exported.full.note.count(f"\n{size}\n") == 1
    note = exported.full.note.replace(f"\n{size}\n", f"\n{size + delta}\n")
    items = exported.full.items[: size + delta]
    return exported.lines(items, note), "line 1: checkpoint: the checkpoint's signature does not"


def _root_edited(exported: Exported) -> tuple[list[str], str]:
    checkpoint = exported.full.checkpoint
    forged = Checkpoint(checkpoint.origin, checkpoint.size, bytes(32), checkpoint.extra)
    assert exported.full.note.startswith(checkpoint.body())
    note = exported.full.note.replace(checkpoint.body(), forged.body())
    return exported.lines(exported.full.items, note), "line 1: checkpoint:"


def _no_checkpoint(exported: Exported) -> tuple[list[str], str]:
    return exported.lines(exported.full.items)[1:], "line 1: the first line must carry"


EXPORT_TAMPERS: dict[str, Callable[[Exported], tuple[list[str], str]]] = {
    "decision-deny-to-allow": lambda e: _deny_to_allow(e, rehash=False),
    "decision-deny-to-allow-leaf-rehashed": lambda e: _deny_to_allow(e, rehash=True),
    "two-lines-swapped": _swapped,
    "line-repeated": _repeated,
    "forged-copy-line-index-only": lambda e: _forged(e, body=False, rehash=False),
    "forged-copy-new-index": lambda e: _forged(e, body=True, rehash=False),
    "forged-copy-new-index-rehashed": lambda e: _forged(e, body=True, rehash=True),
    "forged-beyond-the-tree": _beyond,
    "proof-first-hash-flipped": lambda e: _proof_flipped(e, 0),
    "proof-last-hash-flipped": lambda e: _proof_flipped(e, -1),
    "proof-shortened": _proof_shortened,
    "checkpoint-signed-by-another-key": _resigned,
    "checkpoint-size-shrunk": lambda e: _size_edited(e, -3),
    "checkpoint-size-grown": lambda e: _size_edited(e, 1),
    "checkpoint-root-edited": _root_edited,
    "checkpoint-missing": _no_checkpoint,
}


@pytest.fixture
def exported(exchange: Exchange) -> Exported:
    _setup(exchange)
    _reads(exchange)
    _reads(exchange)
    full = _export(exchange)
    denied = _export(exchange, decision="deny")
    return Exported(full, denied)


@pytest.mark.parametrize("how", sorted(EXPORT_TAMPERS))
def test_a_tampered_export_is_refused_naming_the_entry(
    exchange: Exchange, exported: Exported, tmp_path: Path, how: str
) -> None:
    key = _public_key(exchange)
    lines, named = EXPORT_TAMPERS[how](exported)
    path = tmp_path / "tampered.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    outcome = _standalone(path, key)
    assert outcome.returncode == 1, (outcome.stdout, outcome.stderr)
    assert outcome.stderr.startswith(f"FAILED at {named}"), outcome.stderr
    assert "OK" not in outcome.stdout
    result = _exchange_cli(exchange.settings, "audit", "verify", str(path), "--public-key", key)
    assert result.exit_code == 1, result.output
    assert f"FAILED at {named}" in result.output


def test_a_line_removed_from_an_export_is_not_detectable_alone(
    exchange: Exchange, exported: Exported, tmp_path: Path
) -> None:
    """An export is a selection: inclusion proofs show that what is there is in the
    signed tree, not that nothing was left out. (Filtered exports have gaps too.)
    Order still counts, and every line left must be intact."""
    items = exported.full.items
    kept = items[:5] + items[6:]
    path = tmp_path / "shorter.ndjson"
    path.write_text("\n".join(exported.lines(kept)) + "\n", encoding="utf-8")
    outcome = _standalone(path, _public_key(exchange))
    assert outcome.returncode == 0, outcome.stderr
    assert f"OK: {len(items) - 1} entries verified" in outcome.stdout


def test_an_export_checked_with_another_key_is_refused(
    exchange: Exchange, exported: Exported, tmp_path: Path
) -> None:
    path = tmp_path / "export.ndjson"
    path.write_text(exported.full.text, encoding="utf-8")
    origin = exported.full.checkpoint.origin
    other = audit.verifier_key(origin, Ed25519PrivateKey.generate().public_key())
    outcome = _standalone(path, other)
    assert outcome.returncode == 1
    assert outcome.stderr.startswith("FAILED at line 1: checkpoint: no signature by"), outcome
    bad = _standalone(path, "not-a-key")
    assert bad.returncode == 2
    assert "bad public key" in bad.stderr


# --- a tampered database fails `exchange audit verify --database` -------------------------


ENTRY_COLUMNS = [column.name for column in log.AuditEntry.__table__.columns]


def _unguard(connection: Connection, table: str, operation: str) -> None:
    """As the database's owner: switch one append-only guard off."""
    if POSTGRES:
        connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change"))
    else:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{operation}"))


def _rows(connection: Connection) -> list[dict[str, Any]]:
    result = connection.execute(text('SELECT * FROM audit_entry ORDER BY "index"'))
    return [{k: bytes(v) if k == "body" else v for k, v in r._mapping.items()} for r in result]


def _set_row(connection: Connection, index: int, values: dict[str, Any]) -> None:
    assignments = ", ".join(f'"{column}" = :{column}' for column in values)
    connection.execute(
        text(f'UPDATE audit_entry SET {assignments} WHERE "index" = :target'),
        {**values, "target": index},
    )


def _denial_after(rows: list[dict[str, Any]], start: int) -> int:
    found = [r["index"] for r in rows if r["decision"] == "deny" and r["index"] >= start]
    assert found and found[0] < len(rows) - 2
    return int(found[0])


@dataclass
class Stored:
    """The activity in the database, with two checkpoints signed over the API."""

    exchange: Exchange
    engine: Engine
    first: Checkpoint
    second: Checkpoint

    @property
    def url(self) -> str:
        return self.exchange.settings.resolved_database_url

    def verify(self, *extra: str) -> Result:
        return _exchange_cli(
            self.exchange.settings, "audit", "verify", "--database", self.url, *extra
        )


@pytest.fixture
def stored(exchange: Exchange, raw: Engine) -> Stored:
    _setup(exchange)
    _reads(exchange)
    first = _checkpoint(exchange)[1]
    _reads(exchange)
    _reads(exchange)
    second = _checkpoint(exchange)[1]
    _reads(exchange)
    result = Stored(exchange, raw, first, second)
    intact = result.verify()
    assert intact.exit_code == 0, intact.output
    assert "OK:" in intact.output
    return result


def _reason_changed(stored: Stored) -> str:
    with stored.engine.begin() as connection:
        target = _denial_after(_rows(connection), stored.first.size)
        _unguard(connection, "audit_entry", "update")
        _set_row(connection, target, {"reason": "nothing to see here"})
    return re.escape(f"FAILED at entry {target}: column reason differs from the hashed body")


def _deleted(stored: Stored) -> str:
    with stored.engine.begin() as connection:
        target = _denial_after(_rows(connection), stored.first.size)
        _unguard(connection, "audit_entry", "delete")
        connection.execute(text('DELETE FROM audit_entry WHERE "index" = :i'), {"i": target})
    return re.escape(f"FAILED at entry {target}: expected entry {target}, found entry {target + 1}")


def _swapped_rows(stored: Stored, columns: list[str]) -> str:
    with stored.engine.begin() as connection:
        rows = _rows(connection)
        target = _denial_after(rows, stored.first.size)
        _unguard(connection, "audit_entry", "update")
        for mine, theirs in ((target, target + 1), (target + 1, target)):
            _set_row(connection, mine, {c: rows[theirs][c] for c in columns})
    if columns == ["body"]:
        return re.escape(f"FAILED at entry {target}: body does not match its leaf hash")
    # each row carries its own hashes along, but the chain no longer links
    return re.escape(f"FAILED at entry {target}: chain hash does not link")


def _forged_at_the_end(stored: Stored, *, with_nodes: bool, odd: bool) -> str:
    """A correctly hashed and linked entry after the last, without moving the head. An
    odd index completes at least one Merkle node, which the forger may also insert
    (inserting is what the guard allows). Either way the entry is the forged one."""
    with stored.engine.connect() as connection:
        if len(_rows(connection)) % 2 != odd:
            _entries(stored.exchange)  # one more entry, logged by the listing
    with stored.engine.begin() as connection:
        rows = _rows(connection)
        size = len(rows)
        assert size % 2 == odd
        body = json.loads(rows[-1]["body"])
        body.update(index=size, reason="forged", action="read", decision="allow")
        encoded = audit.canonical_bytes(body)
        leaf = audit.leaf_hash(encoded)
        forged = {
            **rows[-1],
            **{column: body[key] for column, key in COLUMN_KEYS.items()},
            "index": size,
            "body": encoded,
            "leaf_hash": leaf.hex(),
            "chain_hash": audit.chain_hash(bytes.fromhex(rows[-1]["chain_hash"]), leaf).hex(),
        }
        names = ", ".join(f'"{c}"' for c in ENTRY_COLUMNS)
        values = ", ".join(f":{c}" for c in ENTRY_COLUMNS)
        connection.execute(text(f"INSERT INTO audit_entry ({names}) VALUES ({values})"), forged)
        if with_nodes:
            frontier = Frontier()
            for row in rows:
                frontier.append(bytes.fromhex(row["leaf_hash"]))
            for level, index, value in frontier.append(leaf):
                if level < log.STORED_FROM_LEVEL:
                    continue
                connection.execute(
                    text('INSERT INTO audit_node ("level", "index", hash) VALUES (:l, :i, :h)'),
                    {"l": level, "i": index, "h": value.hex()},
                )
    return re.escape(f"FAILED at entry {size}: ") + r".*\bhead\b"


def _node_changed(stored: Stored) -> str:
    with stored.engine.begin() as connection:
        target = _denial_after(_rows(connection), stored.first.size)
        _unguard(connection, "audit_node", "update")
        connection.execute(
            text('UPDATE audit_node SET hash = :h WHERE "level" = 2 AND "index" = :i'),
            {"h": "00" * 32, "i": target // 4},
        )
    first = target // 4 * 4
    return re.escape(f"FAILED at entry {first}: stored Merkle node (2, {target // 4}) over entries")


def _checkpoint_forged(stored: Stored) -> str:
    """Inserting is what the guard allows; a checkpoint not signed by our key shows."""
    intruder = Ed25519PrivateKey.generate()
    origin = stored.first.origin
    note = audit.sign(stored.second, origin, intruder)
    with stored.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_checkpoint (size, root_hash, note, created_at) "
                "VALUES (:s, :r, :n, CURRENT_TIMESTAMP)"
            ),
            {"s": stored.second.size, "r": stored.second.root.hex(), "n": note},
        )
    # Two checkpoints of the same size, in no set order: either may be checked first.
    either = f"({stored.first.size}|{stored.second.size})"
    return rf"FAILED at entry {either}: checkpoint \d+: no signature by {re.escape(origin)}"


def _checkpoint_column_changed(stored: Stored) -> str:
    with stored.engine.begin() as connection:
        _unguard(connection, "audit_checkpoint", "update")
        connection.execute(
            text("UPDATE audit_checkpoint SET root_hash = :r WHERE size = :s"),
            {"r": "00" * 32, "s": stored.second.size},
        )
    return rf"FAILED at entry {stored.first.size}: checkpoint \d+'s columns differ from its signed"


# Each damages the database and returns a pattern of what the verifier must say.
DATABASE_TAMPERS: dict[str, Callable[[Stored], str]] = {
    "reason-column-changed": _reason_changed,
    "row-deleted-from-the-middle": _deleted,
    "two-bodies-swapped": lambda s: _swapped_rows(s, ["body"]),
    "two-rows-swapped-but-the-index": lambda s: _swapped_rows(
        s, [c for c in ENTRY_COLUMNS if c != "index"]
    ),
    "forged-row-at-an-even-end": lambda s: _forged_at_the_end(s, with_nodes=False, odd=False),
    "forged-row-at-an-odd-end": lambda s: _forged_at_the_end(s, with_nodes=False, odd=True),
    "forged-row-and-nodes-at-an-even-end": lambda s: _forged_at_the_end(
        s, with_nodes=True, odd=False
    ),
    "forged-row-and-nodes-at-an-odd-end": lambda s: _forged_at_the_end(
        s, with_nodes=True, odd=True
    ),
    "merkle-node-changed": _node_changed,
    "checkpoint-forged": _checkpoint_forged,
    "checkpoint-column-changed": _checkpoint_column_changed,
}


@pytest.mark.parametrize("how", sorted(DATABASE_TAMPERS))
def test_a_tampered_database_is_refused_naming_the_entry(stored: Stored, how: str) -> None:
    named = DATABASE_TAMPERS[how](stored)
    result = stored.verify()
    assert result.exit_code == 1, result.output
    assert re.search(named, result.output), (named, result.output)
    assert "OK:" not in result.output


def test_an_intact_database_verifies_and_only_with_our_key(stored: Stored, tmp_path: Path) -> None:
    key = _public_key(stored.exchange)
    key_file = tmp_path / "audit.pub"
    key_file.write_text(key + "\n")
    with stored.engine.connect() as connection:
        size = connection.execute(text("SELECT size FROM audit_head")).scalar_one()
    for extra in ((), ("--public-key", key), ("--public-key", str(key_file))):
        result = stored.verify(*extra)
        assert result.exit_code == 0, result.output
        assert f"OK: {size} entries, their Merkle tree and every checkpoint verified" in (
            result.output
        )
    output = run_cli(stored.exchange.settings, "audit", "verify", "--database", stored.url)
    assert f"OK: {size} entries" in output

    other = audit.verifier_key(stored.first.origin, Ed25519PrivateKey.generate().public_key())
    result = stored.verify("--public-key", other)
    assert result.exit_code == 1, result.output
    assert "FAILED at entry 0: checkpoint" in result.output
    assert f"no signature by {stored.first.origin}" in result.output
    # The checkpoint cannot be checked with that key; no entry is blamed for it.
    assert "differs" not in result.output


def _rewrite(stored: Stored, target: int) -> None:
    """Turn a denial into an allow and re-hash everything after it consistently: the
    leaf, every later chain hash, the Merkle nodes over it, and the head."""
    with stored.engine.begin() as connection:
        rows = _rows(connection)
        body = json.loads(rows[target]["body"])
        assert body["decision"] == "deny"
        body.update(decision="allow", reason="allowed by policy")
        bodies = [row["body"] for row in rows]
        bodies[target] = audit.canonical_bytes(body)
        leaves = [audit.leaf_hash(b) for b in bodies]
        chains, previous = [], GENESIS
        for leaf in leaves:
            previous = audit.chain_hash(previous, leaf)
            chains.append(previous)
        frontier = Frontier()
        nodes = [node for leaf in leaves for node in frontier.append(leaf)]

        _unguard(connection, "audit_entry", "update")
        _unguard(connection, "audit_node", "update")
        _set_row(
            connection,
            target,
            {"body": bodies[target], "decision": "allow", "reason": body["reason"]},
        )
        for index in range(target, len(rows)):
            _set_row(
                connection,
                index,
                {"leaf_hash": leaves[index].hex(), "chain_hash": chains[index].hex()},
            )
        changed = 0
        for level, index, value in nodes:
            if index << level <= target < (index + 1) << level:
                changed += connection.execute(
                    text('UPDATE audit_node SET hash = :h WHERE "level" = :l AND "index" = :i'),
                    {"h": value.hex(), "l": level, "i": index},
                ).rowcount
        assert changed >= 1
        connection.execute(
            update(log.AuditHead)
            .where(log.AuditHead.id == log.HEAD_ID)
            .values(
                chain_hash=chains[-1].hex(),
                frontier={str(level): h.hex() for level, h in frontier.levels.items()},
            )
        )
    with Session(stored.engine) as session:
        head = log.head(session)
    assert (head.size, head.root) == (len(leaves), root_of_leaves(leaves))


def test_a_fully_rehashed_rewrite_is_exposed_by_the_signed_checkpoint(stored: Stored) -> None:
    with stored.engine.connect() as connection:
        target = _denial_after(_rows(connection), stored.first.size)
    assert stored.first.size <= target < stored.second.size
    _rewrite(stored, target)

    result = stored.verify()
    assert result.exit_code == 1, result.output
    found = re.search(
        r"FAILED at entry (\d+): .*an entry in \[(\d+), (\d+)\) differs", result.output
    )
    assert found, result.output
    named, low, high = (int(group) for group in found.groups())
    assert low <= target < high
    # the first checkpoint still holds, so the range is exactly the second one's part
    assert (named, low, high) == (stored.first.size, stored.first.size, stored.second.size)
    assert "does not have the root checkpoint" in result.output


# --- appends keep the tree ----------------------------------------------------------------


def test_appends_keep_the_stored_merkle_nodes_and_the_head(exchange: Exchange, raw: Engine) -> None:
    _setup(exchange)
    while len(_entries(exchange)) < 45:
        _reads(exchange)

    with raw.connect() as connection:
        rows = connection.execute(
            text('SELECT "index", leaf_hash, body FROM audit_entry ORDER BY "index"')
        ).all()
        assert [row[0] for row in rows] == list(range(len(rows)))
        assert all(audit.leaf_hash(bytes(row[2])).hex() == row[1] for row in rows)
        leaves = [bytes.fromhex(row[1]) for row in rows]
        stored_nodes = {
            (level, index): value
            for level, index, value in connection.execute(
                text('SELECT "level", "index", hash FROM audit_node')
            )
        }
        head_row = connection.execute(text("SELECT size, frontier FROM audit_head")).one()
    assert len(leaves) >= 45 and len(leaves) == head_row[0]

    frontier = Frontier()
    rebuilt = {
        (level, index): value.hex()
        for leaf in leaves
        for level, index, value in frontier.append(leaf)
        if level >= log.STORED_FROM_LEVEL
    }
    assert stored_nodes == rebuilt
    assert (5, 0) in stored_nodes  # the first 32 entries are one complete subtree
    stored_frontier = head_row[1] if isinstance(head_row[1], dict) else json.loads(head_row[1])
    assert stored_frontier == {str(level): h.hex() for level, h in frontier.levels.items()}

    with Session(raw) as session:
        head = log.head(session)
    assert head.size == len(leaves)
    assert head.root == root_of_leaves(leaves) == frontier.root()
    proof = _inclusion(exchange, len(leaves) - 1, len(leaves))
    assert bytes.fromhex(proof["root_hash"]) == head.root
