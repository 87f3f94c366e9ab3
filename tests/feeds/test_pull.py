"""Pull subscriptions: events after a cursor (which acknowledges what it passes), replay
from an earlier cursor, long polls that wake on a publish, the subscriber's view applied
to every page, an audit entry per pull, refusals as problem details, and pulls that keep
working when records go (retention) or fail cleanly when the product is erased."""

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Exchange, run_cli
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, cell_of, pseudonym_for
from tests.responses import ok, problem

PRODUCT = "violation-captures"
LAW = "law_enforcement"  # police: the raw view
NAVIGATION = "navigation_safety"  # mapco: the protected view


def subscribe(exchange: Exchange, who: str, purpose: str, **options: Any) -> dict[str, Any]:
    """A pull subscription to the captures product; its body."""
    body = {"product": options.pop("product", PRODUCT), "purpose": purpose, "delivery": "pull"}
    response = exchange.post(who, "/v1/subscriptions", json=body | options)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def pull(exchange: Exchange, who: str, sid: int, **params: Any) -> Any:
    return exchange.get(who, f"/v1/subscriptions/{sid}/events", params=params)


def pulled(exchange: Exchange, who: str, sid: int, **params: Any) -> dict[str, Any]:
    return ok(pull(exchange, who, sid, **params))


def record_ids(page: dict[str, Any]) -> list[str]:
    return [event["record"]["id"] for event in page["events"]]


def numbers(page: dict[str, Any]) -> list[int]:
    return [event["event"] for event in page["events"]]


def health(exchange: Exchange, who: str, sid: int) -> dict[str, Any]:
    body: dict[str, Any] = ok(exchange.get(who, f"/v1/subscriptions/{sid}"))["health"]
    return body


def publish(exchange: Exchange, records: list[dict[str, Any]], product: str = PRODUCT) -> None:
    response = exchange.publish("fleet", product, records)
    assert response.status_code == 200, response.text


def cursor(after: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    exchange.register("fleet", captures_product())
    return exchange


# --- cursor, replay, limit, acknowledgement -----------------------------------------------------


def test_events_come_in_order_and_the_cursor_continues(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(n) for n in range(1, 6)])

    first = pulled(world, "police", sid, limit=2)
    assert numbers(first) == [1, 2]
    assert record_ids(first) == ["cap-000001", "cap-000002"]
    assert [event["record"]["seq"] for event in first["events"]] == [1, 2]
    assert (first["subscription"], first["product"], first["purpose"]) == (sid, PRODUCT, LAW)

    second = pulled(world, "police", sid, limit=2, cursor=first["next_cursor"])
    assert numbers(second) == [3, 4]
    third = pulled(world, "police", sid, limit=2, cursor=second["next_cursor"])
    assert numbers(third) == [5]
    end = pulled(world, "police", sid, limit=2, cursor=third["next_cursor"])
    assert end["events"] == []
    assert end["next_cursor"] == third["next_cursor"], "an empty page stays where it was"

    publish(world, [capture(6)])
    later = pulled(world, "police", sid, cursor=end["next_cursor"])
    assert numbers(later) == [6]
    assert record_ids(later) == ["cap-000006"]


def test_no_cursor_or_an_earlier_one_replays(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(n) for n in range(1, 5)])
    everything = pulled(world, "police", sid)
    assert numbers(everything) == [1, 2, 3, 4]
    done = pulled(world, "police", sid, cursor=everything["next_cursor"])
    assert done["events"] == []

    assert numbers(pulled(world, "police", sid)) == [1, 2, 3, 4]
    assert numbers(pulled(world, "police", sid, cursor=cursor(1))) == [2, 3, 4]
    again = pulled(world, "police", sid, cursor=cursor(0))
    assert again["events"] == everything["events"]


def test_limit_caps_a_page(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(n) for n in range(1, 8)])
    assert numbers(pulled(world, "police", sid, limit=1)) == [1]
    assert numbers(pulled(world, "police", sid, limit=3, cursor=cursor(2))) == [3, 4, 5]
    assert len(pulled(world, "police", sid, limit=1000)["events"]) == 7
    for bad in (0, 1001, "many"):
        problem(pull(world, "police", sid, limit=bad), 400, "bad_request")


