"""Client secrets: generated with the OS's CSPRNG, stored only as a slow salted hash.

scrypt (RFC 7914) from the standard library: memory-hard, so a stolen table is
expensive to brute-force even though secrets are already high-entropy.
"""

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"


def new_client_id() -> str:
    return "cl_" + secrets.token_urlsafe(12)


def new_client_secret() -> str:
    return "cs_" + secrets.token_urlsafe(32)


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(_derive(secret, salt, _N, _R, _P))}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison; False for any malformed stored value."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        derived = _derive(secret, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(digest))


# Verified against when the client id is unknown, so both failures take as long.
DUMMY_HASH = hash_secret(new_client_secret())
