"""Envelope encryption of records at rest. Pure; no I/O.

Each product has its own 256-bit **data key**; the data key is stored only
*wrapped* (AES-256-GCM) under the exchange's current **master key**, so:

- rotating the master key re-wraps a few dozen bytes per product and never
  re-encrypts a record;
- destroying a product's wrapped data key makes every copy of its ciphertext —
  the database, its backups, replicas, old disk blocks — unreadable at once
  (crypto-shredding).

A record's protected fields (sensitivities personal, sensitive, location and
image) are sealed together as one AES-256-GCM message whose associated data
names the product and the record and holds what the row keeps in the clear, so
a sealed blob moved to another row does not open, and neither does a row whose
clear fields were edited. Each blob is `version byte ‖ 96-bit random nonce ‖ ciphertext+tag`.

Two keyed digests come from the data key through HKDF, with separate labels:
the record's content hash (publishing the same id twice is recognised without an
unkeyed hash of a plate in the table) and a **blind index** of each filterable
sealed field, so a raw-view reader can still filter on `plate=…` while the table
holds no plate.

Everything here refuses rather than guesses: a wrong key, a moved blob or a
flipped bit raises `SealError`.
"""

import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12
_WRAP_LABEL = b"exchange/data-key/v1"
_RECORD_LABEL = b"exchange/record/v1"
_IMAGE_LABEL = b"exchange/image/v1"


class SealError(ValueError):
    """Ciphertext that does not open under this key for this place."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
        raise SealError("not a sealed blob of a known version")
    nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return aead.decrypt(nonce, body, aad)
    except InvalidTag:
        raise SealError("the blob does not open under this key for this place") from None


def _place(label: bytes, *parts: str) -> bytes:
    """Associated data: a label and length-prefixed parts, so no two places collide."""
    encoded = [part.encode() for part in parts]
    return label + b"".join(len(part).to_bytes(4, "big") + part for part in encoded)


def wrap(master: bytes, master_id: str, product_id: int, data_key: bytes) -> bytes:
    """The data key sealed under a master key, bound to its product and master id."""
    if len(data_key) != KEY_BYTES or len(master) != KEY_BYTES:
        raise ValueError("keys are 32 bytes")
    return _seal(AESGCM(master), data_key, _place(_WRAP_LABEL, master_id, str(product_id)))


def unwrap(master: bytes, master_id: str, product_id: int, wrapped: bytes) -> bytes:
    """Raises SealError if `wrapped` is not this product's key under this master."""
    return _open(AESGCM(master), wrapped, _place(_WRAP_LABEL, master_id, str(product_id)))


def _derive(key: bytes, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"exchange/" + purpose)
    return hkdf.derive(key)


class DataKey:
    """One product's data key: seals records and images, and keys their digests."""

    def __init__(self, key: bytes, product_id: int) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self._aead = AESGCM(key)
        self._product = str(product_id)
        self._digest_mac = hmac.new(_derive(key, b"content-hash"), digestmod=hashlib.sha256)
        self._blind_mac = hmac.new(_derive(key, b"blind-index"), digestmod=hashlib.sha256)
        self._subject_mac = hmac.new(_derive(key, b"subject-key"), digestmod=hashlib.sha256)

    def seal_fields(self, record_id: str, fields: dict[str, Any], clear: Any) -> bytes:
        """Seal a record's protected fields, bound to its id and to what its row keeps
        in the clear (`clear`: any JSON value), so that a change to either is caught."""
        return _seal(self._aead, canonical_json(fields), self._record_place(record_id, clear))

    def open_fields(self, record_id: str, blob: bytes, clear: Any) -> dict[str, Any]:
        plain = _open(self._aead, blob, self._record_place(record_id, clear))
        fields = json.loads(plain)
        if not isinstance(fields, dict):
            raise SealError("sealed fields are not an object")
        return fields

    def _record_place(self, record_id: str, clear: Any) -> bytes:
        return _place(_RECORD_LABEL, self._product, record_id) + canonical_json(clear)

    def seal_image(self, record_id: str, data: bytes) -> bytes:
        return _seal(self._aead, data, _place(_IMAGE_LABEL, self._product, record_id))

    def open_image(self, record_id: str, blob: bytes) -> bytes:
        return _open(self._aead, blob, _place(_IMAGE_LABEL, self._product, record_id))

    def content_hash(self, content: dict[str, Any]) -> str:
        mac = self._digest_mac.copy()
        mac.update(canonical_json(content))
        return mac.hexdigest()

    def blind(self, field: str, value: Any) -> str:
        """The keyed digest a filter on a sealed field is matched against."""
        mac = self._blind_mac.copy()
        mac.update(canonical_json([field, value]))
        return mac.hexdigest()[:32]

    def subject_key(self, kind: str, key: str) -> str:
        """The keyed digest of a normalised subject key, which linkage and cross-checks
        look records up by. Keyed per product: a copy of the database cannot join two
        products' subjects without both data keys."""
        mac = self._subject_mac.copy()
        mac.update(canonical_json([kind, key]))
        return mac.hexdigest()[:32]