def test_a_cursor_acknowledges_what_it_passes(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(n) for n in range(1, 6)])
    before = health(world, "police", sid)
    assert (before["events_waiting"], before["delivered"]) == (5, 0)

    page = pulled(world, "police", sid, limit=2)
    unacknowledged = health(world, "police", sid)
    assert unacknowledged["events_waiting"] == 5, "a page is acknowledged by the next cursor"

    pulled(world, "police", sid, limit=2, cursor=page["next_cursor"])
    after = health(world, "police", sid)
    assert (after["events_waiting"], after["delivered"]) == (3, 2)

    last = pulled(world, "police", sid, cursor=cursor(2))
    pulled(world, "police", sid, cursor=last["next_cursor"])
    drained = health(world, "police", sid)
    assert (drained["events_waiting"], drained["delivered"]) == (0, 5)
    assert drained["oldest_waiting_seconds"] == 0.0

    # Replaying does not make acknowledged events wait again.
    assert numbers(pulled(world, "police", sid)) == [1, 2, 3, 4, 5]
    assert health(world, "police", sid)["events_waiting"] == 0


def test_a_filter_decides_which_records_become_events(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW, filter={"equals": {"violation_type": ["red_light"]}})[
        "id"
    ]
    publish(world, [capture(n) for n in range(1, 7)])
    page = pulled(world, "police", sid)
    assert numbers(page) == [1, 2, 3], "events are numbered densely per subscription"
    assert record_ids(page) == ["cap-000001", "cap-000003", "cap-000005"]


# --- long polls --------------------------------------------------------------------------------


