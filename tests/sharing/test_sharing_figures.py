"""Sharing performance figures (`GET /v1/metrics/sharing`) over a history whose every
time is set by hand, so each figure is checked against a number worked out here
(in the comments) rather than recomputed the way the exchange computes it.

The requests, records, acknowledgements and webhook attempts are made over the API
and then moved to known times in the database. The reads and refusals are audit
entries, which nobody may move: they fall at the test's own time, inside the main
window (from `start` to now) and outside the earlier one (`start` to day 10).
"""

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Update, create_engine, insert, select, update
from sqlalchemy.sql import Executable

from exchange.catalog.models import Product
from exchange.feeds.models import DeliveryAttempt, FeedEvent
from exchange.grants.models import AccessRequest
from exchange.records.models import Record
from exchange.settings import Settings
from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.responses import ok, problem

NEAR = "near-misses"  # regulated, the fleet's
LANES = "lane-closures"  # regulated, the fleet's
HOTLINE = "hotline-reports"  # government_only, the hotline's
PRODUCTS = (NEAR, LANES, HOTLINE)
FLEET, CITY = "pearl-robotaxi", "gz-12345"
DENIAL = "The justification does not say which data the study needs"
DAY, HOUR, SECOND = timedelta(days=1), timedelta(hours=1), timedelta(seconds=1)
PATH = "/v1/metrics/sharing"

