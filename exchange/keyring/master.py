"""The master keys that wrap every product's data key, kept as files.

`mk-<id>.key` holds 32 random bytes (mode 0600). Which one is current — the one
new data keys are wrapped under — is kept in the database (`key_head`), so that
choosing it and wrapping under it happen in one transaction that a rotation
waits for (docs/privacy.md). A key nothing is wrapped under any more is deleted:
whatever it alone wrapped, in any backup, can then no longer be opened.
"""

import os
import re
import secrets
from pathlib import Path

from exchange.keys import write_private
from exchange.privacy.sealing import KEY_BYTES

_ID = re.compile(r"^mk-[0-9a-f]{16}$")


class MasterKeyMissing(RuntimeError):
    """A data key is wrapped under a master key whose file is gone."""


class MasterKeys:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._loaded: dict[str, bytes] = {}

    def _path(self, key_id: str) -> Path:
        if not _ID.match(key_id):
            raise MasterKeyMissing(f"{key_id!r} is not a master key id")
        return self.directory / f"{key_id}.key"

    def key(self, key_id: str) -> bytes:
        if key_id not in self._loaded:
            path = self._path(key_id)
            if not path.exists():
                raise MasterKeyMissing(f"master key {key_id} is not in {self.directory}")
            secret = path.read_bytes()
            if len(secret) != KEY_BYTES:
                raise MasterKeyMissing(f"{path} does not hold a {KEY_BYTES}-byte key")
            self._loaded[key_id] = secret
        return self._loaded[key_id]

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("mk-*.key") if _ID.match(p.stem))

    def create(self) -> str:
        """A new key; its id."""
        key_id = f"mk-{secrets.token_hex(8)}"
        write_private(self._path(key_id), os.urandom(KEY_BYTES))
        return key_id

    def delete(self, key_id: str) -> None:
        """Forget a key for good."""
        self._path(key_id).unlink(missing_ok=True)
        self._loaded.pop(key_id, None)
