"""`GET /v1/products/{product}/aggregates` over HTTP: noisy counts of bounded
contributions with small groups left out, groupings by category, H3 cell, day and
hour, the privacy budget (debited, persistent, shared, per organisation and
product, refused when it would overspend), the policy, and the audit trail.

The noise comes from `exchange.privacy.noise.SYSTEM_RANDOM`; an autouse fixture
makes it a seeded stream so that a run is reproducible. Every tolerance below is
wide enough to hold for any stream (a count strays by more than 12 noise scales
with probability e^-12)."""

import json
import math
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from exchange.main import create_app
from exchange.privacy import noise
from tests.conftest import Exchange
from tests.products import capture, captures_product

PRODUCT = "violation-captures"  # open, owned by the fleet, subject field: plate
OTHER = "intersection-captures"  # another open product of the fleet
PROBLEM = "application/problem+json"
CAP = 5  # settings.aggregate_contribution_cap
K = 10  # settings.aggregate_min_group
LIMIT = 10.0  # settings.privacy_budget_epsilon
RESOLUTION = 8  # the product's grid_resolution (default)
BIG_TYPES = ("red_light", "bus_lane", "speeding")
RARE_TYPE = "wrong_way"  # two records only


# --- data ---------------------------------------------------------------------------------------


def dataset() -> list[dict[str, Any]]:
    """200 captures in a fixed shuffled order: three vehicles seen again and again
    (25 red lights, 25 bus-lane runs, 20 mixed), 128 vehicles seen once across the
    three big types, and two vehicles driving the wrong way. Every capture has a lane
    (1 to 3); half of them say whether it was night."""
    cases: list[tuple[str, str]] = []
    cases += [("粤B·R0001", "red_light")] * 25
    cases += [("粤B·R0002", "bus_lane")] * 25
    cases += [("粤B·R0003", BIG_TYPES[i % 3]) for i in range(20)]
    cases += [(f"粤B·{20000 + i}", BIG_TYPES[i % 3]) for i in range(128)]
    cases += [("粤B·W0001", RARE_TYPE), ("粤B·W0002", RARE_TYPE)]
    random.Random(7).shuffle(cases)
    records = []
    for n, (plate, kind) in enumerate(cases, start=1):
        record = capture(n, plate=plate, violation_type=kind, lane=1 + n % 3)
        if n % 4 < 2:
            record["night"] = n % 4 == 0
        records.append(record)
    return records


RECORDS = dataset()
PLATES = {record["plate"] for record in RECORDS}


def bounded_truth(key: Callable[[dict[str, Any]], Any]) -> Counter[Any]:
    """The counts per group when each plate counts in at most CAP records, its first
    ones in publishing order, among the records that have a group (None: no group);
    computed here independently of the exchange."""
    seen: Counter[str] = Counter()
    counts: Counter[Any] = Counter()
    for record in RECORDS:
        if key(record) is None:
            continue
        if seen[record["plate"]] < CAP:
            seen[record["plate"]] += 1
            counts[key(record)] += 1
    return counts


def cell_of(record: dict[str, Any]) -> str:
    point = record["location"]
    return "h3:" + str(h3.latlng_to_cell(point["lat"], point["lon"], RESOLUTION))


def day_of(record: dict[str, Any]) -> str:
    return str(record["captured_at"])[:10] + "T00:00:00Z"


def hour_of(record: dict[str, Any]) -> str:
    return str(record["captured_at"])[:13] + ":00:00Z"


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def seeded_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exchange's noise from a seeded stream instead of the OS generator."""
    monkeypatch.setattr(noise.SYSTEM_RANDOM, "random", random.Random(2026).random)


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    """The fleet's open captures product (subject field: plate) with the 200 captures."""
    exchange.register("fleet", captures_product(slug=PRODUCT, subject_field="plate"))
    published = exchange.publish("fleet", PRODUCT, RECORDS)
    assert published.status_code == 200, published.text
    assert published.json()["accepted"] == len(RECORDS)
    return exchange


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["type"] == f"urn:exchange:problem:{code}", body
    return body


