"""Signed checkpoints (audit/checkpoint.py), pure and in memory.

The layout is checked byte for byte against the signed-note format, and the key
encoding against the reference vectors of Go's golang.org/x/mod/sumdb/note, a
separate implementation: the same Ed25519 seed must give the same verifier key,
key id and signature there and here.
"""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import Checkpoint, CheckpointError, Verifier, open_note, sign, verifier_key

ORIGIN = "exchange.test/audit"
ROOT = hashlib.sha256(b"a tree").digest()
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
EM_DASH = "\u2014 "

# golang.org/x/mod/sumdb/note, note_test.go: Peter's signer and verifier keys, and
# the signature of TEXT under it.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
# The verifier key of an all-zero seed, under an ASCII and a non-ASCII name.
GO_ZERO_SEED_KEYS = {
    "EnochRoot": "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
    "Señor-0": "Señor-0+2b9e7c9d+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
}


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_id(name: str, key: Ed25519PrivateKey) -> bytes:
    """The key id, derived here from the format's definition."""
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + _raw(key)).digest()[:4]


def _verifier(name: str = ORIGIN, key: Ed25519PrivateKey = KEY) -> Verifier:
    return Verifier.parse(verifier_key(name, key.public_key()))


def _stamp(body: str, name: str, key: Ed25519PrivateKey) -> str:
    """A signature line over `body`, made here (not by the code under test)."""
    signature = key.sign(body.encode())
    return f"{EM_DASH}{name} {base64.b64encode(_key_id(name, key) + signature).decode()}\n"


def _note(body: str, name: str = ORIGIN, key: Ed25519PrivateKey = KEY) -> str:
    """Any body, correctly signed: for bodies `sign` would never produce."""
    return f"{body}\n{_stamp(body, name, key)}"


def _checkpoint(size: int = 42, extra: tuple[str, ...] = ("time 2026-11-28T08:00:00Z",)) -> str:
    return sign(Checkpoint(ORIGIN, size, ROOT, extra), ORIGIN, KEY)


# --- the round trip and the layout ------------------------------------------------------


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint(ORIGIN, 42, ROOT, ("time 2026-11-28T08:00:00Z",)),
        Checkpoint(ORIGIN, 1, ROOT),
        Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest()),
        Checkpoint("日志.example/审计", 2**63 - 1, bytes(32), ("a", "b c", "— not a signature")),
    ],
    ids=["with-time", "no-extra", "empty-tree", "unicode-many-extras"],
)
def test_a_signed_checkpoint_opens_to_itself(checkpoint: Checkpoint) -> None:
    note = sign(checkpoint, checkpoint.origin, KEY)
    assert open_note(note, _verifier(checkpoint.origin)) == checkpoint


def test_the_note_has_the_signed_note_layout() -> None:
    extra = ("time 2026-11-28T08:00:00Z", "another line")
    note = sign(Checkpoint(ORIGIN, 1234, ROOT, extra), ORIGIN, KEY)

    assert note.endswith("\n")
    lines = note[:-1].split("\n")
    assert lines[:5] == [ORIGIN, "1234", base64.b64encode(ROOT).decode(), *extra]
    assert lines[5] == ""
    assert len(lines) == 7
    signature_line = lines[6]
    assert signature_line.startswith("\u2014 ")
    assert signature_line.encode().startswith(b"\xe2\x80\x94 ")  # U+2014 in UTF-8
    name, encoded = signature_line[2:].split(" ")
    assert name == ORIGIN
    stamp = base64.b64decode(encoded, validate=True)
    assert len(stamp) == 4 + 64
    assert stamp[:4] == _key_id(ORIGIN, KEY)
    body = "\n".join(lines[:5]) + "\n"
    KEY.public_key().verify(stamp[4:], body.encode())  # over the body and its final newline
    assert note == _note(body)


def test_the_key_id_is_the_head_of_sha256_of_name_newline_type_and_key() -> None:
    for name in (ORIGIN, "x", "Señor-0"):
        for key in (KEY, OTHER):
            verifier = _verifier(name, key)
            expected = hashlib.sha256(name.encode("utf-8") + b"\x0a\x01" + _raw(key)).digest()[:4]
            assert verifier.key_id == expected
    assert _verifier(ORIGIN, KEY).key_id != _verifier(ORIGIN, OTHER).key_id
    assert _verifier(ORIGIN, KEY).key_id != _verifier(ORIGIN + "x", KEY).key_id


