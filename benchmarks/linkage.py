"""Linked ledgers, registry cross-checks and sharing figures vs the plain reads
they replace, in the same run.

On one served exchange with the demo's products — 3,000 captures and 500 parking
reports keyed by plate, 400 companies and 1,200 homes keyed by address:

- a linkage of one plate across both plate products vs the two filtered reads
  (`filter=plate=…`, exact spelling) a caller would otherwise make;
- a cross-check of the two registries (counts, matches counted by building, the
  first 100 matches) vs reading both registries whole over the API, which is what
  comparing them without the exchange would take (and hand both over);
- the sharing figures over the whole history vs one page of audit entries.

Each is timed over ROUNDS calls, the better of two runs kept.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.server import Running, calls_per_second
from connectors.fleet.captures import violation_captures
from connectors.fleet.product import VIOLATION_CAPTURES
from exchange.demo.parking import illegal_parking_reports
from exchange.demo.products import (
    BUSINESS_REGISTRATIONS,
    ILLEGAL_PARKING_REPORTS,
    RESIDENTIAL_ADDRESSES,
)
from exchange.demo.registries import DEMO_HOMES, business_registrations, residential_addresses

ROUNDS = 20
CAPTURES = 3_000


def _per_second(call: Callable[[], None]) -> float:
    return calls_per_second(call, ROUNDS)


def _ok(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


def _publish(running: Running, now: datetime) -> None:
    products: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
        ("fleet", VIOLATION_CAPTURES, violation_captures(CAPTURES, now=now)),
        ("hotline", _definition(ILLEGAL_PARKING_REPORTS), illegal_parking_reports(500, now=now)),
        ("market", _definition(BUSINESS_REGISTRATIONS), business_registrations(400, now=now)),
        ("housing", _definition(RESIDENTIAL_ADDRESSES), residential_addresses(DEMO_HOMES, now=now)),
    ]
    for key, definition, items in products:
        with running.client(key) as publisher:
            _ok(publisher.post("/v1/products", json=definition))
            _ok(publisher.post(f"/v1/products/{definition['slug']}/records", json=items))


def _definition(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def _grant(running: Running) -> None:
    with running.client("market") as market, running.client("steward") as steward:
        asked = _ok(
            market.post(
                "/v1/access-requests",
                json={
                    "product": "business-registrations",
                    "partner": "residential-addresses",
                    "purpose": "registry_reconciliation",
                    "justification": "benchmark: compare the two registries on address",
                    "days": 1,
                },
            )
        )
        _ok(steward.post(f"/v1/access-requests/{asked['id']}/approve", json={"reason": "bench"}))


def run(running: Running) -> list[tuple[str, float, str]]:
    now = datetime.now(UTC).replace(microsecond=0)
    _publish(running, now)
    _grant(running)
    rows: list[tuple[str, float, str]] = []
    with running.client("police") as police, running.client("market") as market:
        plate = _ok(
            police.get(
                "/v1/products/illegal-parking-reports/records",
                params={"purpose": "law_enforcement", "limit": 1},
            )
        )["records"][0]["plate"]
        linkage = {"kind": "plate", "value": plate, "purpose": "law_enforcement"}

        def two_reads() -> None:
            for product in ("violation-captures", "illegal-parking-reports"):
                _ok(
                    police.get(
                        f"/v1/products/{product}/records",
                        params={"purpose": "law_enforcement", "filter": f"plate={plate}"},
                    )
                )

        baseline = _per_second(two_reads)
        rows.append(("two filtered reads, exact spelling (baseline)", baseline, "calls/s"))
        linked = _per_second(lambda: _ok(police.post("/v1/linkage", json=linkage)))
        rows.append(
            ("POST /v1/linkage, one plate, two products", linked, f"{linked / baseline:.2f}x")
        )

        def both_registries() -> None:
            for product in ("business-registrations", "residential-addresses"):
                cursor = None
                while True:
                    params = {"purpose": "registry_reconciliation", "limit": 1000}
                    if cursor:
                        params["cursor"] = cursor
                    page = _ok(police.get(f"/v1/products/{product}/records", params=params))
                    cursor = page["next_cursor"]
                    if not cursor:
                        break

        whole = _per_second(both_registries)
        rows.append(("read both registries whole (baseline)", whole, "calls/s"))
        check = {
            "left": "business-registrations",
            "right": "residential-addresses",
            "purpose": "registry_reconciliation",
            "count_by": {"product": "residential-addresses", "field": "building"},
        }
        checked = _per_second(lambda: _ok(market.post("/v1/cross-checks", json=check)))
        rows.append(
            ("POST /v1/cross-checks, 400 x 1,200 on address", checked, f"{checked / whole:.2f}x")
        )
    with running.client("auditor") as auditor:
        page = _per_second(lambda: _ok(auditor.get("/v1/audit/entries", params={"limit": 100})))
        rows.append(("GET /v1/audit/entries, 100 (baseline)", page, "calls/s"))
        figures = _per_second(lambda: _ok(auditor.get("/v1/metrics/sharing")))
        rows.append(("GET /v1/metrics/sharing, whole history", figures, f"{figures / page:.2f}x"))
    return rows
