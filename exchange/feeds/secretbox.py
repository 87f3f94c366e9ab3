"""Webhook secrets at rest: the exchange must sign with them, so they cannot be
hashed; they are stored sealed (AES-256-GCM) under a key file of the data
directory, bound to their subscription, and shown in the clear only once."""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, subscription_uid: str, secret: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), _bound(subscription_uid))

    def open(self, subscription_uid: str, sealed: bytes) -> str:
        """ValueError if the sealed secret is not this subscription's, or was altered."""
        try:
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _bound(subscription_uid))
        except InvalidTag as error:
            raise ValueError("the webhook secret does not open under this key") from error
        return plain.decode()


def _bound(subscription_uid: str) -> bytes:
    return b"exchange/webhook-secret/v1:" + subscription_uid.encode()
