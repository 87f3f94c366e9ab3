"""Webhook delivery end to end: a real receiver (tests/feeds/receiver.py) that checks
every request with the `standardwebhooks` package, the in-server delivery workers,
and the subscriber's own view of its subscription (health, attempts, dead letters).

What is delivered is decided, viewed and audited when it leaves, so grants revoked
and policies changed after publication apply to events still queued.
"""

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import Exchange
from tests.feeds.conftest import with_settings
from tests.feeds.receiver import Delivery, Receiver, receiving
from tests.products import capture, captures_product
from tests.pseudonyms import PSEUDONYM, pseudonym_for
from tests.responses import ok, problem

PRODUCT = "violation-captures"
REGULATED = "near-misses"
JUSTIFICATION = "A study of pedestrian close calls near school crossings in Tianhe."
POLICE_RAW = "p, kind:government+role:subscriber, tier:open, read, law_enforcement, raw, allow"
POLICE_PROTECTED = POLICE_RAW.replace(", raw, ", ", protected, ")
QUIET = 0.5  # seconds (ten worker polls) in which nothing may arrive
T = TypeVar("T")


# --- settings -----------------------------------------------------------------------------------

# --- helpers ------------------------------------------------------------------------------------


def eventually(check: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """Poll `check` until it returns something truthy; that."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def products(exchange: Exchange, tier: str = "open", slug: str = PRODUCT) -> None:
    exchange.register("fleet", captures_product(slug, tier))


def publish(exchange: Exchange, records: list[dict[str, Any]], product: str = PRODUCT) -> None:
    body = ok(exchange.publish("fleet", product, records))
    assert body["accepted"] == len(records), body


def subscribe(
    exchange: Exchange,
    receiver: Receiver,
    who: str = "police",
    purpose: str = "law_enforcement",
    product: str = PRODUCT,
    **more: Any,
) -> dict[str, Any]:
    """A webhook subscription to the receiver, whose secret the receiver then holds."""
    response = exchange.post(
        who,
        "/v1/subscriptions",
        json={
            "product": product,
            "purpose": purpose,
            "delivery": "webhook",
            "url": receiver.url,
            **more,
        },
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    assert made["secret"].startswith("whsec_")
    receiver.secret = made["secret"]
    return made


def ok_created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def subscription(exchange: Exchange, sid: int, who: str = "police") -> dict[str, Any]:
    return ok(exchange.get(who, f"/v1/subscriptions/{sid}"))


def history(exchange: Exchange, sid: int, who: str = "police") -> dict[str, Any]:
    """Every delivery attempt (newest first) and the dead letters."""
    return ok(exchange.get(who, f"/v1/subscriptions/{sid}/deliveries", params={"limit": 500}))


def settled(exchange: Exchange, sid: int, who: str = "police", **health: Any) -> dict[str, Any]:
    """The subscription once nothing waits and its health shows `health`: read again
    then, since one answer reads the row and the counts in separate statements (on
    PostgreSQL a commit may fall between them)."""

    def check() -> bool:
        shown = subscription(exchange, sid, who)
        wanted = {"events_waiting": 0, **health}
        return all(shown["health"][k] == v for k, v in wanted.items())

    eventually(check, f"subscription {sid} to settle with {health}")
    return subscription(exchange, sid, who)


def requests(receiver: Receiver) -> list[Delivery]:
    """Every request the receiver got, accepted or not, in arrival order."""
    with receiver.lock:
        return list(receiver.deliveries)


def numbers(events: list[dict[str, Any]]) -> list[int]:
    return [event["event"] for event in events]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["record"]["id"] for event in events]


def quiet(receiver: Receiver, seconds: float = QUIET) -> None:
    """Nothing more reaches the receiver for a while."""
    before = len(requests(receiver))
    time.sleep(seconds)
    assert len(requests(receiver)) == before, requests(receiver)[before:]


def raw(delivery: Delivery) -> bytes:
    """The request body as sent: the exchange writes compact JSON, UTF-8 unescaped."""
    return json.dumps(delivery.body, ensure_ascii=False, separators=(",", ":")).encode()


def verifies(secret: str, delivery: Delivery) -> bool:
    try:
        Webhook(secret).verify(raw(delivery), delivery.headers)
    except WebhookVerificationError:
        return False
    return True


def carried(sent: list[Delivery]) -> dict[str, set[tuple[int, ...]]]:
    """Each webhook id → the event numbers of each request sent under it."""
    found: dict[str, set[tuple[int, ...]]] = {}
    for delivery in sent:
        found.setdefault(delivery.webhook_id, set()).add(
            tuple(numbers(delivery.body["data"]["events"]))
        )
    return found


def audit(exchange: Exchange, **filters: Any) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params={"limit": 1000, **filters}))
    return [item["entry"] for item in page["entries"]]


def client_id(exchange: Exchange, who: str) -> str:
    return exchange.parties[who].client_id


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


# --- 1. filtering -------------------------------------------------------------------------------

BOX = [113.30, 23.10, 113.40, 23.20]  # west, south, east, north
WINDOW = {"from": "2026-11-22T00:00:00Z", "to": "2026-11-24T00:00:00Z"}
# n: (violation_type, speed_kmh, (lat, lon), captured_at)
VARIED = {
    1: ("red_light", 42.5, (23.15, 113.35), "2026-11-21T10:00:00Z"),
    2: ("bus_lane", 60.0, (23.10, 113.30), "2026-11-22T00:00:00Z"),  # on every lower bound
    3: ("red_light", 75.0, (23.25, 113.35), "2026-11-23T12:00:00Z"),  # north of the box
    4: ("speeding", 90.0, (23.15, 113.45), "2026-11-24T00:00:00Z"),  # east; `to` is exclusive
    5: ("red_light", 59.9, (23.20, 113.40), "2026-11-23T23:59:59Z"),  # on the upper corner
    6: ("red_light", 61.0, (23.12, 113.36), "2026-11-22T07:59:59+08:00"),  # 1 s before `from`
    7: ("red_light", 80.0, (23.18, 113.31), "2026-11-23T09:00:00Z"),  # everything
}
FILTERS: dict[str, tuple[dict[str, Any], list[int]]] = {
    "equals": ({"equals": {"violation_type": ["red_light"]}}, [1, 3, 5, 6, 7]),
    "at_least": ({"at_least": {"speed_kmh": 60}}, [2, 3, 4, 6, 7]),
    "within": ({"within": {"location": BOX}}, [1, 2, 5, 6, 7]),
    "window": (WINDOW, [2, 3, 5, 7]),
    "all": (
        {
            "equals": {"violation_type": ["red_light"]},
            "at_least": {"speed_kmh": 60},
            "within": {"location": BOX},
            **WINDOW,
        },
        [7],
    ),
}


def varied(n: int) -> dict[str, Any]:
    kind, speed, (lat, lon), at = VARIED[n]
    return capture(
        n, violation_type=kind, speed_kmh=speed, location={"lat": lat, "lon": lon}, captured_at=at
    )


def test_only_matching_records_are_delivered_exactly_once(exchange: Exchange) -> None:
    products(exchange)
    with ExitStack() as stack:
        made = {}
        for name, (feed_filter, _) in FILTERS.items():
            receiver = stack.enter_context(receiving())
            made[name] = (receiver, subscribe(exchange, receiver, filter=feed_filter))
        publish(exchange, [varied(n) for n in (1, 2, 3)])
        publish(exchange, [varied(n) for n in (4, 5, 6, 7)])

        for name, (receiver, sub) in made.items():
            expected = [capture(n)["id"] for n in FILTERS[name][1]]
            events = receiver.wait_for(len(expected))
            shown = settled(exchange, sub["id"], delivered=len(expected))
            assert shown["events"] == len(expected), (name, shown)  # only matches were queued
            assert ids(events) == expected, name
            assert numbers(events) == list(range(1, len(expected) + 1)), name
            assert all(d.verified for d in requests(receiver)), name
            assert shown["filter"] == FILTERS[name][0], name

        # The window compares instants: 07:59:59+08:00 is before `from` (and shown in UTC).
        sixth = made["equals"][0].events()[3]["record"]
        assert (sixth["id"], sixth["captured_at"]) == (capture(6)["id"], "2026-11-21T23:59:59Z")
        for receiver, _ in made.values():
            quiet(receiver, 0.2)


def test_fields_cut_the_delivered_records(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, fields=["violation_type", "speed_kmh"])
    publish(exchange, [capture(1), capture(2)])
    events = receiver.wait_for(2)
    for event in events:
        assert set(event["record"]) == {"id", "seq", "published_at", "violation_type", "speed_kmh"}
    (delivery,) = requests(receiver)
    data = delivery.body["data"]
    assert set(data["fields"]) == {"violation_type", "speed_kmh"}
    assert (data["subscription"], data["product"], data["purpose"]) == (
        made["id"],
        PRODUCT,
        "law_enforcement",
    )


def test_a_filter_on_a_field_not_shown_raw_is_refused(exchange: Exchange) -> None:
    products(exchange)
    with receiving() as receiver:
        response = exchange.post(
            "mapco",
            "/v1/subscriptions",
            json={
                "product": PRODUCT,
                "purpose": "navigation_safety",
                "delivery": "webhook",
                "url": receiver.url,
                "filter": {"within": {"location": BOX}},
            },
        )
    body = problem(response, 400, "bad_request")
    assert [e["field"] for e in body["errors"]] == ["filter.within.location"], body


# --- 2. ordering --------------------------------------------------------------------------------


def test_events_arrive_in_order_in_contiguous_batches(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, batch_size=2)
    batches = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [10, 11]]
    for batch in batches:
        publish(exchange, [capture(n) for n in batch])
    total = sum(len(batch) for batch in batches)

    events = receiver.wait_for(total)
    settled(exchange, made["id"], delivered=total)
    assert numbers(events) == list(range(1, total + 1))  # strictly increasing, none twice
    assert ids(events) == [capture(n)["id"] for n in range(1, total + 1)]
    seqs = [event["record"]["seq"] for event in events]
    assert seqs == sorted(seqs)
    sent = requests(receiver)
    assert all(d.verified for d in sent)
    for delivery in sent:
        got = numbers(delivery.body["data"]["events"])
        assert 1 <= len(got) <= 2, got
        assert got == list(range(got[0], got[0] + len(got))), got
    assert len({d.webhook_id for d in sent}) == len(sent)  # each batch its own message
    assert all(a["outcome"] == "delivered" for a in history(exchange, made["id"])["attempts"])


# --- 3. signatures ------------------------------------------------------------------------------


def test_every_delivery_is_signed_the_standard_way(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    publish(exchange, [capture(1), capture(2)])
    publish(exchange, [capture(3)])
    receiver.wait_for(3)
    secret = made["secret"]
    wrong = "whsec_" + "A" * 43 + "="
    for delivery in requests(receiver):
        assert delivery.verified
        headers = delivery.headers
        assert headers["webhook-id"].startswith("msg_")
        assert headers["webhook-timestamp"].isdigit()  # integer seconds
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
        assert headers["webhook-signature"].startswith("v1,")
        assert " " not in headers["webhook-signature"]  # one secret in force
        assert headers["content-type"] == "application/json"
        assert delivery.body["type"] == "records.published"
        assert verifies(secret, delivery)  # the body as rebuilt here is the body as sent
        assert not verifies(wrong, delivery)
        tampered = replace(delivery, body={**delivery.body, "type": "records.erased"})
        assert not verifies(secret, tampered)
        renamed = replace(delivery, headers={**headers, "webhook-id": "msg_other"})
        assert not verifies(secret, renamed)


def test_a_receiver_with_the_wrong_secret_rejects_every_delivery(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    wrong = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver.secret = wrong
    publish(exchange, [capture(1)])
    receiver.wait_requests(1)
    publish(exchange, [capture(2)])
    receiver.wait_requests(2)
    sent = requests(receiver)
    assert [d.verified for d in sent] == [False, False]
    for delivery in sent:
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(wrong).verify(raw(delivery), delivery.headers)
        Webhook(made["secret"]).verify(raw(delivery), delivery.headers)  # the right one does


def test_a_retry_is_the_same_message(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    receiver.answers = [500]
    publish(exchange, [capture(1), capture(2), capture(3)])
    receiver.wait_for(3)
    first, second = requests(receiver)
    assert not first.verified and second.verified
    assert verifies(made["secret"], first)  # refused by the receiver, but signed
    assert first.webhook_id == second.webhook_id
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body["data"]["events"] == second.body["data"]["events"]
    for delivery in (first, second):
        assert delivery.headers["webhook-timestamp"].isdigit()


# --- 4. retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status_code", "error"),
    [
        pytest.param(500, 500, "the receiver answered 500", id="500"),
        pytest.param(503, 503, "the receiver answered 503", id="503"),
        pytest.param("drop", None, "RemoteProtocolError", id="dropped"),
        pytest.param((429, {"Retry-After": "1"}), 429, "the receiver answered 429", id="429"),
        pytest.param(408, 408, "the receiver answered 408", id="408"),
    ],
)
def test_a_failed_delivery_is_retried_until_it_arrives(
    exchange: Exchange, receiver: Receiver, answer: Any, status_code: int | None, error: str
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    receiver.answers = [answer, answer]
    publish(exchange, [capture(1), capture(2)])
    assert ids(receiver.wait_for(2)) == [capture(1)["id"], capture(2)["id"]]
    shown = settled(exchange, made["id"], delivered=2)
    assert shown["health"]["attempts"] == 0
    assert shown["health"]["last_success_at"] is not None
    assert error in shown["health"]["last_error"]

    attempts = history(exchange, made["id"])["attempts"][::-1]  # oldest first
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "retry", status_code),
        (2, "retry", status_code),
        (3, "delivered", 204),
    ]
    assert all(error in a["error"] for a in attempts[:2]), attempts
    assert attempts[2]["error"] is None
    assert {a["webhook_id"] for a in attempts} == {requests(receiver)[0].webhook_id}
    assert all((a["events"], a["count"]) == ([1, 2], 2) for a in attempts)
    sent = requests(receiver)
    assert len(sent) == 3
    assert len({d.webhook_id for d in sent}) == 1
    if status_code == 429:  # Retry-After is honoured (up to the longest retry delay, 0.2 s)
        assert sent[1].at - sent[0].at >= 0.15
        assert sent[2].at - sent[1].at >= 0.15


# --- 5. dead letters and redelivery -------------------------------------------------------------


def test_out_of_attempts_events_go_dead_and_are_redelivered(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    sid = made["id"]
    receiver.answers = [500] * 6  # four for the first batch, two for the next
    publish(exchange, [capture(1), capture(2)])
    shown = settled(exchange, sid, dead_letters=2)
    assert shown["status"] == "active"
    assert shown["health"]["delivered"] == 0
    seen = history(exchange, sid)
    first = requests(receiver)[0].webhook_id
    assert seen["dead_letters"] == [
        {"event": 1, "record_seq": 1, "webhook_id": first},
        {"event": 2, "record_seq": 2, "webhook_id": first},
    ]
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in seen["attempts"][::-1]] == [
        (1, "retry", 500),
        (2, "retry", 500),
        (3, "retry", 500),
        (4, "dead", 500),
    ]
    assert len(requests(receiver)) == 4

    # The subscription moves on: later events still flow (through two more 500s).
    publish(exchange, [capture(3)])
    assert ids(receiver.wait_for(1)) == [capture(3)["id"]]
    assert numbers(receiver.events()) == [3]
    settled(exchange, sid, delivered=1, dead_letters=2)

    # Redelivered under the webhook id the dead letters list.
    assert ok(exchange.post("police", f"/v1/subscriptions/{sid}/redeliver")) == {"requeued": 2}
    events = receiver.wait_for(3)
    assert numbers(events) == [3, 1, 2]
    assert ids(events[1:]) == [capture(1)["id"], capture(2)["id"]]
    assert receiver.verified()[-1].webhook_id == first
    shown = settled(exchange, sid, delivered=3, dead_letters=0)
    assert history(exchange, sid)["dead_letters"] == []
    newest = history(exchange, sid)["attempts"][0]
    assert (newest["webhook_id"], newest["attempt"], newest["outcome"], newest["events"]) == (
        first,
        1,
        "delivered",
        [1, 2],
    )
    # Nothing left to redeliver.
    assert ok(exchange.post("police", f"/v1/subscriptions/{sid}/redeliver")) == {"requeued": 0}
    quiet(receiver, 0.2)


@pytest.mark.parametrize("status", [400, 404, 410, 301])
def test_a_refusing_answer_goes_dead_at_once(
    exchange: Exchange, receiver: Receiver, status: int
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    receiver.answers = [status]
    publish(exchange, [capture(1)])
    settled(exchange, made["id"], dead_letters=1)
    (attempt,) = history(exchange, made["id"])["attempts"]
    assert (attempt["attempt"], attempt["outcome"], attempt["status_code"]) == (1, "dead", status)
    assert len(requests(receiver)) == 1

    publish(exchange, [capture(2)])  # the next event is not held up
    assert numbers(receiver.wait_for(1)) == [2]


def test_redelivering_some_dead_events(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    sid = made["id"]
    receiver.answers = [400]
    publish(exchange, [capture(1), capture(2), capture(3)])
    settled(exchange, sid, dead_letters=3)
    body = {"events": [2]}
    assert ok(exchange.post("police", f"/v1/subscriptions/{sid}/redeliver", json=body)) == {
        "requeued": 1
    }
    assert numbers(receiver.wait_for(1)) == [2]
    settled(exchange, sid, dead_letters=2, delivered=1)
    assert [d["event"] for d in history(exchange, sid)["dead_letters"]] == [1, 3]


def test_one_webhook_id_always_carries_the_same_events(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    sid = made["id"]
    receiver.answers = [400]
    publish(exchange, [capture(1), capture(2)])
    settled(exchange, sid, dead_letters=2)
    for event in (1, 2):
        body = {"events": [event]}
        assert ok(exchange.post("police", f"/v1/subscriptions/{sid}/redeliver", json=body)) == {
            "requeued": 1
        }
        receiver.wait_for(event)
    taken = carried(receiver.verified())
    assert all(len(contents) == 1 for contents in taken.values()), taken


def test_redelivery_is_for_webhooks_and_own_subscriptions(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    sid = made["id"]
    for path in ("", "/deliveries", "/redeliver"):
        method = exchange.post if path == "/redeliver" else exchange.get
        problem(method("mapco", f"/v1/subscriptions/{sid}{path}"), 404, "not_found")
    pulled = ok_created(
        exchange.post(
            "police",
            "/v1/subscriptions",
            json={"product": PRODUCT, "purpose": "law_enforcement", "delivery": "pull"},
        )
    )
    problem(exchange.post("police", f"/v1/subscriptions/{pulled['id']}/redeliver"), 409, "conflict")


# --- 6. decided at delivery time ----------------------------------------------------------------


def grant_for_lab(exchange: Exchange, **approval: Any) -> dict[str, Any]:
    asked = exchange.post(
        "lab",
        "/v1/access-requests",
        json={
            "product": REGULATED,
            "purpose": "research",
            "justification": JUSTIFICATION,
            "days": 30,
        },
    )
    assert asked.status_code == 201, asked.text
    approved = ok(
        exchange.post(
            "steward",
            f"/v1/access-requests/{asked.json()['id']}/approve",
            json={"reason": "Research purpose verified with the ethics board", **approval},
        )
    )
    grant: dict[str, Any] = approved["grant"]
    return grant


@with_settings(delivery_max_attempts=100)
def test_a_grant_revoked_before_delivery_stops_it(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange, "regulated", REGULATED)
    grant = grant_for_lab(exchange)
    made = subscribe(
        exchange,
        receiver,
        who="lab",
        purpose="research",
        product=REGULATED,
        filter={"equals": {"violation_type": ["red_light"]}},
    )
    sid = made["id"]

    # Allowed now: delivered, protected, under the grant.
    publish(exchange, [capture(1)], REGULATED)
    (event,) = receiver.wait_for(1)
    data = receiver.verified()[0].body["data"]
    assert (data["view"], data["grant"]) == ("protected", grant["id"])
    assert PSEUDONYM.match(event["record"]["plate"])

    # Queued while the receiver fails; the grant is revoked; the receiver recovers.
    receiver.answers = [500] * 1000
    publish(exchange, [capture(3), capture(5)], REGULATED)
    receiver.wait_requests(2)
    revoked = exchange.delete(
        "steward", f"/v1/grants/{grant['id']}", params={"reason": "The study ended early"}
    )
    assert ok(revoked)["state"] == "revoked"
    shown = eventually(
        lambda: (s := subscription(exchange, sid, "lab"))["status"] == "suspended" and s,
        "the subscription to be suspended",
    )
    with receiver.lock:
        receiver.answers.clear()
    quiet(receiver)
    assert ids(receiver.events()) == [capture(1)["id"]]  # nothing after the revocation
    assert shown["status_reason"], shown
    assert shown["health"]["events_waiting"] == 2  # still queued, not lost
    assert subscription(exchange, sid, "lab")["status"] == "suspended"

    denials = audit(exchange, action="deliver", decision="deny", actor=client_id(exchange, "lab"))
    assert denials, "no deny entry for the delivery"
    entry = denials[-1]
    assert (entry["product"], entry["purpose"], entry["organization"]) == (
        REGULATED,
        "research",
        "scut-mobility-lab",
    )
    assert entry["reason"] == shown["status_reason"]
    allowed = audit(exchange, action="deliver", decision="allow", actor=client_id(exchange, "lab"))
    assert allowed and all(e["grant"] == str(grant["id"]) for e in allowed)

    # Resuming is decided too: still no grant, still refused, still suspended.
    problem(exchange.post("lab", f"/v1/subscriptions/{sid}/resume"), 403, "access_denied")
    assert subscription(exchange, sid, "lab")["status"] == "suspended"
    problem(exchange.post("lab", f"/v1/subscriptions/{sid}/pause"), 409, "conflict")


def test_a_retry_does_not_spend_the_grant_quota_again(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange, "regulated", REGULATED)
    grant = grant_for_lab(exchange, quota=5)
    made = subscribe(exchange, receiver, who="lab", purpose="research", product=REGULATED)
    receiver.answers = [500]
    publish(exchange, [capture(1), capture(2), capture(3)], REGULATED)
    assert ids(receiver.wait_for(3, timeout=3)) == [capture(n)["id"] for n in (1, 2, 3)]
    assert subscription(exchange, made["id"], "lab")["status"] == "active"
    assert ok(exchange.get("lab", f"/v1/grants/{grant['id']}"))["used"] == 3


def change_policy(exchange: Exchange, old: str, new: str, reason: str) -> None:
    current = ok(exchange.get("steward", "/v1/policies"))
    assert old in current["lines"]
    lines = [new if line == old else line for line in current["lines"]]
    body = {"lines": lines, "reason": reason, "expected_version": current["version"]}
    ok(exchange.put("steward", "/v1/policies", json=body))


@with_settings(delivery_max_attempts=100)
def test_a_policy_change_before_delivery_changes_the_view(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, filter={"equals": {"violation_type": ["red_light"]}})
    publish(exchange, [capture(1)])
    (before,) = receiver.wait_for(1)
    assert receiver.verified()[0].body["data"]["view"] == "raw"
    assert before["record"]["plate"] == capture(1)["plate"]

    receiver.answers = [500] * 1000
    publish(exchange, [capture(3)])
    receiver.wait_requests(2)
    assert requests(receiver)[1].body["data"]["view"] == "raw"  # refused by the receiver
    change_policy(
        exchange, POLICE_RAW, POLICE_PROTECTED, "police see plates pseudonymized on open data"
    )
    # Once an attempt made after the change has arrived, let the receiver take it.
    eventually(
        lambda: any(d.body["data"]["view"] == "protected" for d in requests(receiver)),
        "an attempt under the new policy",
    )
    with receiver.lock:
        receiver.answers.clear()
    events = receiver.wait_for(2)
    delivery = receiver.verified()[-1]
    data = delivery.body["data"]
    assert data["view"] == "protected"
    assert data["fields"]["plate"] == "pseudonymized"
    assert numbers(events) == [1, 2]
    assert delivery.webhook_id == requests(receiver)[1].webhook_id  # the same message, re-viewed
    after = events[1]["record"]
    assert after["plate"] == pseudonym_for(
        exchange.settings,
        "gz-traffic-police",
        PRODUCT,
        capture(3)["plate"],
        data["pseudonyms_until"],
    )
    assert "driver_note" not in after
    assert subscription(exchange, made["id"])["status"] == "active"
    views = [e["view"] for e in audit(exchange, action="deliver", decision="allow")]
    assert views[0] == "raw" and views[-1] == "protected", views


def test_a_policy_change_hiding_a_filtered_field_bars_resuming(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, filter={"within": {"location": BOX}})
    sid = made["id"]
    publish(exchange, [capture(1)])
    receiver.wait_for(1)
    ok(exchange.post("police", f"/v1/subscriptions/{sid}/pause"))
    publish(exchange, [capture(2)])
    change_policy(exchange, POLICE_RAW, POLICE_PROTECTED, "police see locations as grid cells")
    # Resuming decides the read anew: the view no longer shows the location raw.
    refused = problem(
        exchange.post("police", f"/v1/subscriptions/{sid}/resume"), 400, "bad_request"
    )
    assert [e["field"] for e in refused["errors"]] == ["filter.within.location"]
    assert subscription(exchange, sid)["status"] == "paused"
    quiet(receiver, 0.2)
    assert len(receiver.events()) == 1


@with_settings(delivery_max_attempts=100)
def test_a_policy_change_during_retries_hiding_a_filtered_field_suspends(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, filter={"within": {"location": BOX}})
    sid = made["id"]
    receiver.answers = [500] * 1000
    publish(exchange, [capture(1)])
    receiver.wait_requests(1)
    change_policy(exchange, POLICE_RAW, POLICE_PROTECTED, "police see locations as grid cells")
    shown = eventually(
        lambda: (s := subscription(exchange, sid))["status"] == "suspended" and s,
        "the subscription to be suspended",
    )
    assert "no longer shows raw" in shown["status_reason"], shown
    with receiver.lock:
        receiver.answers.clear()
    quiet(receiver)
    assert receiver.events() == []
    assert shown["health"]["events_waiting"] == 1
    (denial,) = audit(exchange, action="deliver", decision="deny")
    assert denial["product"] == PRODUCT
    assert denial["reason"] == shown["status_reason"]


# --- 7. every delivery is audited ---------------------------------------------------------------


def test_every_delivery_attempt_is_audited(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, batch_size=2)
    sid = made["id"]
    receiver.answers = [500]
    publish(exchange, [capture(n) for n in range(1, 6)])
    receiver.wait_for(5)
    settled(exchange, sid, delivered=5)

    entries = audit(exchange, action="deliver")
    sent = requests(receiver)
    assert len(entries) == len(sent) == 4  # a retry is a delivery of its own
    for entry, delivery in zip(entries, sent, strict=True):
        events = delivery.body["data"]["events"]
        seqs = [event["record"]["seq"] for event in events]
        assert entry["decision"] == "allow"
        assert entry["actor"] == client_id(exchange, "police")
        assert entry["organization"] == "gz-traffic-police"
        assert (entry["product"], entry["purpose"]) == (PRODUCT, "law_enforcement")
        assert entry["view"] == delivery.body["data"]["view"] == "raw"
        assert entry["record_count"] == len(events)
        assert entry["records"] == [[seqs[0], seqs[-1]]]
        details = entry["details"]
        assert details["subscription"] == sid
        assert details["events"] == [events[0]["event"], events[-1]["event"]]
        assert details["webhook_id"] == delivery.webhook_id
        assert entry["policy_version"] == "v1"
    assert [e["details"]["attempt"] for e in entries] == [1, 2, 1, 1]
    assert [e["details"]["events"] for e in entries] == [[1, 2], [1, 2], [3, 4], [5, 5]]
    (subscribed,) = audit(exchange, action="subscribe")
    assert subscribed["details"]["subscription"] == sid


# --- 8. pause, resume, delete -------------------------------------------------------------------


def test_pause_queues_resume_delivers_delete_stops(exchange: Exchange, receiver: Receiver) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    sid = made["id"]
    paused = ok(exchange.post("police", f"/v1/subscriptions/{sid}/pause"))
    assert paused["status"] == "paused"

    publish(exchange, [capture(1), capture(2)])
    assert subscription(exchange, sid)["health"]["events_waiting"] == 2
    publish(exchange, [capture(3)])
    waiting = subscription(exchange, sid)["health"]
    assert waiting["events_waiting"] == 3
    quiet(receiver)
    assert requests(receiver) == []

    resumed = ok(exchange.post("police", f"/v1/subscriptions/{sid}/resume"))
    assert resumed["status"] == "active"
    assert ids(receiver.wait_for(3)) == [capture(n)["id"] for n in (1, 2, 3)]
    settled(exchange, sid, delivered=3)
    assert len(audit(exchange, action="subscription.pause")) == 1
    assert len(audit(exchange, action="subscription.resume")) == 1

    # Deleted: forgotten, and nothing more is sent, even what was queued.
    ok(exchange.post("police", f"/v1/subscriptions/{sid}/pause"))
    publish(exchange, [capture(4)])
    assert exchange.delete("police", f"/v1/subscriptions/{sid}").status_code == 204
    publish(exchange, [capture(5)])
    quiet(receiver)
    assert len(receiver.events()) == 3
    problem(exchange.get("police", f"/v1/subscriptions/{sid}"), 404, "not_found")
    problem(exchange.get("police", f"/v1/subscriptions/{sid}/deliveries"), 404, "not_found")
    assert ok(exchange.get("police", "/v1/subscriptions"))["subscriptions"] == []
    (deleted,) = audit(exchange, action="subscription.delete")
    assert deleted["details"] == {"subscription": sid}


def test_a_subscription_deleted_mid_delivery_stops_and_others_go_on(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    receiver.delay = 0.5
    publish(exchange, [capture(1)])
    # The audit entry is committed before the request goes: the receiver is now answering.
    eventually(lambda: audit(exchange, action="deliver"), "the delivery to start")
    assert exchange.delete("police", f"/v1/subscriptions/{made['id']}").status_code == 204
    with receiving() as other:
        subscribe(exchange, other)
        publish(exchange, [capture(2)])
        assert ids(other.wait_for(1)) == [capture(2)["id"]]
    receiver.wait_requests(1)  # the answer to the request in flight
    quiet(receiver, 0.3)
    assert len(requests(receiver)) == 1


# --- 9. secret rotation -------------------------------------------------------------------------


def test_secret_rotation_signs_with_both_during_the_overlap(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver)
    sid = made["id"]
    old = made["secret"]
    publish(exchange, [capture(1)])
    receiver.wait_for(1)

    response = exchange.post(
        "police", f"/v1/subscriptions/{sid}/secret", json={"overlap_seconds": 3600}
    )
    rotated = ok(response)
    assert response.headers["cache-control"] == "no-store"
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated["previous_secret_valid_until"] is not None
    assert subscription(exchange, sid)["secret_rotation_ends_at"] is not None

    publish(exchange, [capture(2)])  # the receiver still holds the old secret
    receiver.wait_for(2)
    receiver.secret = new
    publish(exchange, [capture(3)])  # and now the new one
    receiver.wait_for(3)
    for delivery in requests(receiver)[1:]:
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2
        assert verifies(old, delivery) and verifies(new, delivery)

    # Without an overlap only the newest secret signs.
    newest = ok(
        exchange.post("police", f"/v1/subscriptions/{sid}/secret", json={"overlap_seconds": 0})
    )
    assert newest["previous_secret_valid_until"] is None
    assert subscription(exchange, sid)["secret_rotation_ends_at"] is None
    publish(exchange, [capture(4)])
    receiver.wait_requests(4)
    last = requests(receiver)[-1]
    assert not last.verified  # the receiver holds `new`, which no longer signs
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    assert verifies(newest["secret"], last)
    assert not verifies(new, last) and not verifies(old, last)
    receiver.secret = newest["secret"]
    publish(exchange, [capture(5)])
    assert numbers(receiver.wait_for(4))[-1] == 5
    rotations = audit(exchange, action="subscription.rotate_secret")
    assert len(rotations) == 2
    assert all(new not in json.dumps(e) and old not in json.dumps(e) for e in rotations)


# --- 10. a receiver down for a while ------------------------------------------------------------


@with_settings(delivery_max_attempts=10)
def test_a_receiver_back_after_an_outage_gets_everything_once(
    exchange: Exchange, receiver: Receiver
) -> None:
    products(exchange)
    made = subscribe(exchange, receiver, batch_size=3)
    sid = made["id"]
    receiver.answers = [500, "drop", 503, (429, {"Retry-After": "0"}), 502, "drop"]
    publish(exchange, [capture(1), capture(2)])
    receiver.wait_requests(1)
    publish(exchange, [capture(3), capture(4), capture(5)])
    publish(exchange, [capture(6)])
    events = receiver.wait_for(6)
    shown = settled(exchange, sid, delivered=6, dead_letters=0)
    assert shown["status"] == "active"

    assert numbers(events) == [1, 2, 3, 4, 5, 6]  # none lost, none twice
    assert ids(events) == [capture(n)["id"] for n in range(1, 7)]
    sent = requests(receiver)
    # Six failures and the held batch (one message throughout), then what queued meanwhile.
    assert len(sent) == 6 + 1 + 2
    assert carried(sent) == {
        sent[0].webhook_id: {(1, 2)},
        sent[7].webhook_id: {(3, 4, 5)},
        sent[8].webhook_id: {(6,)},
    }
    attempts = history(exchange, sid)["attempts"][::-1]
    assert [(a["attempt"], a["outcome"]) for a in attempts[:7]] == [
        *((n, "retry") for n in range(1, 7)),
        (7, "delivered"),
    ]
    assert all(a["outcome"] == "delivered" for a in attempts[7:])