def keep_the_threshold_at_k(exchange: Exchange) -> None:
    """A large delta keeps the publishing threshold at k (cap + scale·ln(1/(2δ)) < k), so
    a test can check the grouping itself on groups of a few dozen records; with the
    default delta such small groups are (rightly) suppressed at these epsilons."""
    exchange.settings.aggregate_delta = 0.4


def aggregates(
    exchange: Exchange,
    who: str = "mapco",
    product: str = PRODUCT,
    *,
    by: list[str] | str | None = "violation_type",
    purpose: str | None = "research",
    epsilon: float | str | None = 5,
    **more: Any,
) -> Any:
    params: dict[str, Any] = {"by": by, "purpose": purpose, "epsilon": epsilon, **more}
    params = {name: value for name, value in params.items() if value is not None}
    return exchange.get(who, f"/v1/products/{product}/aggregates", params=params)


def counts_by(body: dict[str, Any], *keys: str) -> dict[Any, int]:
    """The published groups as {key (or key tuple): count}."""
    found: dict[Any, int] = {}
    for group in body["groups"]:
        assert set(group) == {*keys, "count"}, group
        assert type(group["count"]) is int
        key = group[keys[0]] if len(keys) == 1 else tuple(group[k] for k in keys)
        found[key] = group["count"]
    return found


def tolerance(epsilon: float) -> float:
    return 12 * CAP / epsilon + 1


def budget_rows(exchange: Exchange) -> dict[tuple[str, str], tuple[str, float]]:
    """(organisation, product) → (period, spent), read straight from the ledger."""
    engine = create_engine(exchange.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT organization, product, period, spent FROM privacy_budget")
            ).all()
    finally:
        engine.dispose()
    return {(row[0], row[1]): (row[2], float(row[3])) for row in rows}


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def audit(exchange: Exchange, **filters: Any) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params=filters))
    return [item["entry"] for item in page["entries"]]


def assert_no_plate(response: Any) -> None:
    shown = response.text + json.dumps(response.json(), ensure_ascii=False)
    leaked = [plate for plate in PLATES if plate in shown]
    assert leaked == [], leaked
    assert "粤" not in shown


# --- counts -------------------------------------------------------------------------------------


def test_counts_by_category_are_bounded_noisy_and_anonymised(world: Exchange) -> None:
    before = this_month()
    response = aggregates(world, by="violation_type", epsilon=5)
    body = ok(response)
    assert body["product"] == PRODUCT
    assert body["purpose"] == "research"
    assert body["by"] == ["violation_type"]
    assert body["label"] == "anonymised"
    assert body["mechanism"] == "laplace"
    assert body["epsilon"] == 5
    assert body["noise_scale"] == pytest.approx(CAP / 5)
    assert body["min_group"] == K
    assert body["contribution_cap"] == CAP

    truth = bounded_truth(lambda r: r["violation_type"])
    unbounded = Counter(r["violation_type"] for r in RECORDS)
    assert truth[RARE_TYPE] == 2
    # the repeated vehicles make bounding matter: far more than the noise could hide
    assert unbounded["red_light"] - truth["red_light"] >= 20
    assert unbounded["bus_lane"] - truth["bus_lane"] >= 20

    published = counts_by(body, "violation_type")
    assert set(published) == set(BIG_TYPES), published  # the two wrong-way captures: left out
    for kind in BIG_TYPES:
        assert abs(published[kind] - truth[kind]) <= tolerance(5), (kind, published, truth)
        assert published[kind] >= K
    assert abs(published["red_light"] - unbounded["red_light"]) > tolerance(5)
    assert_no_plate(response)

    assert body["budget"]["period"] in {before, this_month()}
    assert body["budget"]["limit"] == LIMIT
    assert body["budget"]["spent"] == 5
    assert body["budget"]["remaining"] == 5
    assert budget_rows(world) == {("lingnan-maps", PRODUCT): (body["budget"]["period"], 5.0)}


def test_counts_by_cell_are_h3_cells_of_the_product_resolution(world: Exchange) -> None:
    response = aggregates(world, by="cell", epsilon=5)
    body = ok(response)
    truth = bounded_truth(cell_of)
    published = counts_by(body, "cell")
    assert published, body
    for cell, count in published.items():
        assert re.fullmatch(r"h3:[0-9a-f]{15}", cell), cell
        assert h3.get_resolution(cell.removeprefix("h3:")) == RESOLUTION
        assert cell in truth, (cell, truth)
        assert abs(count - truth[cell]) <= tolerance(5)
    # every cell holding at least k + 12 noise scales of bounded records is published
    assert {cell for cell, count in truth.items() if count >= K + 12} <= set(published)
    assert_no_plate(response)
    assert "23.12" not in response.text  # no coordinates either


