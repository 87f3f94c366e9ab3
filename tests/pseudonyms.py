"""What a consumer should be shown for a personal value: its own keyed pseudonym, worked
out here from the exchange's master secret (on disk under the test's data dir)."""

import re
from datetime import timedelta
from typing import Any

import h3

from exchange.privacy.pseudonyms import Epoch, PseudonymKeys
from exchange.settings import Settings
from exchange.timeutil import parse_rfc3339

PSEUDONYM = re.compile(r"^ps_[a-z2-7]{26}$")


def pseudonym_for(
    settings: Settings, consumer: str, product: str, value: Any, until: str, days: int = 30
) -> str:
    """The pseudonym the organisation `consumer` is shown for `value` in `product`, in the
    epoch of `days` days that ends at `until` (a read's `pseudonyms_until`)."""
    end = parse_rfc3339(until)
    epoch = Epoch.at(end - timedelta(days=days), days)
    assert epoch.end == end, f"{until} is not the end of a {days}-day epoch"
    keys = PseudonymKeys(settings.resolved_pseudonym_key_path.read_bytes())
    pseudonym = keys.domain(consumer, product, epoch)(value)
    assert pseudonym is not None
    return pseudonym


def cell_of(point: dict[str, float], resolution: int = 8) -> dict[str, Any]:
    """A point generalised to its H3 cell: the cell's centre (6 decimals) and id."""
    cell = h3.latlng_to_cell(point["lat"], point["lon"], resolution)
    lat, lon = h3.cell_to_latlng(cell)
    return {"lat": round(lat, 6), "lon": round(lon, 6), "cell": f"h3:{cell}"}
