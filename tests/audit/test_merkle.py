"""RFC 6962 Merkle tree against the public Certificate Transparency test vectors.

Source of the vectors: the 8-leaf test tree of google/certificate-transparency
(`cpp/merkletree/merkle_tree_test.cc`, also in transparency-dev/merkle
`testonly/constants.go`): leaves "", 00, 10, 2021, 3031, 40414243,
5051525354555657, 606162…6f, and the roots of the trees of sizes 1 to 8.
"""

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_of_leaves,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Published proofs for the same tree (google/certificate-transparency merkle_tree_test.cc).
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def _reader(leaves: list[bytes]):
    def read(level: int, index: int) -> bytes:
        width = 1 << level
        chunk = leaves[index * width : (index + 1) * width]
        assert len(chunk) == width, "only complete aligned subtrees are read"
        return root_of_leaves(chunk)

    return read


READ = _reader(HASHES)


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(size: int) -> None:
    assert root_of_leaves(HASHES[:size]).hex() == ROOTS[size - 1]
    assert root(size, READ).hex() == ROOTS[size - 1]
    frontier = Frontier()
    for leaf in HASHES[:size]:
        frontier.append(leaf)
    assert frontier.root().hex() == ROOTS[size - 1]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Frontier().root() == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(
    index: int, size: int, expected: list[str]
) -> None:
    proof = inclusion_proof(index, size, READ)
    assert [p.hex() for p in proof] == expected
    verify_inclusion(HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size - 1]))


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(
    old: int, new: int, expected: list[str]
) -> None:
    proof = consistency_proof(old, new, READ)
    assert [p.hex() for p in proof] == expected
    verify_consistency(
        old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), proof
    )


def test_every_proof_of_a_larger_tree_verifies() -> None:
    hashes = [leaf_hash(str(n).encode()) for n in range(37)]
    read = _reader(hashes)
    for size in range(1, 38):
        top = root(size, read)
        for index in range(size):
            verify_inclusion(hashes[index], index, size, inclusion_proof(index, size, read), top)
        for old in range(1, size + 1):
            proof = consistency_proof(old, size, read)
            verify_consistency(old, size, root(old, read), top, proof)


def test_frontier_appends_report_the_nodes_they_complete() -> None:
    frontier = Frontier()
    completed = [frontier.append(leaf) for leaf in HASHES]
    assert [[(level, index) for level, index, _ in nodes] for nodes in completed] == [
        [],
        [(1, 0)],
        [],
        [(1, 1), (2, 0)],
        [],
        [(1, 2)],
        [],
        [(1, 3), (2, 1), (3, 0)],
    ]
    assert completed[-1][-1][2].hex() == ROOTS[7]


@pytest.mark.parametrize(
    "tamper",
    ["wrong leaf", "wrong index", "wrong size", "short proof", "long proof", "flipped hash"],
)
def test_a_bad_inclusion_proof_is_refused(tamper: str) -> None:
    index, size = 5, 8
    proof = inclusion_proof(index, size, READ)
    leaf, top = HASHES[index], bytes.fromhex(ROOTS[7])
    arguments = {
        "wrong leaf": (HASHES[4], index, size, proof),
        "wrong index": (leaf, 4, size, proof),
        "wrong size": (leaf, index, 6, proof),
        "short proof": (leaf, index, size, proof[:-1]),
        "long proof": (leaf, index, size, [*proof, proof[0]]),
        "flipped hash": (leaf, index, size, [proof[0][:-1] + b"\x00", *proof[1:]]),
    }[tamper]
    with pytest.raises(ProofError):
        verify_inclusion(*arguments, top)


@pytest.mark.parametrize("tamper", ["wrong old root", "wrong new root", "short", "long", "empty"])
def test_a_bad_consistency_proof_is_refused(tamper: str) -> None:
    old, new = 6, 8
    proof = consistency_proof(old, new, READ)
    old_root, new_root = bytes.fromhex(ROOTS[5]), bytes.fromhex(ROOTS[7])
    arguments = {
        "wrong old root": (bytes.fromhex(ROOTS[4]), new_root, proof),
        "wrong new root": (old_root, bytes.fromhex(ROOTS[6]), proof),
        "short": (old_root, new_root, proof[:-1]),
        "long": (old_root, new_root, [*proof, proof[0]]),
        "empty": (old_root, new_root, []),
    }[tamper]
    with pytest.raises(ProofError):
        verify_consistency(old, new, *arguments)


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0)])
def test_proofs_are_refused_for_positions_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        inclusion_proof(index, size, READ)
    with pytest.raises(ProofError):
        consistency_proof(size + 1, size, READ)
