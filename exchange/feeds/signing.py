"""Standard Webhooks (standardwebhooks.com): secrets and signatures. Pure.

A secret is `whsec_` + base64 of 32 random bytes. A message is signed as
`v1,` + base64(HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")); while a
rotated-out secret is still in its overlap period, both signatures are sent,
space-separated, so a receiver holding either one verifies.
"""

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets_in_force: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three webhook-* headers, one signature per secret in force."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets_in_force
        ),
    }
