"""Signed checkpoints in the signed-note format (transparency-dev / C2SP). Pure.

    <origin>\\n<tree size>\\n<base64 root hash>\\n[extra lines]\\n
    \\n
    — <signer name> <base64(4-byte key id ‖ 64-byte Ed25519 signature)>\\n

The signature covers the body including its final newline. Key id: the first four
bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). Verifier key:
`<name>+<hex key id>+<base64(0x01 ‖ public key)>`. Only `cryptography` is needed,
so an auditor can verify offline without the exchange installed.
"""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space


class CheckpointError(ValueError):
    """A checkpoint or key that is malformed, or a signature that does not verify."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + _raw(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    encoded = base64.b64encode(bytes([ED25519]) + _raw(public)).decode()
    return f"{name}+{key_id(name, public).hex()}+{encoded}"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> "Verifier":
        """From `<name>+<hex key id>+<base64(0x01 ‖ key)>`; the id must match the key."""
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            identifier = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as error:
            raise CheckpointError(f"not a verifier key: {error}") from None
        if not name or len(raw) != 33 or raw[0] != ED25519 or len(identifier) != 4:
            raise CheckpointError("not an Ed25519 verifier key")
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
        if key_id(name, public) != identifier:
            raise CheckpointError("the key id does not match the key")
        return cls(name, identifier, public)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extra: tuple[str, ...] = ()

    def body(self) -> str:
        if not self.origin or "\n" in self.origin or any("\n" in e or not e for e in self.extra):
            raise CheckpointError("origin and extra lines must be non-empty single lines")
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extra]
        return "\n".join(lines) + "\n"


def sign(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note: body, blank line, one signature line."""
    body = checkpoint.body()
    signature = key.sign(body.encode())
    stamp = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
    return f"{body}\n{SIGNATURE_PREFIX}{name} {stamp}\n"


def open_note(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint, if `verifier` signed it. Raises CheckpointError otherwise."""
    body, separator, signatures = note.partition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise CheckpointError("not a signed note")
    body += "\n"
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("a signature line must start with an em dash")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("a signature is not base64") from None
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        try:
            verifier.public.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise CheckpointError("the checkpoint's signature does not verify") from None
        verified = True
    if not verified:
        raise CheckpointError(f"no signature by {verifier.name}")
    return _parse_body(body)


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has an origin, a size and a root hash")
    origin, size_text, root_text, *extra = lines
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise CheckpointError("the tree size is not a decimal number")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("the root hash is not base64") from None
    if len(root_hash) != 32:
        raise CheckpointError("the root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extra))
