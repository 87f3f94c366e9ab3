"""The keyed subject index: which reads returned records about one plate (or other
subject a product declares), without the log holding the plate.

A subject's key is HMAC-SHA256(secret, product ‖ 0x00 ‖ value). The secret stays
on the exchange (`$EXCHANGE_DATA_DIR/keys/subject-index.key`), so a stolen copy of
the log cannot be searched by guessing plates — an unkeyed hash of a plate is
reversed by brute force in about a minute.

Where the product declares what kind of subject its field holds (`subject_kind`),
the index holds the subject's normalised key (`linkage.keys`): "粤A 12345" and
"粤A·12345" are one plate, found by either spelling.
"""

import hashlib
import hmac

from exchange.linkage.keys import normalised


class SubjectIndex:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the subject index key must be at least 32 bytes")
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)

    def key(self, product: str, value: str) -> str:
        mac = self._mac.copy()
        mac.update(product.encode() + b"\x00" + value.encode())
        return mac.hexdigest()


def indexed_value(kind: str | None, value: str) -> str:
    """The form a subject is indexed under: its normalised key if the product
    declares the subject's kind, else the value as published."""
    return normalised(kind, value) if kind else value