def test_counts_by_day_and_by_hour_are_time_buckets(world: Exchange) -> None:
    keep_the_threshold_at_k(world)
    by_day = ok(aggregates(world, by="day", epsilon=2))
    truth = bounded_truth(day_of)
    published = counts_by(by_day, "day")
    assert set(published) == set(truth) == {f"2026-11-2{d}T00:00:00Z" for d in range(7)}
    for day, count in published.items():
        assert abs(count - truth[day]) <= tolerance(2)

    by_hour = ok(aggregates(world, by="hour", epsilon=2))
    truth = bounded_truth(hour_of)
    published = counts_by(by_hour, "hour")
    assert set(published) == set(truth) == {f"2026-11-2{d}T08:00:00Z" for d in range(7)}
    for hour, count in published.items():
        assert abs(count - truth[hour]) <= tolerance(2)

    by_both = ok(aggregates(world, by=["day", "violation_type"], epsilon=2))
    assert by_both["by"] == ["day", "violation_type"]
    truth = bounded_truth(lambda r: (day_of(r), r["violation_type"]))
    published = counts_by(by_both, "day", "violation_type")
    for key, count in published.items():
        assert key in truth, key
        assert key[1] != RARE_TYPE
        assert abs(count - truth[key]) <= tolerance(2)
    assert ok(aggregates(world, epsilon=1))["budget"]["spent"] == 7


def test_a_time_window_limits_the_records_counted(world: Exchange) -> None:
    body = ok(
        aggregates(
            world,
            by="day",
            epsilon=5,
            **{"from": "2026-11-24T00:00:00Z", "to": "2026-11-26T00:00:00Z"},
        )
    )
    assert set(counts_by(body, "day")) == {"2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"}
    (entry,) = audit(world, action="aggregate", decision="allow")
    inside = [r for r in RECORDS if "2026-11-24" <= r["captured_at"][:10] <= "2026-11-25"]
    assert entry["record_count"] == len(inside)
    assert entry["details"]["from"] == "2026-11-24T00:00:00Z"
    assert entry["details"]["to"] == "2026-11-26T00:00:00Z"

    bad = problem(aggregates(world, by="day", **{"from": "yesterday"}), 400)
    assert [e["field"] for e in bad["errors"]] == ["from"]
    assert budget_rows(world)[("lingnan-maps", PRODUCT)][1] == 5.0  # nothing debited


def test_integer_and_boolean_fields_group_with_their_json_values(world: Exchange) -> None:
    keep_the_threshold_at_k(world)
    body = ok(aggregates(world, by=["lane", "night"], epsilon=5))
    truth = bounded_truth(lambda r: (r["lane"], r["night"]) if "night" in r else None)
    published = counts_by(body, "lane", "night")
    assert set(published) == {(lane, night) for lane in (1, 2, 3) for night in (True, False)}
    for key, count in published.items():
        assert abs(count - truth[key]) <= tolerance(5)
    # the captures that do not say whether it was night are not counted at all
    (entry,) = audit(world, action="aggregate", decision="allow")
    assert entry["record_count"] == sum("night" in r for r in RECORDS) == 100


def test_without_a_subject_field_every_record_is_its_own_subject(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product(slug=OTHER))
    ok(exchange.publish("fleet", OTHER, RECORDS))
    body = ok(aggregates(exchange, product=OTHER, by="violation_type", epsilon=5))
    unbounded = Counter(r["violation_type"] for r in RECORDS)
    published = counts_by(body, "violation_type")
    assert set(published) == set(BIG_TYPES)
    for kind in BIG_TYPES:
        assert abs(published[kind] - unbounded[kind]) <= tolerance(5)


