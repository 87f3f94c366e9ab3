"""Console pages vs the API calls behind them, in the same run.

A console page is the API's route functions plus a template, so its cost should
be the API calls' cost and a little more. On one served exchange with the fleet's
captures product, 2,000 captures and an audit log of their reads, each page is
fetched over HTTP with a signed-in session cookie, and compared with the same
data over the API with a bearer token (each measured twice, the better kept):

- the catalog page vs GET /v1/products;
- a product page (its definition and one decision explanation per declared
  purpose) vs GET /v1/products/{slug} plus POST /v1/decisions per purpose;
- the audit explorer's first page vs GET /v1/audit/entries with the same limit;
- and, as the floor, GET /healthz.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from benchmarks.server import Running, calls_per_second
from connectors.fleet.product import VIOLATION_CAPTURES
from connectors.fleet.simulation import Fleet

ROUNDS = 60
RECORDS = 2_000
SLUG = VIOLATION_CAPTURES["slug"]


def _rate(fetch: Callable[[], None]) -> float:
    """Pages per second, the better of two runs of ROUNDS fetches."""
    return calls_per_second(fetch, ROUNDS)


@contextmanager
def _signed_in(running: Running, key: str) -> Iterator[httpx.Client]:
    """A browser without JavaScript: the session cookie from the sign-in form."""
    with httpx.Client(base_url=running.base_url, timeout=60) as browser:
        form = browser.get("/console/sign-in").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf, "no sign-in form"
        party = running.credentials[key]
        signed = browser.post(
            "/console/sign-in",
            data={"csrf": csrf.group(1), **{k: party[k] for k in ("client_id", "client_secret")}},
        )
        assert signed.status_code == 303, signed.status_code
        yield browser


def _ok(response: httpx.Response) -> None:
    response.raise_for_status()
    assert response.status_code == 200, response.status_code


def _setup(running: Running) -> list[str]:
    with running.client("fleet") as fleet, running.client("mapco") as mapco:
        fleet.post("/v1/products", json=VIOLATION_CAPTURES).raise_for_status()
        records = [c.record for c in Fleet(seed=5, vehicles=20, photos=False).captures(40, 50)]
        fleet.post(f"/v1/products/{SLUG}/records", json=records[:RECORDS]).raise_for_status()
        for _ in range(50):
            mapco.get(f"/v1/products/{SLUG}/records", params={"purpose": "navigation_safety"})
    return list(VIOLATION_CAPTURES["purposes"])


def run(running: Running) -> list[tuple[str, float, str]]:
    purposes = _setup(running)
    rows: list[tuple[str, float, str]] = []
    with running.client("mapco") as api, _signed_in(running, "mapco") as page:
        floor = _rate(lambda: _ok(api.get("/healthz")))
        rows.append(("GET /healthz (the floor)", floor, "pages/s"))

        def api_product() -> None:
            _ok(api.get(f"/v1/products/{SLUG}"))
            for purpose in purposes:
                _ok(api.post("/v1/decisions", json={"product": SLUG, "purpose": purpose}))

        pairs = [
            ("catalog", lambda: _ok(api.get("/v1/products")), "/console/catalog"),
            ("product page", api_product, f"/console/catalog/{SLUG}"),
        ]
        rows += _compare(pairs, page)
    with running.client("auditor") as api, _signed_in(running, "auditor") as page:
        entries = [
            (
                "audit explorer, 50 entries",
                lambda: _ok(api.get("/v1/audit/entries", params={"limit": 50})),
                "/console/audit/entries?limit=50",
            )
        ]
        rows += _compare(entries, page)
    return rows


def _compare(
    pairs: list[tuple[str, Callable[[], None], str]], page: httpx.Client
) -> list[tuple[str, float, str]]:
    rows = []
    for name, api_call, path in pairs:
        through_api = _rate(api_call)
        through_console = _rate(lambda path=path: _ok(page.get(path)))
        rows.append((f"{name}: the API call(s), pages/s", through_api, "baseline"))
        rows.append(
            (
                f"{name}: the console page, pages/s",
                through_console,
                f"{through_console / through_api:.2f}× the API",
            )
        )
    return rows