def test_a_long_poll_returns_a_record_published_while_it_waits(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    published: list[int] = []

    def publish_soon() -> None:
        time.sleep(0.5)
        published.append(world.publish("fleet", PRODUCT, [capture(1)]).status_code)

    publisher = threading.Thread(target=publish_soon)
    started = time.monotonic()
    publisher.start()
    try:
        page = pulled(world, "police", sid, wait=10)
    finally:
        publisher.join(timeout=30)
    elapsed = time.monotonic() - started

    assert published == [200]
    assert record_ids(page) == ["cap-000001"]
    assert elapsed < 8, f"the poll waited out its {10} s ({elapsed:.1f} s) instead of waking"


def test_a_long_poll_with_nothing_returns_empty_when_its_wait_ends(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    started = time.monotonic()
    page = pulled(world, "police", sid, wait=1)
    elapsed = time.monotonic() - started
    assert page["events"] == []
    assert elapsed >= 1.0
    assert elapsed < 20

    quick = time.monotonic()
    assert pulled(world, "police", sid)["events"] == []
    assert time.monotonic() - quick < 5, "without wait a pull does not wait"


def test_a_long_poll_with_events_waiting_returns_at_once(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(1)])
    started = time.monotonic()
    assert numbers(pulled(world, "police", sid, wait=20)) == [1]
    assert time.monotonic() - started < 10


def test_a_wait_above_the_maximum_is_refused(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    maximum = world.settings.pull_wait_max_seconds
    body = problem(pull(world, "police", sid, wait=maximum + 1), 400, "bad_request")
    assert "wait" in body["detail"]
    problem(pull(world, "police", sid, wait=-1), 400, "bad_request")
    problem(pull(world, "police", sid, wait="soon"), 400, "bad_request")


# --- views -------------------------------------------------------------------------------------


def test_the_protected_view_applies_to_pulled_events(world: Exchange) -> None:
    sid = subscribe(world, "mapco", NAVIGATION)["id"]
    records = [capture(n, driver_note="tired") for n in range(1, 4)]
    publish(world, records)

    page = pulled(world, "mapco", sid)
    assert page["view"] == "protected"
    assert page["fields"]["plate"] == "pseudonymized"
    assert page["fields"]["location"] == "generalized"
    assert page["fields"]["driver_note"] == "withheld"
    until = page["pseudonyms_until"]
    for event, original in zip(page["events"], records, strict=True):
        shown = event["record"]
        assert shown["plate"].startswith("ps_") and PSEUDONYM.match(shown["plate"])
        assert shown["plate"] == pseudonym_for(
            world.settings, "lingnan-maps", PRODUCT, original["plate"], until
        )
        assert shown["location"] == cell_of(original["location"])
        assert "driver_note" not in shown
        assert shown["photo"]["redacted"] is True

    # The same records read directly show the same pseudonyms.
    read = ok(world.get("mapco", f"/v1/products/{PRODUCT}/records", params={"purpose": NAVIGATION}))
    assert [r["plate"] for r in read["records"]] == [e["record"]["plate"] for e in page["events"]]


def test_the_raw_view_applies_to_the_police(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    records = [capture(n, driver_note="tired") for n in range(1, 3)]
    publish(world, records)

    page = pulled(world, "police", sid)
    assert page["view"] == "raw"
    assert set(page["fields"].values()) == {"raw"}
    assert page["pseudonyms_until"] is None
    for event, original in zip(page["events"], records, strict=True):
        shown = event["record"]
        assert shown["plate"] == original["plate"]
        assert shown["location"] == original["location"]
        assert shown["driver_note"] == "tired"


def test_the_view_is_decided_when_pulled_not_when_published(world: Exchange) -> None:
    sid = subscribe(world, "mapco", NAVIGATION)["id"]
    publish(world, [capture(1)])
    lines = ok(world.get("steward", "/v1/policies"))["lines"]
    masked = [
        "p2, *, *, *, personal, masked" if line == "p2, *, *, *, personal, pseudonymized" else line
        for line in lines
    ]
    assert masked != lines
    changed = world.put("steward", "/v1/policies", json={"lines": masked, "reason": "masks"})
    assert changed.status_code == 200, changed.text

    page = pulled(world, "mapco", sid)
    assert page["fields"]["plate"] == "masked"
    assert page["events"][0]["record"]["plate"] == "粤A·1****"


def test_fields_restrict_what_is_pulled(world: Exchange) -> None:
    sid = subscribe(world, "mapco", NAVIGATION, fields=["violation_type", "plate"])["id"]
    publish(world, [capture(1), capture(2)])

    page = pulled(world, "mapco", sid)
    assert page["fields"] == {"violation_type": "raw", "plate": "pseudonymized"}
    for event in page["events"]:
        assert set(event["record"]) == {"id", "seq", "published_at", "violation_type", "plate"}
        assert event["record"]["plate"].startswith("ps_")


# --- audit -------------------------------------------------------------------------------------


def test_each_pull_is_audited(world: Exchange) -> None:
    sid = subscribe(world, "mapco", NAVIGATION)["id"]
    publish(world, [capture(n) for n in range(1, 4)])
    first = pulled(world, "mapco", sid, limit=2)
    pulled(world, "mapco", sid, cursor=first["next_cursor"])
    pulled(world, "mapco", sid, cursor=cursor(3))

    entries = audit(world, action="pull")
    assert len(entries) == 3
    mapco = world.parties["mapco"].client_id
    for entry in entries:
        assert (entry["actor"], entry["organization"]) == (mapco, "lingnan-maps")
        assert (entry["decision"], entry["product"], entry["purpose"]) == (
            "allow",
            PRODUCT,
            NAVIGATION,
        )
        assert entry["view"] == "protected"
        assert entry["details"]["subscription"] == sid
    assert [e["record_count"] for e in entries] == [2, 1, 0]
    assert [e["records"] for e in entries] == [[[1, 2]], [[3, 3]], []]
    assert [e["details"]["events"] for e in entries] == [[1, 2], [3, 3], []]


def test_a_refused_pull_is_audited_and_suspends(world: Exchange) -> None:
    sid = subscribe(world, "mapco", NAVIGATION)["id"]
    publish(world, [capture(1)])
    lines = ok(world.get("steward", "/v1/policies"))["lines"]
    denied = [*lines, f"p, org:lingnan-maps, product:{PRODUCT}, read, *, -, deny"]
    changed = world.put("steward", "/v1/policies", json={"lines": denied, "reason": "stop"})
    assert changed.status_code == 200, changed.text

    problem(pull(world, "mapco", sid), 403, "access_denied")
    (entry,) = audit(world, action="pull")
    assert (entry["decision"], entry["record_count"]) == ("deny", 0)
    body = ok(world.get("mapco", f"/v1/subscriptions/{sid}"))
    assert body["status"] == "suspended"
    problem(pull(world, "mapco", sid), 409, "conflict")


# --- refusals ----------------------------------------------------------------------------------


def test_a_webhook_subscription_is_not_pulled(world: Exchange) -> None:
    response = world.post(
        "police",
        "/v1/subscriptions",
        json={
            "product": PRODUCT,
            "purpose": LAW,
            "delivery": "webhook",
            "url": "http://127.0.0.1:9/hook",
        },
    )
    assert response.status_code == 201, response.text
    body = problem(pull(world, "police", response.json()["id"]), 409, "conflict")
    assert "webhook" in body["detail"]


def test_a_paused_subscription_is_not_pulled(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(1)])
    assert ok(world.post("police", f"/v1/subscriptions/{sid}/pause"))["status"] == "paused"
    problem(pull(world, "police", sid), 409, "conflict")
    assert ok(world.post("police", f"/v1/subscriptions/{sid}/resume"))["status"] == "active"
    assert numbers(pulled(world, "police", sid)) == [1]


BAD_CURSORS = [
    "not-a-cursor!",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    cursor(-1),
    cursor("3"),
    cursor(True),
    cursor(1.5),
    cursor(2**63),
]


def test_a_bad_cursor_is_refused_naming_it(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(1)])
    for bad in BAD_CURSORS:
        body = problem(pull(world, "police", sid, cursor=bad), 400, "bad_request")
        assert [error["field"] for error in body["errors"]] == ["cursor"], bad
    assert health(world, "police", sid)["events_waiting"] == 1, "nothing was acknowledged"


def test_a_cursor_past_the_last_event_is_refused_and_acknowledges_nothing(
    world: Exchange,
) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(1), capture(2)])
    body = problem(pull(world, "police", sid, cursor=cursor(100)), 400, "bad_request")
    assert [error["field"] for error in body["errors"]] == ["cursor"]
    assert health(world, "police", sid)["events_waiting"] == 2
    denials = audit(world, action="pull", decision="deny")
    assert len(denials) == 1 and "past this subscription's last event" in denials[0]["reason"]