# The history, in times after `start` (the main window's `from`; now is 20 days and
# under an hour later). Access requests: who, product, purpose, created, due, decided
# and how (None: still pending). Replies: 1, 10, 38, 2, 100 and 1 hours.
REQUESTS = [
    ("mapco", NEAR, "research", -DAY, 6 * DAY, -DAY + HOUR, "approve"),  # before the window
    ("mapco", NEAR, "navigation_safety", DAY, 8 * DAY, DAY + 10 * HOUR, "approve"),
    ("lab", NEAR, "research", 2 * DAY, 3 * DAY, 3 * DAY + 14 * HOUR, "deny"),  # 14 h late
    ("lab", NEAR, "research", 3 * DAY, 4 * DAY, None, None),  # pending past its due
    ("mapco", NEAR, "research", 4 * DAY, 23 * DAY, None, None),  # pending, due after now
    ("mapco", LANES, "research", 5 * DAY, 12 * DAY, 5 * DAY + 2 * HOUR, "approve"),
    ("lab", LANES, "research", 6 * DAY, 13 * DAY, 10 * DAY + 4 * HOUR, "approve"),
    ("lab", LANES, "navigation_safety", 7 * DAY, 7 * DAY + HOUR, 7 * DAY + HOUR, "approve"),
]
EARLIER_END = 10 * DAY + 4 * HOUR  # the earlier window's `to`: the instant of a decision
# Records: product, capture number, its own time, its publication (freshness 3600, 60,
# 120, 600, 30, 40, 10 s), and how long after publication the police acknowledged it
# by pulling (the lag; None: never pulled).
RECORDS = [
    (NEAR, 1, -2 * HOUR, -HOUR, 5 * SECOND),  # before the window
    (NEAR, 2, DAY, DAY + 60 * SECOND, 2 * SECOND),
    (NEAR, 3, 2 * DAY, 2 * DAY + 120 * SECOND, 4 * SECOND),
    (NEAR, 4, 3 * DAY, 3 * DAY + 600 * SECOND, 30 * SECOND),
    (LANES, 5, 4 * DAY, 4 * DAY + 30 * SECOND, 10 * SECOND),
    (LANES, 6, 11 * DAY, 11 * DAY + 40 * SECOND, 20 * SECOND),  # after the earlier window
    (HOTLINE, 7, 6 * DAY, 6 * DAY + 10 * SECOND, None),
]
# Webhook attempts: product, outcome, started.
ATTEMPTS = [
    (NEAR, "delivered", -DAY),  # before the window
    (NEAR, "delivered", timedelta(0)),  # at `from` itself: inside
    (NEAR, "retry", 2 * DAY),
    (NEAR, "delivered", 3 * DAY),
    (NEAR, "denied", 3 * DAY),  # refused at delivery: nothing was sent, not counted
    (LANES, "dead", 4 * DAY),
    (LANES, "delivered", 11 * DAY),  # after the earlier window
]
# The policy's reasons for the refusals the history makes.
NO_GRANT_GOVERNMENT = (
    "no rule lets government subscriber read regulated product near-misses for purpose 'research'"
)
NO_GRANT_RESEARCH = (
    "lane-closures is regulated: research organisations need an approved grant for the purpose"
)
NO_LAW_FOR_COMPANIES = (
    "denied by rule [kind:enterprise, *, request_access, law_enforcement, -, deny]"
)
NOT_FOR_COMPANIES = "denied by rule [kind:enterprise, tier:government_only, read, *, -, deny]"
NOT_FOR_RESEARCH = "denied by rule [kind:research, tier:government_only, read, *, -, deny]"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """No delivery workers: the webhook attempts are the ones this test writes."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        delivery_workers=0,
        webhook_allow_private=True,
    )


# --- making the history -------------------------------------------------------------------------


def execute(exchange: Exchange, statements: list[Executable]) -> None:
    """Change rows behind the API's back; each update must touch exactly one row."""
    engine = create_engine(exchange.settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                changed = connection.execute(statement).rowcount
                assert changed == 1 or not isinstance(statement, Update), statement
    finally:
        engine.dispose()


def record_row(product: str, n: int) -> list[Any]:
    owner = select(Product.id).where(Product.slug == product).scalar_subquery()
    return [Record.product_id == owner, Record.record_id == f"cap-{n:06d}"]


def subscribe(exchange: Exchange, product: str, **delivery: str) -> int:
    body = {"product": product, "purpose": "law_enforcement", **delivery}
    response = exchange.post("police", "/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    made: int = response.json()["id"]
    return made


def acknowledge_all(exchange: Exchange, subscription: int) -> None:
    """Pull everything, then pass the cursor back: that acknowledges it."""
    path = f"/v1/subscriptions/{subscription}/events"
    page = ok(exchange.get("police", path))
    ok(exchange.get("police", path, params={"cursor": page["next_cursor"]}))


def ask(exchange: Exchange, who: str, product: str, purpose: str) -> Any:
    body = {
        "product": product,
        "purpose": purpose,
        "justification": "A study of pedestrian close calls near school crossings.",
        "days": 30,
    }
    return exchange.post(who, "/v1/access-requests", json=body)


def read(exchange: Exchange, who: str, product: str, purpose: str, **params: Any) -> Any:
    return exchange.get(
        who, f"/v1/products/{product}/records", params={"purpose": purpose, **params}
    )


def requests_history(exchange: Exchange, start: datetime) -> list[Executable]:
    """The requests, asked and decided over the API; their times, to set."""
    table = AccessRequest.__table__  # type: ignore[attr-defined]
    timed = []
    for who, product, purpose, created, due, decided, verdict in REQUESTS:
        response = ask(exchange, who, product, purpose)
        assert response.status_code == 201, response.text
        request = response.json()["id"]
        if verdict is not None:
            reason = DENIAL if verdict == "deny" else "Purpose verified with the ethics board"
            path = f"/v1/access-requests/{request}/{verdict}"
            ok(exchange.post("steward", path, json={"reason": reason}))
        times = {"created_at": start + created, "due_at": start + due}
        if decided is not None:
            times["decided_at"] = start + decided
        timed.append(update(table).where(table.c.id == request).values(**times))
    return timed


def feeds_history(exchange: Exchange, start: datetime) -> list[Executable]:
    """Pull subscriptions (two acknowledged, the hotline's never pulled) and webhook
    ones, and the records they carry; the records' times, the acknowledgements' and
    the webhook attempts, to set."""
    pulls = {product: subscribe(exchange, product, delivery="pull") for product in PRODUCTS}
    hooks = {
        product: subscribe(exchange, product, delivery="webhook", url="http://127.0.0.1:9/hook")
        for product in (NEAR, LANES)
    }
    for who, product in (("fleet", NEAR), ("fleet", LANES), ("hotline", HOTLINE)):
        numbers = [n for slug, n, *_ in RECORDS if slug == product]
        body = ok(exchange.publish(who, product, [capture(n) for n in numbers]))
        assert body["accepted"] == len(numbers), body
    acknowledge_all(exchange, pulls[NEAR])
    acknowledge_all(exchange, pulls[LANES])
    records = Record.__table__  # type: ignore[attr-defined]
    events = FeedEvent.__table__  # type: ignore[attr-defined]
    timed: list[Executable] = []
    for product, n, event_time, published, lag in RECORDS:
        row = record_row(product, n)
        timed.append(
            update(records)
            .where(*row)
            .values(event_time=start + event_time, published_at=start + published)
        )
        if lag is not None:
            seq = select(Record.seq).where(*row).scalar_subquery()
            timed.append(
                update(events)
                .where(events.c.subscription_id == pulls[product], events.c.record_seq == seq)
                .values(delivered_at=start + published + lag)
            )
    for attempt, (product, outcome, started) in enumerate(ATTEMPTS, 1):
        timed.append(
            insert(DeliveryAttempt.__table__).values(  # type: ignore[attr-defined]
                subscription_id=hooks[product],
                webhook_id=f"msg_test_{attempt}",
                first_event=1,
                last_event=1,
                count=1,
                attempt=attempt,
                outcome=outcome,
                started_at=start + started,
            )
        )
    return timed


def audited_history(exchange: Exchange) -> None:
    """Reads answered (records returned: 4, 2, 2, 1) and refused (five reads, one
    request), all now."""
    assert len(ok(read(exchange, "mapco", NEAR, "navigation_safety"))["records"]) == 4
    assert len(ok(read(exchange, "police", NEAR, "law_enforcement", limit=2))["records"]) == 2
    assert len(ok(read(exchange, "lab", LANES, "research"))["records"]) == 2
    assert len(ok(read(exchange, "police", HOTLINE, "law_enforcement"))["records"]) == 1
    for who, product, purpose in (
        ("police", NEAR, "research"),  # no grant
        ("lab", LANES, "traffic_management"),  # no grant for that purpose
        ("mapco", HOTLINE, "navigation_safety"),  # government only
        ("lab", HOTLINE, "research"),
        ("lab", HOTLINE, "research"),  # twice: the most frequent reason comes first
    ):
        problem(read(exchange, who, product, purpose), 403, "access_denied")
    problem(ask(exchange, "mapco", LANES, "law_enforcement"), 403, "access_denied")


@pytest.fixture
def history(exchange: Exchange) -> datetime:
    """The history made; its `start`."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 20 * DAY
    exchange.register("fleet", captures_product(NEAR, tier="regulated"))
    exchange.register("fleet", captures_product(LANES, tier="regulated"))
    exchange.register("hotline", captures_product(HOTLINE, tier="government_only"))
    timed = feeds_history(exchange, start) + requests_history(exchange, start)
    audited_history(exchange)
    execute(exchange, timed)
    return start


# --- expectations -------------------------------------------------------------------------------

NOTHING: dict[str, Any] = {
    "requests_received": 0,
    "requests_answered": 0,
    "answered_within_deadline": 0,
    "overdue": 0,
    "pending": 0,
    "median_reply_hours": None,
    "requests_refused": 0,
    "accesses_refused": 0,
    "refusal_reasons": [],
    "reads_answered": 0,
    "records_shared": 0,
    "delivery_attempts": 0,
    "deliveries_succeeded": 0,
    "delivery_success_rate": None,
    "events_delivered": 0,
    "median_delivery_lag_seconds": None,
    "max_delivery_lag_seconds": None,
    "records_published": 0,
    "median_freshness_seconds": None,
    "max_freshness_seconds": None,
}


def reasons(*found: tuple[str, str, int]) -> list[dict[str, Any]]:
    return [{"source": source, "reason": reason, "count": count} for source, reason, count in found]


# From `start` to now: the first request, record and attempt are before it.
WHOLE = {
    NEAR: NOTHING
    | {
        "requests_received": 4,  # the four made from day 1
        "requests_answered": 2,  # in 10 h (by its due) and 38 h (14 h late)
        "answered_within_deadline": 1,
        "overdue": 2,  # the late answer, and the one pending since its due on day 4
        "pending": 2,  # that one and the one due in three days
        "median_reply_hours": 24.0,  # (10 + 38) / 2
        "requests_refused": 1,
        "accesses_refused": 1,  # the police reading for research without a grant
        "refusal_reasons": reasons(
            ("access_request", DENIAL, 1), ("policy", NO_GRANT_GOVERNMENT, 1)
        ),
        "reads_answered": 2,
        "records_shared": 6,  # mapco's 4 and the police's page of 2
        "delivery_attempts": 3,  # delivered, retry, delivered; the denied one not an attempt
        "deliveries_succeeded": 2,
        "delivery_success_rate": 0.6667,  # 2 / 3
        "events_delivered": 3,
        "median_delivery_lag_seconds": 4.0,  # 2, 4, 30
        "max_delivery_lag_seconds": 30.0,
        "records_published": 3,
        "median_freshness_seconds": 120.0,  # 60, 120, 600
        "max_freshness_seconds": 600.0,
    },
    LANES: NOTHING
    | {
        "requests_received": 3,
        "requests_answered": 3,  # in 2 h, 100 h and 1 h
        "answered_within_deadline": 3,  # the last one at its due instant: in time
        "median_reply_hours": 2.0,  # 1, 2, 100
        "accesses_refused": 2,  # the lab reading without a grant; mapco asking for the law
        "refusal_reasons": reasons(
            ("policy", NO_LAW_FOR_COMPANIES, 1), ("policy", NO_GRANT_RESEARCH, 1)
        ),
        "reads_answered": 1,
        "records_shared": 2,
        "delivery_attempts": 2,  # dead, delivered
        "deliveries_succeeded": 1,
        "delivery_success_rate": 0.5,
        "events_delivered": 2,
        "median_delivery_lag_seconds": 15.0,  # (10 + 20) / 2
        "max_delivery_lag_seconds": 20.0,
        "records_published": 2,
        "median_freshness_seconds": 35.0,  # (30 + 40) / 2
        "max_freshness_seconds": 40.0,
    },
    HOTLINE: NOTHING
    | {
        "accesses_refused": 3,  # mapco once, the lab twice
        "refusal_reasons": reasons(
            ("policy", NOT_FOR_RESEARCH, 2), ("policy", NOT_FOR_COMPANIES, 1)
        ),
        "reads_answered": 1,
        "records_shared": 1,
        "records_published": 1,  # its one event never pulled: no lag
        "median_freshness_seconds": 10.0,
        "max_freshness_seconds": 10.0,
    },
    # The fleet's two products pooled: medians of the pooled values, which here are
    # neither product's median nor the mean of the two (13 h, 9.5 s, 77.5 s).
    FLEET: NOTHING
    | {
        "requests_received": 7,
        "requests_answered": 5,
        "answered_within_deadline": 4,
        "overdue": 2,
        "pending": 2,
        "median_reply_hours": 10.0,  # 1, 2, 10, 38, 100
        "requests_refused": 1,
        "accesses_refused": 3,
        "refusal_reasons": reasons(  # all once: by source, then reason
            ("access_request", DENIAL, 1),
            ("policy", NO_LAW_FOR_COMPANIES, 1),
            ("policy", NO_GRANT_RESEARCH, 1),
            ("policy", NO_GRANT_GOVERNMENT, 1),
        ),
        "reads_answered": 3,
        "records_shared": 8,
        "delivery_attempts": 5,
        "deliveries_succeeded": 3,
        "delivery_success_rate": 0.6,  # 3 / 5
        "events_delivered": 5,
        "median_delivery_lag_seconds": 10.0,  # 2, 4, 10, 20, 30
        "max_delivery_lag_seconds": 30.0,
        "records_published": 5,
        "median_freshness_seconds": 60.0,  # 30, 40, 60, 120, 600
        "max_freshness_seconds": 600.0,
    },
}
WHOLE[CITY] = WHOLE[HOTLINE]

# From `start` to day 10 at 04:00 (the lab's research request on lane closures is
# decided at that very instant, so it is pending as of then): no audit entry falls
# in it, nor the last record, its delivery, or the last webhook attempt.
EARLIER = {
    NEAR: WHOLE[NEAR]
    | {
        "accesses_refused": 0,
        "refusal_reasons": reasons(("access_request", DENIAL, 1)),
        "reads_answered": 0,
        "records_shared": 0,
    },
    LANES: NOTHING
    | {
        "requests_received": 3,
        "requests_answered": 2,  # in 2 h and 1 h
        "answered_within_deadline": 2,
        "pending": 1,  # due on day 13: not overdue on day 10
        "median_reply_hours": 1.5,
        "delivery_attempts": 1,  # dead
        "delivery_success_rate": 0.0,
        "events_delivered": 1,
        "median_delivery_lag_seconds": 10.0,
        "max_delivery_lag_seconds": 10.0,
        "records_published": 1,
        "median_freshness_seconds": 30.0,
        "max_freshness_seconds": 30.0,
    },
    HOTLINE: NOTHING
    | {"records_published": 1, "median_freshness_seconds": 10.0, "max_freshness_seconds": 10.0},
    FLEET: NOTHING
    | {
        "requests_received": 7,
        "requests_answered": 4,
        "answered_within_deadline": 3,
        "overdue": 2,
        "pending": 3,
        "median_reply_hours": 6.0,  # 1, 2, 10, 38
        "requests_refused": 1,
        "refusal_reasons": reasons(("access_request", DENIAL, 1)),
        "delivery_attempts": 4,
        "deliveries_succeeded": 2,
        "delivery_success_rate": 0.5,
        "events_delivered": 4,
        "median_delivery_lag_seconds": 7.0,  # 2, 4, 10, 30
        "max_delivery_lag_seconds": 30.0,
        "records_published": 4,
        "median_freshness_seconds": 90.0,  # 30, 60, 120, 600
        "max_freshness_seconds": 600.0,
    },
}
EARLIER[CITY] = EARLIER[HOTLINE]


# --- reading the figures ------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sharing(exchange: Exchange, who: str = "steward", **params: Any) -> dict[str, Any]:
    return ok(exchange.get(who, PATH, params=params))


def figures_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Product or organisation → its figures, after checking who owns what."""
    owners = [(row["organization"], row["product"]) for row in report["products"]]
    assert owners == [(CITY, HOTLINE), (FLEET, LANES), (FLEET, NEAR)]
    held = [(row["organization"], row["products"]) for row in report["organizations"]]
    assert held == [(CITY, [HOTLINE]), (FLEET, [LANES, NEAR])]
    found = {row.pop("product"): row for row in report["products"]}
    for row in found.values():
        del row["organization"]
    for row in report["organizations"]:
        del row["products"]
        found[row.pop("organization")] = row
    return found


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000}))
    return [item["entry"] for item in page["entries"]]


