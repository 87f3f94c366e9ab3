"""Reading a publish request's body: a JSON array, or NDJSON (one record a line);
or an image, as bytes."""

import json
from typing import Any

from fastapi import Request

from exchange.errors import BadRequest, FieldError, PayloadTooLarge

NDJSON = "application/x-ndjson"


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refused with PayloadTooLarge as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    return bytes(body)


async def read_batch(request: Request) -> list[Any]:
    """The records in the body, in order. Raises BadRequest naming the line or
    position that does not parse, PayloadTooLarge past the configured size."""
    body = await read_limited(request, request.app.state.settings.max_body_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"the body is not UTF-8 (byte {error.start})") from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    items = _ndjson(text) if content_type == NDJSON else _json_array(text)
    max_records = request.app.state.settings.max_batch_records
    if len(items) > max_records:
        raise PayloadTooLarge(f"{len(items)} records in one batch; at most {max_records}")
    return items


def _json_array(text: str) -> list[Any]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(items, list):
        raise BadRequest("the body must be a JSON array of records (or NDJSON)")
    return items


def _ndjson(text: str) -> list[Any]:
    items, errors = [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as error:
            errors.append(
                FieldError(f"line {line_number}: {error.msg}", None, len(items) + len(errors))
            )
    if errors:
        raise BadRequest(
            f"{len(errors)} NDJSON lines do not parse; nothing was written", errors=errors
        )
    return items
