"""Ed25519 keys kept under the data directory (tokens, audit checkpoints)."""

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def load_or_create_key(path: Path, passphrase: bytes | None) -> Ed25519PrivateKey:
    """The signing key at `path`, created (mode 0600) on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    write_private(path, pem)
    return key


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """Random bytes at `path`, created (mode 0600) on first use."""
    if path.exists():
        secret = path.read_bytes()
        if len(secret) != size:
            raise ValueError(f"{path} does not hold a {size}-byte secret")
        return secret
    secret = os.urandom(size)
    write_private(path, secret)
    return secret


def write_private(path: Path, data: bytes) -> None:
    """A new file only its owner can read; never overwrites one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    # The key must be on disk before anything that depends on it (a wrapped data
    # key in a committed transaction) can be.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