def test_the_verifier_key_is_name_hex_id_and_base64_of_type_and_key() -> None:
    text = verifier_key(ORIGIN, KEY.public_key())
    name, hex_id, encoded = text.split("+", 2)
    assert name == ORIGIN
    assert hex_id == _key_id(ORIGIN, KEY).hex()
    assert len(hex_id) == 8 and hex_id == hex_id.lower()
    assert base64.b64decode(encoded, validate=True) == b"\x01" + _raw(KEY)

    parsed = Verifier.parse(text)
    assert (parsed.name, parsed.key_id) == (ORIGIN, _key_id(ORIGIN, KEY))
    assert parsed.public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == _raw(KEY)
    assert verifier_key(parsed.name, parsed.public) == text
    assert Verifier.parse(text + "\n") == parsed  # as GET /v1/audit/public-key serves it


# --- interop with Go's sumdb/note -----------------------------------------------------------


def _go_key() -> Ed25519PrivateKey:
    encoded = base64.b64decode(GO_SIGNER.split("+", 4)[4])
    assert encoded[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(encoded[1:])


def test_the_go_reference_key_gives_the_go_verifier_key_and_signature() -> None:
    key = _go_key()
    assert verifier_key("PeterNeumann", key.public_key()) == GO_VERIFIER
    parsed = Verifier.parse(GO_VERIFIER)
    assert parsed.key_id.hex() == "c74f20a3"
    assert _stamp(GO_TEXT, "PeterNeumann", key) == f"{EM_DASH}PeterNeumann {GO_SIGNATURE}\n"
    # Go's note is correctly signed but is no checkpoint: its signature is checked,
    # then its body is refused.
    go_note = f"{GO_TEXT}\n{EM_DASH}PeterNeumann {GO_SIGNATURE}\n"
    with pytest.raises(CheckpointError, match="origin, a size and a root"):
        open_note(go_note, parsed)
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(go_note.replace("problem,", "problem;"), parsed)


@pytest.mark.parametrize("name", sorted(GO_ZERO_SEED_KEYS))
def test_verifier_keys_match_go_for_ascii_and_non_ascii_names(name: str) -> None:
    zero = Ed25519PrivateKey.from_private_bytes(bytes(32))
    assert verifier_key(name, zero.public_key()) == GO_ZERO_SEED_KEYS[name]
    assert Verifier.parse(GO_ZERO_SEED_KEYS[name]).name == name


def test_every_mangling_of_the_go_verifier_key_is_refused() -> None:
    """Go's TestNewVerifier: every proper substring, and every byte plus one."""
    text = GO_VERIFIER
    accepted = []
    for start in range(len(text) + 1):
        for end in range(start + 1, len(text) + 1):
            if (start, end) != (0, len(text)):
                accepted += _parses(text[start:end])
    for position in range(len(text)):
        accepted += _parses(text[:position] + chr(ord(text[position]) + 1) + text[position + 1 :])
    assert accepted == []


def _parses(text: str) -> list[str]:
    try:
        Verifier.parse(text)
    except CheckpointError:
        return []
    return [text]


# --- verifier keys that are refused --------------------------------------------------------


def _key_text(name: str, hex_id: str, payload: bytes) -> str:
    return f"{name}+{hex_id}+{base64.b64encode(payload).decode()}"


def _id_for(name: str, payload: bytes) -> str:
    return hashlib.sha256(name.encode() + b"\n" + payload).digest()[:4].hex()


ED_PAYLOAD = b"\x01" + _raw(KEY)
BAD_KEYS = {
    "key-id-of-another-key": _key_text(ORIGIN, _key_id(ORIGIN, OTHER).hex(), ED_PAYLOAD),
    "key-id-of-another-name": _key_text(ORIGIN, _key_id("other", KEY).hex(), ED_PAYLOAD),
    "key-id-off-by-one": _key_text(
        ORIGIN, (int(_key_id(ORIGIN, KEY).hex(), 16) ^ 1).to_bytes(4, "big").hex(), ED_PAYLOAD
    ),
    # another algorithm's type byte, with the key id computed over it as well
    "type-byte-02": _key_text(ORIGIN, _id_for(ORIGIN, b"\x02" + _raw(KEY)), b"\x02" + _raw(KEY)),
    "type-byte-04": _key_text(ORIGIN, _id_for(ORIGIN, b"\x04" + _raw(KEY)), b"\x04" + _raw(KEY)),
    "type-byte-00": _key_text(ORIGIN, _key_id(ORIGIN, KEY).hex(), b"\x00" + _raw(KEY)),
    "no-type-byte": _key_text(ORIGIN, _key_id(ORIGIN, KEY).hex(), _raw(KEY)),
    "key-too-long": _key_text(ORIGIN, _id_for(ORIGIN, ED_PAYLOAD + b"\0"), ED_PAYLOAD + b"\0"),
    "key-too-short": _key_text(ORIGIN, _id_for(ORIGIN, ED_PAYLOAD[:-1]), ED_PAYLOAD[:-1]),
    "empty-name": _key_text("", _id_for("", ED_PAYLOAD), ED_PAYLOAD),
    "short-key-id": _key_text(ORIGIN, _key_id(ORIGIN, KEY).hex()[:6], ED_PAYLOAD),
    "long-key-id": _key_text(ORIGIN, _key_id(ORIGIN, KEY).hex() + "00", ED_PAYLOAD),
    "key-id-not-hex": _key_text(ORIGIN, "zzzzzzzz", ED_PAYLOAD),
    "key-not-base64": f"{ORIGIN}+{_key_id(ORIGIN, KEY).hex()}+not*base64!",
    "two-parts": f"{ORIGIN}+{_key_id(ORIGIN, KEY).hex()}",
    "one-part": ORIGIN,
    "empty": "",
    "garbage": "this is not a key at all",
    "pem": KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode(),
}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_a_bad_verifier_key_is_refused(case: str) -> None:
    with pytest.raises(CheckpointError):
        Verifier.parse(BAD_KEYS[case])


# --- notes that are refused ------------------------------------------------------------------


def _body(origin: str = ORIGIN, size: str = "42", root: str = "", *extra: str) -> str:
    root = root or base64.b64encode(ROOT).decode()
    return "\n".join([origin, size, root, *extra]) + "\n"


def test_our_helper_signs_exactly_as_sign_does() -> None:
    """So the hand-made notes below differ from real ones only where they mean to."""
    assert _note(_body(ORIGIN, "42", "", "time 2026-11-28T08:00:00Z")) == _checkpoint()


EDITS = {
    "size": ("\n42\n", "\n43\n"),
    "size-shrunk": ("\n42\n", "\n4\n"),
    "root": (base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),
    "origin": (ORIGIN + "\n", ORIGIN + "x\n"),
    "extra-line-changed": ("time 2026-11-28T08:00:00Z", "time 2026-11-28T08:00:01Z"),
    "extra-line-added": ("00Z\n", "00Z\nadded\n"),
    "extra-line-removed": ("time 2026-11-28T08:00:00Z\n", ""),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_body_changed_after_signing_is_refused(edit: str) -> None:
    note = _checkpoint()
    old, new = EDITS[edit]
    assert note.count(old) == 1
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(note.replace(old, new), _verifier())


def test_a_signature_by_another_key_under_the_same_name_is_refused() -> None:
    forged = sign(Checkpoint(ORIGIN, 42, ROOT), ORIGIN, OTHER)
    with pytest.raises(CheckpointError, match="no signature by"):
        open_note(forged, _verifier())


def test_a_bad_signature_under_our_own_key_id_is_refused() -> None:
    """The attacker copies our name and key id onto a signature of their own."""
    body = _body()
    stamp = base64.b64encode(_key_id(ORIGIN, KEY) + OTHER.sign(body.encode())).decode()
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(f"{body}\n{EM_DASH}{ORIGIN} {stamp}\n", _verifier())
    truncated = base64.b64encode(_key_id(ORIGIN, KEY) + KEY.sign(body.encode())[:63]).decode()
    with pytest.raises(CheckpointError):
        open_note(f"{body}\n{EM_DASH}{ORIGIN} {truncated}\n", _verifier())


def test_a_signature_by_our_key_under_another_name_is_refused() -> None:
    with pytest.raises(CheckpointError, match="no signature by"):
        open_note(_note(_body(), name="someone-else"), _verifier())


@pytest.mark.parametrize(
    "note",
    [
        _body(),
        _body() + "\n",
        _body() + "\n\n",
        _checkpoint()[:-1],  # the signature line's newline cut off
        "",
        "\n\n",
    ],
    ids=["body-only", "blank-line-only", "two-blank-lines", "no-final-newline", "empty", "blank"],
)
def test_a_note_without_a_signature_is_refused(note: str) -> None:
    with pytest.raises(CheckpointError):
        open_note(note, _verifier())


@pytest.mark.parametrize("dash", ["- ", "-- ", "\u2013 ", "\u2014", "\u2014\u2014 ", " \u2014 "])
def test_a_signature_line_without_the_em_dash_and_space_is_refused(dash: str) -> None:
    note = _checkpoint()
    assert note.count(EM_DASH) == 1
    with pytest.raises(CheckpointError):
        open_note(note.replace(EM_DASH, dash), _verifier())


def test_an_unexpected_line_after_the_signatures_is_refused() -> None:
    with pytest.raises(CheckpointError, match="em dash"):
        open_note(_checkpoint() + "Unexpected line.\n", _verifier())


@pytest.mark.parametrize("length", [1, 16, 31, 33, 64])
def test_a_root_that_is_not_32_bytes_is_refused(length: int) -> None:
    root = base64.b64encode(bytes(range(length))).decode()
    with pytest.raises(CheckpointError, match="32 bytes"):
        open_note(_note(_body(ORIGIN, "42", root)), _verifier())


@pytest.mark.parametrize("root", ["not base64!", base64.b64encode(ROOT).decode()[:-1], ROOT.hex()])
def test_a_root_that_is_not_base64_of_a_hash_is_refused(root: str) -> None:
    with pytest.raises(CheckpointError):
        open_note(_note(_body(ORIGIN, "42", root)), _verifier())


@pytest.mark.parametrize(
    "size",
    [
        "042",
        "00",
        "01",
        "4a",
        "0x2a",
        "-1",
        "+42",
        " 42",
        "42 ",
        "4_2",
        "4.2",
        "1e3",
        "\u0664\u0662",  # ٤٢: Arabic-Indic digits are digits to str.isdigit, not to the format
        "\uff14\uff12",  # ４２: fullwidth digits
        "4\u00b2",  # 4²: a superscript two
    ],
    ids=repr,
)
def test_a_size_that_is_not_a_plain_ascii_decimal_is_refused(size: str) -> None:
    with pytest.raises(CheckpointError, match="tree size"):
        open_note(_note(_body(ORIGIN, size)), _verifier())


@pytest.mark.parametrize("size", ["0", "1", "10", "9007199254740993"])
def test_a_plain_decimal_size_is_read_exactly(size: str) -> None:
    opened = open_note(_note(_body(ORIGIN, size)), _verifier())
    assert opened.size == int(size)
    assert str(opened.size) == size


def test_a_body_without_origin_size_and_root_is_refused() -> None:
    for body in ("origin\n42\n", "origin\n", "\n", _body(ORIGIN, "")):
        with pytest.raises(CheckpointError):
            open_note(_note(body), _verifier())


# --- several signatures -------------------------------------------------------------------------


@pytest.mark.parametrize("ours_first", [True, False])
def test_a_note_with_another_signature_besides_ours_verifies(ours_first: bool) -> None:
    body = _body(ORIGIN, "42", "", "time 2026-11-28T08:00:00Z")
    ours, witness = _stamp(body, ORIGIN, KEY), _stamp(body, "witness.example", OTHER)
    note = f"{body}\n{ours}{witness}" if ours_first else f"{body}\n{witness}{ours}"
    opened = open_note(note, _verifier())
    assert opened == Checkpoint(ORIGIN, 42, ROOT, ("time 2026-11-28T08:00:00Z",))
    # and the witness's key opens it too
    assert open_note(note, _verifier("witness.example", OTHER)) == opened


def test_a_signature_by_another_key_of_our_name_does_not_hide_ours() -> None:
    body = _body()
    note = f"{body}\n{_stamp(body, ORIGIN, OTHER)}{_stamp(body, ORIGIN, KEY)}"
    assert open_note(note, _verifier()).size == 42


def test_another_signature_does_not_rescue_a_changed_body() -> None:
    body = _body()
    note = f"{body}\n{_stamp(body, ORIGIN, KEY)}{_stamp(body, 'witness.example', OTHER)}"
    with pytest.raises(CheckpointError):
        open_note(note.replace("\n42\n", "\n43\n"), _verifier())


def test_only_another_signers_signature_is_not_enough() -> None:
    with pytest.raises(CheckpointError, match="no signature by"):
        open_note(_note(_body(), "witness.example", OTHER), _verifier())


# --- what sign refuses to write ---------------------------------------------------------------


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint("", 1, ROOT),
        Checkpoint("two\nlines", 1, ROOT),
        Checkpoint(ORIGIN, 1, ROOT, ("",)),
        Checkpoint(ORIGIN, 1, ROOT, ("a\nb",)),
    ],
    ids=["empty-origin", "multi-line-origin", "empty-extra", "multi-line-extra"],
)
def test_sign_refuses_a_checkpoint_it_could_not_write_as_one_note(checkpoint: Checkpoint) -> None:
    with pytest.raises(CheckpointError):
        sign(checkpoint, ORIGIN, KEY)