# --- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "by",
    [
        pytest.param(["plate"], id="personal-field"),
        pytest.param(["driver_note"], id="sensitive-field"),
        pytest.param(["location"], id="location-field"),
        pytest.param(["photo"], id="image-field"),
        pytest.param(["speed_kmh"], id="number-field"),
        pytest.param(["captured_at"], id="timestamp-field"),
        pytest.param(["colour"], id="unknown-field"),
        pytest.param(["cell", "day", "violation_type", "lane"], id="four-keys"),
        pytest.param(["day", "day"], id="repeated-key"),
        pytest.param(None, id="no-key"),
        pytest.param(["day", "plate"], id="one-bad-of-two"),
    ],
)
def test_a_bad_grouping_is_refused_naming_by_and_spends_nothing(
    world: Exchange, by: list[str] | None
) -> None:
    response = aggregates(world, by=by, epsilon=5)
    body = problem(response, 400)
    assert body["errors"], body
    assert {error["field"] for error in body["errors"]} == {"by"}, body
    assert_no_plate(response)
    assert budget_rows(world) == {}
    # the whole budget is still there
    assert ok(aggregates(world, epsilon=5))["budget"]["spent"] == 5


def test_the_refusal_points_at_the_bad_key(world: Exchange) -> None:
    body = problem(aggregates(world, by=["day", "plate", "violation_type"]), 400)
    assert body["errors"] == [{"field": "by", "index": 1, "reason": body["errors"][0]["reason"]}]
    assert "plate" in body["errors"][0]["reason"]


def test_groupings_the_product_cannot_support_are_refused(exchange: Exchange) -> None:
    plain = captures_product(
        slug="plain-counts",
        fields=[{"name": "violation_type", "type": "string"}, {"name": "lane", "type": "integer"}],
    )
    exchange.register("fleet", plain)
    ok(exchange.publish("fleet", "plain-counts", [{"id": "a", "violation_type": "x", "lane": 1}]))
    for by in ("cell", "day", "hour"):
        body = problem(aggregates(exchange, product="plain-counts", by=by), 400)
        assert [error["field"] for error in body["errors"]] == ["by"]
    assert budget_rows(exchange) == {}
    assert ok(aggregates(exchange, product="plain-counts", by=["lane", "violation_type"]))


@pytest.mark.parametrize("epsilon", ["0", "-1", "5.01", "6", "nan", "inf", "lots"])
def test_an_epsilon_out_of_range_is_refused(world: Exchange, epsilon: str) -> None:
    body = problem(aggregates(world, epsilon=epsilon), 400)
    assert [error["field"] for error in body["errors"]] == ["epsilon"]
    assert budget_rows(world) == {}


def test_the_default_epsilon_is_one(world: Exchange) -> None:
    body = ok(aggregates(world, epsilon=None))
    assert body["epsilon"] == 1
    assert body["noise_scale"] == pytest.approx(CAP)
    assert body["budget"]["spent"] == 1


def test_a_purpose_is_required_and_must_be_declared(world: Exchange) -> None:
    missing = problem(aggregates(world, purpose=None), 400, "purpose_required")
    assert [error["field"] for error in missing["errors"]] == ["purpose"]
    problem(aggregates(world, purpose="Not a purpose!"), 400, "bad_request")
    undeclared = problem(aggregates(world, purpose="marketing"), 403, "access_denied")
    assert "marketing" in undeclared["detail"]
    assert undeclared["rule"] is None  # no rule allows it: denied by default
    assert budget_rows(world) == {}
    denied = audit(world, action="aggregate", decision="deny")
    assert [entry["purpose"] for entry in denied] == [None, "Not a purpose!", "marketing"]
    assert {entry["organization"] for entry in denied} == {"lingnan-maps"}


def test_an_unknown_product_is_not_found(world: Exchange) -> None:
    problem(aggregates(world, product="no-such-product"), 404, "not_found")


# --- the budget ---------------------------------------------------------------------------------


def test_the_budget_accumulates_persists_and_is_shared_between_app_instances(
    world: Exchange,
) -> None:
    assert ok(aggregates(world, epsilon=2))["budget"]["spent"] == 2
    assert budget_rows(world)[("lingnan-maps", PRODUCT)][1] == 2.0

    # another instance of the app on the same database: a second worker, or a restart
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as other:
        response = other.get(
            f"/v1/products/{PRODUCT}/aggregates",
            params={"by": "violation_type", "purpose": "research", "epsilon": 3},
            headers=world.headers("mapco"),
        )
        budget = ok(response)["budget"]
        assert (budget["spent"], budget["remaining"]) == (5, 5)

    budget = ok(aggregates(world, epsilon=4))["budget"]
    assert (budget["spent"], budget["remaining"]) == (9, 1)
    assert budget_rows(world)[("lingnan-maps", PRODUCT)] == (budget["period"], 9.0)


