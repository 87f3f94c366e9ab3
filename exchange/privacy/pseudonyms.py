"""Keyed pseudonyms that one consumer can count with and no two consumers can join.

A pseudonym is HMAC-SHA256 of the value, truncated to 128 bits and written in
base32 (`ps_…`), under a key derived with HKDF-SHA256 from the exchange's master
secret and (consumer organisation, product, epoch). So:

- one consumer sees the same pseudonym for the same plate throughout an epoch
  (it can count repeat offenders);
- two consumers see unrelated pseudonyms for the same plate (they cannot link
  their copies), and so does one consumer in the next epoch (no long-term
  tracking);
- without the master secret, which never leaves the exchange, nobody can
  compute or reverse one. An unkeyed hash would be no protection at all: there
  are few enough plates to hash every one (a Guangdong plate's SHA-256 falls to
  brute force in about a minute).

Values are canonicalised first (a plate's separators and case do not matter).
"""

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "ps_"
_INFO = b"exchange/pseudonym/v1"
_PLATE = re.compile(r"^([\u4e00-\u9fff][A-Z])[·•.\- ]?([A-Z0-9]{5,6})$")
EPOCH_ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 65_536


def canonical(value: Any) -> str | None:
    """The text a pseudonym is computed over; None for values that have none."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    plate = _PLATE.match(text.upper())
    return f"{plate[1]}{plate[2]}" if plate else text


@dataclass(frozen=True)
class Epoch:
    """A numbered period of `days` days from 2026-01-01 UTC."""

    number: int
    days: int

    @classmethod
    def at(cls, moment: datetime, days: int) -> "Epoch":
        elapsed = moment.astimezone(UTC) - EPOCH_ORIGIN
        return cls(elapsed // timedelta(days=days), days)

    @property
    def start(self) -> datetime:
        return EPOCH_ORIGIN + timedelta(days=self.number * self.days)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


class Pseudonymizer:
    """Pseudonyms in one domain (consumer, product, epoch), cached: plates repeat."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._cache: dict[str, str] = {}

    def __call__(self, value: Any) -> str | None:
        text = canonical(value)
        if text is None:
            return None
        found = self._cache.get(text)
        if found is None:
            mac = self._mac.copy()
            mac.update(text.encode())
            digest = base64.b32encode(mac.digest()[:16]).decode().rstrip("=").lower()
            found = PREFIX + digest
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = found
        return found


class PseudonymKeys:
    """Derives each domain's key from the master secret; holds no consumer's key."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the pseudonym master secret must be at least 32 bytes")
        self._master = master

    def domain(self, consumer: str, product: str, epoch: Epoch) -> Pseudonymizer:
        info = b"|".join(
            (_INFO, consumer.encode(), product.encode(), f"{epoch.days}d:{epoch.number}".encode())
        )
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._master)
        return Pseudonymizer(key)