# --- the figures --------------------------------------------------------------------------------


def test_figures_from_start_to_now(exchange: Exchange, history: datetime) -> None:
    report = sharing(exchange, **{"from": rfc3339(history)})
    assert report["window"]["from"] == rfc3339(history)
    assert report["as_of"] == report["window"]["to"]
    assert figures_of(report) == WHOLE


def test_an_earlier_window_judges_requests_at_its_end(
    exchange: Exchange, history: datetime
) -> None:
    guangzhou = ZoneInfo("Asia/Shanghai")  # an offset other than Z: the same instant
    since = history.astimezone(guangzhou).isoformat()
    until = rfc3339(history + EARLIER_END)
    report = sharing(exchange, **{"from": since, "to": until})
    assert report["window"] == {"from": rfc3339(history), "to": until}
    assert report["as_of"] == until
    assert figures_of(report) == EARLIER


def test_without_from_the_whole_history_counts(exchange: Exchange, history: datetime) -> None:
    report = sharing(exchange)
    assert report["window"]["from"] is None
    near = figures_of(report)[NEAR]
    assert near["requests_received"] == 5  # with the one made the day before `start`
    assert near["requests_answered"] == 3
    assert near["answered_within_deadline"] == 2
    assert near["median_reply_hours"] == 10.0  # 1, 10, 38
    assert near["delivery_attempts"] == 4
    assert near["delivery_success_rate"] == 0.75  # 3 / 4
    assert near["events_delivered"] == 4
    assert near["median_delivery_lag_seconds"] == 4.5  # 2, 4, 5, 30
    assert near["records_published"] == 4
    assert near["median_freshness_seconds"] == 360.0  # 60, 120, 600, 3600
    assert near["max_freshness_seconds"] == 3600.0