def test_a_query_that_would_overspend_is_refused_spends_nothing_and_is_audited(
    world: Exchange,
) -> None:
    ok(aggregates(world, epsilon=5))
    ok(aggregates(world, epsilon=4))

    response = aggregates(world, epsilon=2)
    refused = problem(response, 403, "privacy_budget_exhausted")
    assert refused["remaining"] == pytest.approx(1)
    assert refused["period"] == budget_rows(world)[("lingnan-maps", PRODUCT)][0]
    assert "groups" not in refused
    assert_no_plate(response)
    assert budget_rows(world)[("lingnan-maps", PRODUCT)][1] == 9.0

    # what is left can still be spent, to the last of it
    last = ok(aggregates(world, epsilon=1))["budget"]
    assert (last["spent"], last["remaining"]) == (10, 0)
    empty = problem(aggregates(world, epsilon=0.01), 403, "privacy_budget_exhausted")
    assert empty["remaining"] == 0
    assert budget_rows(world)[("lingnan-maps", PRODUCT)][1] == 10.0

    denied = audit(world, action="aggregate", decision="deny")
    assert len(denied) == 2
    for entry in denied:
        assert entry["organization"] == "lingnan-maps"
        assert entry["product"] == PRODUCT
        assert entry["purpose"] == "research"
        assert entry["record_count"] == 0
    assert "epsilon 2" in denied[0]["reason"]

    allowed = audit(world, action="aggregate", decision="allow")
    assert [entry["details"]["epsilon"] for entry in allowed] == [5, 4, 1]
    assert [entry["details"]["budget_remaining"] for entry in allowed] == [5, 1, 0]
    for entry in allowed:
        assert entry["record_count"] == len(RECORDS)
        assert entry["details"]["by"] == ["violation_type"]
        assert entry["details"]["budget_period"] == refused["period"]
        assert entry["organization"] == "lingnan-maps"
        assert entry["purpose"] == "research"
        assert entry["records"] == []  # an aggregate names no records
    assert all("粤" not in str(entry) for entry in denied + allowed)


def test_the_budget_is_per_organisation_and_per_product(world: Exchange) -> None:
    world.register("fleet", captures_product(slug=OTHER, subject_field="plate"))
    ok(world.publish("fleet", OTHER, RECORDS))

    ok(aggregates(world, epsilon=5))
    ok(aggregates(world, epsilon=5))
    problem(aggregates(world, epsilon=1), 403, "privacy_budget_exhausted")

    lab = ok(aggregates(world, "lab", epsilon=5))["budget"]
    assert (lab["spent"], lab["remaining"]) == (5, 5)
    elsewhere = ok(aggregates(world, product=OTHER, epsilon=3))["budget"]
    assert (elsewhere["spent"], elsewhere["remaining"]) == (3, 7)

    period = this_month()
    rows = budget_rows(world)
    assert rows == {
        ("lingnan-maps", PRODUCT): (rows[("lingnan-maps", PRODUCT)][0], 10.0),
        ("scut-mobility-lab", PRODUCT): (rows[("scut-mobility-lab", PRODUCT)][0], 5.0),
        ("lingnan-maps", OTHER): (rows[("lingnan-maps", OTHER)][0], 3.0),
    }
    assert {period for period, _ in rows.values()} <= {period, this_month()}


