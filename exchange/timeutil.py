"""Time is always aware and UTC inside the exchange, and RFC 3339 on the wire."""

from datetime import UTC, datetime

from exchange.errors import BadRequest, FieldError


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read back from the database: SQLite drops the zone of the UTC times we
    store, PostgreSQL keeps it."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_rfc3339(moment: datetime) -> str:
    """`2026-11-28T08:15:02.5Z`: UTC, trailing zeros of the fraction dropped."""
    if moment.tzinfo is None:
        raise ValueError("a time without a zone cannot be written as RFC 3339")
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return text.rstrip("0").rstrip(".") + "Z"


def parse_rfc3339(text: str) -> datetime:
    """An aware UTC time from an RFC 3339 string with an offset or Z.

    Raises ValueError for text that is not a timestamp or has no offset: a time
    without a zone is ambiguous, and guessing one would misfile the record.
    """
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset or Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is outside the years 1–9999 in UTC") from None


def query_time(value: str | None, name: str) -> datetime | None:
    """A query parameter's time, or None; BadRequest naming the parameter if it is not one."""
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise BadRequest(
            f"{name} is not an RFC 3339 time", errors=[FieldError(str(error), name)]
        ) from None