def test_many_waiting_pulls_do_not_hold_up_other_requests(world: Exchange) -> None:
    """Waiting pulls hold no write lock (SQLite) and no pool thread: a catalog read
    and a publish made while forty of them wait both succeed, and the publish wakes them."""
    sid = subscribe(world, "police", LAW)["id"]
    answers: list[int] = []

    def wait_for_one() -> None:
        response = pull(world, "police", sid, wait=10)
        answers.append(len(response.json()["events"]) if response.status_code == 200 else -1)

    waiting = [threading.Thread(target=wait_for_one) for _ in range(40)]
    for thread in waiting:
        thread.start()
    time.sleep(1)
    assert world.get("mapco", "/v1/products").status_code == 200
    publish(world, [capture(1)])
    for thread in waiting:
        thread.join(timeout=60)
    assert answers == [1] * 40


def test_an_unknown_subscription_is_not_found(world: Exchange) -> None:
    problem(pull(world, "police", 999), 404, "not_found")


# --- retention and erasure ---------------------------------------------------------------------


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_records_removed_by_retention_leave_the_feed(world: Exchange) -> None:
    world.register("fleet", captures_product("short-lived", retention_days=30))
    sid = subscribe(world, "police", LAW, product="short-lived")["id"]
    old = [capture(n, captured_at=days_ago(45)) for n in (1, 2)]
    recent = [capture(n, captured_at=days_ago(5)) for n in (3, 4)]
    publish(world, [*old, *recent], product="short-lived")
    first = pulled(world, "police", sid, limit=1)
    assert record_ids(first) == ["cap-000001"]

    removed = json.loads(run_cli(world.settings, "retention", "run"))
    assert [(r["product"], r["records"]) for r in removed] == [("short-lived", 2)]

    after = pulled(world, "police", sid, cursor=first["next_cursor"])
    assert numbers(after) == [3, 4]
    assert record_ids(after) == ["cap-000003", "cap-000004"]
    assert record_ids(pulled(world, "police", sid)) == ["cap-000003", "cap-000004"]
    assert health(world, "police", sid)["events_waiting"] == 2
    pulled(world, "police", sid, cursor=after["next_cursor"])
    assert health(world, "police", sid)["events_waiting"] == 0

    publish(world, [capture(5, captured_at=days_ago(1))], product="short-lived")
    assert record_ids(pulled(world, "police", sid, cursor=after["next_cursor"])) == ["cap-000005"]


def test_an_erased_product_answers_gone_to_a_pull(world: Exchange) -> None:
    sid = subscribe(world, "police", LAW)["id"]
    publish(world, [capture(n) for n in range(1, 4)])
    assert numbers(pulled(world, "police", sid)) == [1, 2, 3]

    erased = json.loads(
        run_cli(world.settings, "product", "erase", PRODUCT, "--reason", "court order")
    )
    assert erased["records"] == 3

    problem(pull(world, "police", sid), 410, "product_erased")
    problem(pull(world, "police", sid, cursor=cursor(1)), 410, "product_erased")
    body = ok(world.get("police", f"/v1/subscriptions/{sid}"))
    assert body["health"]["events_waiting"] == 0, "the events went with their records"
    assert world.get("auditor", "/metrics").status_code == 200
