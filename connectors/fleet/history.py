"""Backdated moments: when the records of the past week happened.

The demo's generators spread their records over the 7 days before `now`, weighted
towards busy hours of the local day (China Standard Time, UTC+8, no daylight
saving), and write them RFC 3339 in UTC without fractions, e.g.
`2026-11-27T08:15:02Z`.
"""

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

WINDOW_SECONDS = 7 * 24 * 60 * 60
"""Records fall within this many seconds before `now`."""

LOCAL_OFFSET = timedelta(hours=8)

TRAFFIC_BY_HOUR: tuple[float, ...] = (
    *(0.25, 0.15, 0.1, 0.1, 0.15, 0.3),  # 00-05
    *(0.6, 1.0, 1.0, 0.8, 0.65, 0.65),  # 06-11
    *(0.7, 0.65, 0.65, 0.7, 0.85, 1.0),  # 12-17
    *(1.0, 0.85, 0.7, 0.6, 0.5, 0.35),  # 18-23
)
"""Relative traffic by local hour (0-23): quiet nights, morning and evening peaks."""


def window_end(count: int, now: datetime) -> datetime:
    """Check the arguments every backdating generator takes; return `now` in UTC.

    Raises `ValueError` for a negative count or a naive `now`."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def timestamps(
    rng: random.Random, count: int, end: datetime, by_hour: Sequence[float]
) -> list[datetime]:
    """Draw `count` whole-second moments in the 7 days before `end`, in time order.

    Moments are weighted by the local hour of day (rejection sampling), and each
    lies strictly after `end - 7 days` and strictly before `end`.
    """
    top = max(by_hour)
    whole = end.replace(microsecond=0)
    moments: list[datetime] = []
    while len(moments) < count:
        moment = whole - timedelta(seconds=rng.randint(1, WINDOW_SECONDS - 1))
        if rng.random() * top < by_hour[(moment + LOCAL_OFFSET).hour]:
            moments.append(moment)
    return sorted(moments)


def rfc3339(moment: datetime) -> str:
    """`2026-11-27T08:15:02Z`: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
