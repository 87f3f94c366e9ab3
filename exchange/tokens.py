"""Access tokens: short-lived EdDSA (Ed25519) JWTs, and the key that signs them.

Verification pins the algorithm to EdDSA and the key to our `kid`, and requires
every claim we issue, so `alg: none`, an HS256 token keyed with our public key, a
foreign key, an expired or not-yet-valid token, a wrong issuer or audience, and a
tampered payload are all refused.
"""

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange.errors import Unauthorized

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class Claims:
    subject: str
    token_id: str
    expires_at: datetime


class TokenService:
    def __init__(self, key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl_seconds: int):
        self._key = key
        self._public: Ed25519PublicKey = key.public_key()
        self.issuer, self.audience, self.ttl_seconds = issuer, audience, ttl_seconds
        raw = self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._x = _b64url(raw)
        thumbprint_input = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": self._x}, separators=(",", ":"), sort_keys=True
        )
        self.kid = _b64url(hashlib.sha256(thumbprint_input.encode()).digest())  # RFC 7638

    def jwks(self) -> dict[str, Any]:
        key = {"kty": "OKP", "crv": "Ed25519", "x": self._x, "kid": self.kid}
        return {"keys": [{**key, "alg": ALGORITHM, "use": "sig"}]}

    def issue(self, subject: str) -> tuple[str, int]:
        now = datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, self.ttl_seconds

    def verify(self, token: str) -> Claims:
        """Raises Unauthorized, with a reason that reveals nothing secret."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized("the token is malformed") from error
        if header.get("alg") != ALGORITHM or header.get("kid") != self.kid:
            raise Unauthorized("the token was not signed by this exchange's key")
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("the token has expired") from error
        except jwt.PyJWTError as error:
            raise Unauthorized(f"the token is not valid: {error}") from error
        return Claims(
            subject=str(claims["sub"]),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