def test_concurrent_queries_cannot_both_spend_the_last_of_the_budget(world: Exchange) -> None:
    """Four workers (app instances) at once, each asking for 5 of the 10: two win."""
    headers = world.headers("mapco")
    params = {"by": "violation_type", "purpose": "research", "epsilon": 5}
    barrier = threading.Barrier(4, timeout=60)
    statuses: list[int] = []

    def ask(client: TestClient) -> None:
        barrier.wait()
        response = client.get(f"/v1/products/{PRODUCT}/aggregates", params=params, headers=headers)
        statuses.append(response.status_code)

    with ExitStack() as stack:
        clients = [
            stack.enter_context(
                TestClient(create_app(world.settings), raise_server_exceptions=False)
            )
            for _ in range(4)
        ]
        for client in clients:  # each worker warmed up (a refused grouping spends nothing)
            response = client.get(
                f"/v1/products/{PRODUCT}/aggregates",
                params=params | {"by": "plate"},
                headers=headers,
            )
            assert response.status_code == 400, response.text
        threads = [threading.Thread(target=ask, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sorted(statuses) == [200, 200, 403, 403]
    assert budget_rows(world)[("lingnan-maps", PRODUCT)][1] == 10.0
    assert len(audit(world, action="aggregate", decision="allow")) == 2
    denials = audit(world, action="aggregate", decision="deny")
    # The four warm-up groupings by plate were refused (and audited); two queries were
    # refused for the budget.
    assert len([e for e in denials if "is left for" in e["reason"]]) == 2
    assert len(denials) == 6


def test_the_budget_is_per_calendar_month(world: Exchange) -> None:
    engine = create_engine(world.settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO privacy_budget (organization, product, period, spent) "
                    "VALUES ('lingnan-maps', :product, '2020-01', 10.0)"
                ),
                {"product": PRODUCT},
            )
        budget = ok(aggregates(world, epsilon=5))["budget"]
        assert (budget["spent"], budget["remaining"]) == (5, 5)
        assert re.fullmatch(r"\d{4}-\d{2}", budget["period"])
        assert budget["period"] != "2020-01"
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT period, spent FROM privacy_budget ORDER BY period")
            ).all()
    finally:
        engine.dispose()
    assert [(period, float(spent)) for period, spent in rows] == [
        ("2020-01", 10.0),
        (budget["period"], 5.0),
    ]


# --- the policy ---------------------------------------------------------------------------------


def test_companies_and_researchers_may_not_aggregate_for_law_enforcement(world: Exchange) -> None:
    for who, kind in (("mapco", "enterprise"), ("lab", "research")):
        denial = problem(aggregates(world, who, purpose="law_enforcement"), 403, "access_denied")
        assert denial["detail"].startswith("denied by rule")
        assert denial["rule"] == [f"kind:{kind}", "*", "aggregate", "law_enforcement", "-", "deny"]
    police = ok(aggregates(world, "police", purpose="law_enforcement"))
    assert police["budget"]["spent"] == 5
    assert budget_rows(world) == {("gz-traffic-police", PRODUCT): (police["budget"]["period"], 5.0)}
    denied = audit(world, action="aggregate", decision="deny", purpose="law_enforcement")
    assert [entry["organization"] for entry in denied] == ["lingnan-maps", "scut-mobility-lab"]


def test_a_publisher_is_not_a_subscriber_of_aggregates(world: Exchange) -> None:
    problem(aggregates(world, "fleet"), 403, "access_denied")


def test_a_regulated_product_needs_a_grant_for_companies(world: Exchange) -> None:
    world.register("fleet", captures_product(slug="near-misses", tier="regulated"))
    ok(world.publish("fleet", "near-misses", RECORDS))

    for who in ("mapco", "lab"):
        problem(aggregates(world, who, product="near-misses"), 403, "access_denied")
    assert budget_rows(world) == {}
    # government subscribers need none, for the declared purposes
    ok(aggregates(world, "police", product="near-misses", purpose="traffic_management"))

    request = ok(
        world.post(
            "mapco",
            "/v1/access-requests",
            json={
                "product": "near-misses",
                "purpose": "research",
                "justification": "Counting red-light runs per district for a safety study.",
                "days": 30,
            },
        ),
        201,
    )
    approved = ok(
        world.post(
            "steward",
            f"/v1/access-requests/{request['id']}/approve",
            json={"reason": "Research purpose verified"},
        )
    )
    body = ok(aggregates(world, product="near-misses"))
    assert set(counts_by(body, "violation_type")) == set(BIG_TYPES)
    (entry,) = audit(world, action="aggregate", decision="allow", organization="lingnan-maps")
    assert entry["grant"] == str(approved["grant"]["id"])
    # the grant is the company's own, and for its purpose only
    problem(aggregates(world, "lab", product="near-misses"), 403, "access_denied")
    problem(
        aggregates(world, product="near-misses", purpose="navigation_safety"), 403, "access_denied"
    )