def test_a_to_after_now_means_now(exchange: Exchange) -> None:
    before = datetime.now(UTC)
    report = sharing(exchange, to=rfc3339(before + 30 * DAY))
    to = datetime.fromisoformat(report["window"]["to"].replace("Z", "+00:00"))
    assert before <= to <= datetime.now(UTC)


# --- CSV ----------------------------------------------------------------------------------------


def shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(f"{r['source']}: {r['reason']} ({r['count']})" for r in value)
    return str(value)


@pytest.mark.parametrize("asked", ["format", "accept"])
def test_csv_has_the_same_figures(exchange: Exchange, history: datetime, asked: str) -> None:
    since = {"from": rfc3339(history), "to": rfc3339(history + EARLIER_END)}
    if asked == "format":
        response = exchange.get("auditor", PATH, params=since | {"format": "csv"})
    else:
        response = exchange.get("auditor", PATH, params=since, headers={"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    header, rows = rows[0], rows[1:]
    counted = [name for name in NOTHING if name != "refusal_reasons"]
    assert header == ["scope", "organization", "product", *counted, "refusal_reasons"]
    expected = [("product", CITY, HOTLINE), ("product", FLEET, LANES), ("product", FLEET, NEAR)]
    expected += [("organization", CITY, ""), ("organization", FLEET, "")]
    assert [tuple(row[:3]) for row in rows] == expected
    for row in rows:
        figures = EARLIER[row[2] or row[1]]
        assert dict(zip(header[3:], row[3:], strict=True)) == {
            name: shown(figures[name]) for name in header[3:]
        }
    json_report = sharing(exchange, "auditor", **since)
    assert figures_of(json_report) == EARLIER  # the same figures as the JSON


# --- who may read them --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["police", "mapco", "fleet", "admin"])
def test_others_are_refused_and_logged(exchange: Exchange, who: str) -> None:
    problem(exchange.get(who, PATH), 403, "access_denied")
    client = exchange.parties[who].client_id
    entries = audit(exchange, action="sharing.read", actor=client)
    assert [entry["decision"] for entry in entries] == ["deny"]


@pytest.mark.parametrize("who", ["steward", "auditor"])
def test_stewards_and_auditors_read_them_on_record(exchange: Exchange, who: str) -> None:
    sharing(exchange, who)
    client = exchange.parties[who].client_id
    entries = audit(exchange, action="sharing.read", actor=client)
    assert [entry["decision"] for entry in entries] == ["allow"]
    assert entries[0]["details"]["window"]["from"] is None


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-01T00:00:00"}, "from"),  # no offset
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, "from"),  # empty
        ({"from": "2026-11-03T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, "from"),
        ({"from": "9999-01-01T00:00:00Z"}, "from"),  # after now
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_windows_are_refused(exchange: Exchange, params: dict[str, str], field: str) -> None:
    body = problem(exchange.get("steward", PATH, params=params), 400, "bad_request")
    assert [error["field"] for error in body["errors"]] == [field], body


def test_records_without_a_time_of_their_own_are_still_published(exchange: Exchange) -> None:
    """`records_published` is the records published in the window (docs/scenarios.md);
    a product with no time field has no freshness, but its records were published."""
    fields = [{"name": "stop", "type": "string"}, {"name": "shelter", "type": "boolean"}]
    exchange.register("fleet", captures_product("bus-stops", tier="open", fields=fields))
    stops = [{"id": f"stop-{n}", "stop": f"Tianhe {n}", "shelter": True} for n in (1, 2)]
    assert ok(exchange.publish("fleet", "bus-stops", stops))["accepted"] == 2
    row = sharing(exchange)["products"][0]
    assert (row["product"], row["records_published"]) == ("bus-stops", 2)
    assert (row["median_freshness_seconds"], row["max_freshness_seconds"]) == (None, None)
