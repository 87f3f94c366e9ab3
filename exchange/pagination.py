"""Opaque cursors: clients pass back what they were given and never build one."""

import base64
import json

from exchange.errors import BadRequest, FieldError


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, field: str = "cursor") -> int | None:
    """The position after which the next page starts; BadRequest (naming `field`)
    if it is not ours."""
    if not cursor:
        return None
    not_ours = [FieldError(reason="not a cursor this API gave out", field=field)]
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (ValueError, KeyError, TypeError) as error:
        raise BadRequest("cursor is not one this API gave out", errors=not_ours) from error
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
        raise BadRequest("cursor is not one this API gave out", errors=not_ours)
    return after