def test_government_only_products_are_aggregated_by_government_subscribers_only(
    exchange: Exchange,
) -> None:
    exchange.register("hotline", captures_product(slug="gov-captures", tier="government_only"))
    ok(exchange.publish("hotline", "gov-captures", RECORDS))

    body = ok(aggregates(exchange, "police", product="gov-captures", purpose="law_enforcement"))
    assert set(counts_by(body, "violation_type")) == set(BIG_TYPES)
    for who in ("mapco", "lab"):
        problem(aggregates(exchange, who, product="gov-captures"), 403, "access_denied")
    assert set(budget_rows(exchange)) == {("gz-traffic-police", "gov-captures")}


# --- grants with a scope ------------------------------------------------------------------------


def _grant(world: Exchange, scope: dict[str, Any]) -> dict[str, Any]:
    world.register("fleet", captures_product(slug="near-misses", tier="regulated"))
    ok(world.publish("fleet", "near-misses", RECORDS))
    request = ok(
        world.post(
            "mapco",
            "/v1/access-requests",
            json={
                "product": "near-misses",
                "purpose": "research",
                "justification": "Counting red-light runs per district for a safety study.",
                "days": 30,
                "scope": scope,
            },
        ),
        201,
    )
    approved = ok(
        world.post(
            "steward",
            f"/v1/access-requests/{request['id']}/approve",
            json={"reason": "Research purpose verified"},
        )
    )
    grant: dict[str, Any] = approved["grant"]
    assert grant["scope"] == scope
    return grant


def test_aggregates_under_a_grant_count_only_the_records_in_its_scope(world: Exchange) -> None:
    _grant(world, {"where": {"violation_type": ["red_light"]}})
    body = ok(aggregates(world, product="near-misses", by="violation_type"))
    assert set(counts_by(body, "violation_type")) == {"red_light"}


def test_aggregates_under_a_grant_cannot_group_by_a_field_outside_its_scope(
    world: Exchange,
) -> None:
    _grant(world, {"fields": ["captured_at", "location"]})
    # a read under the grant withholds violation_type ...
    page = ok(
        world.get("mapco", "/v1/products/near-misses/records", params={"purpose": "research"})
    )
    assert all("violation_type" not in record for record in page["records"]), page["records"][0]
    # ... so grouping by it would reveal what the grant withholds
    body = problem(aggregates(world, product="near-misses", by="violation_type"), 400)
    assert [error["field"] for error in body["errors"]] == ["by"]


def test_a_field_named_count_keeps_its_values_in_the_groups(exchange: Exchange) -> None:
    product = captures_product(
        slug="passenger-counts",
        fields=[
            {"name": "captured_at", "type": "timestamp"},
            {"name": "count", "type": "integer"},
        ],
    )
    exchange.register("fleet", product)
    records = [
        {"id": f"c{n}", "captured_at": "2026-11-20T08:00:00Z", "count": 1 + n % 2}
        for n in range(60)
    ]
    ok(exchange.publish("fleet", "passenger-counts", records))
    response = aggregates(exchange, product="passenger-counts", by="count")
    if response.status_code != 400:  # refusing the grouping would be fine too
        groups = ok(response)["groups"]
        assert len(groups) == 2
        assert all(len(group) == 2 for group in groups), groups  # a key and a count


def test_the_threshold_grows_with_the_noise_so_one_vehicle_stays_hidden(world: Exchange) -> None:
    """With the default delta, a group needs a noisy count of max(k, cap + scale·ln(1/(2δ))):
    a group one vehicle makes up passes with probability at most δ at any epsilon."""
    delta = world.settings.aggregate_delta
    for epsilon in (5, 1):
        body = ok(aggregates(world, by="violation_type", epsilon=epsilon))
        scale = CAP / epsilon
        assert body["delta"] == delta
        assert body["threshold"] == pytest.approx(
            max(K, CAP + scale * math.log(1 / (2 * delta))), abs=1e-3
        )
        assert all(group["count"] >= body["threshold"] - 0.5 for group in body["groups"])
        assert RARE_TYPE not in counts_by(body, "violation_type")
