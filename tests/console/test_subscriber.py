"""The subscriber's console pages over HTTP: my subscriptions with their health and
dead letters, redelivered through the console and seen over the API; my
organisation's requests and grants and no one else's — and everyone else kept
out, with the refusal in the audit log."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.console.pages import when
from exchange.settings import Settings
from tests.conftest import Exchange
from tests.console.conftest import text_of
from tests.feeds.conftest import FEED_SETTINGS
from tests.feeds.receiver import Receiver, receiving
from tests.feeds.test_webhooks import eventually
from tests.products import capture, captures_product
from tests.responses import ok

PRODUCT = "violation-captures"
REGULATED = "near-misses"
JUSTIFICATION = "A study of pedestrian close calls near school crossings in Tianhe."


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Webhooks may go to the loopback receiver; retries come quickly."""
    return Settings(database_url=database_url, data_dir=tmp_path / "data", **FEED_SETTINGS)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    page = ok(exchange.get("auditor", "/v1/audit/entries", params={"limit": 1000, **filters}))
    return [item["entry"] for item in page["entries"]]


def health(exchange: Exchange, sid: int) -> dict[str, Any]:
    found: dict[str, Any] = ok(exchange.get("police", f"/v1/subscriptions/{sid}"))["health"]
    return found


def settled(exchange: Exchange, sid: int, **wanted: Any) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        shown = health(exchange, sid)
        expected = {"events_waiting": 0, **wanted}
        return shown if all(shown[k] == v for k, v in expected.items()) else None

    return eventually(check, f"subscription {sid} to settle with {wanted}", timeout=20.0)


def row_of(html: str, element_id: str) -> str:
    found = re.search(rf'<tr id="{element_id}".*?</tr>', html, re.S)
    assert found, element_id
    return found.group(0)


def cell(row: str, name: str) -> str:
    found = re.search(rf'<td class="{name}[^"]*">(.*?)</td>', row, re.S)
    assert found, name
    return text_of(found.group(1))


@pytest.fixture
def dead_letter(exchange: Exchange, receiver: Receiver) -> int:
    """The police's webhook subscription, with one event dead (its receiver refused
    it with a 400) and one delivered; the subscription's id."""
    exchange.register("fleet", captures_product())
    made = exchange.post(
        "police",
        "/v1/subscriptions",
        json={
            "product": PRODUCT,
            "purpose": "law_enforcement",
            "delivery": "webhook",
            "url": receiver.url,
        },
    )
    assert made.status_code == 201, made.text
    sid: int = made.json()["id"]
    receiver.secret = made.json()["secret"]
    receiver.answers = [400]
    ok(exchange.publish("fleet", PRODUCT, [capture(1)]))
    settled(exchange, sid, dead_letters=1)
    ok(exchange.publish("fleet", PRODUCT, [capture(2)]))
    settled(exchange, sid, dead_letters=1, delivered=1)
    return sid


# --- subscriptions ------------------------------------------------------------------------------


def test_a_subscriber_sees_its_subscription_s_health_and_dead_letter(
    exchange, browser, dead_letter
):
    response = browser("police").get("/console/subscriber/subscriptions")

    assert response.status_code == 200, text_of(response.text)[:500]
    row = row_of(response.text, f"subscription-{dead_letter}")
    assert PRODUCT in row
    assert cell(row, "status") == "active"
    assert cell(row, "dead-letters") == "1"
    assert cell(row, "lag").startswith("0 waiting")
    assert cell(row, "last-delivery").endswith(" UTC")
    assert "400" in cell(row, "last-error")
    dead = re.search(rf'id="dead-{dead_letter}".*?</section>', response.text, re.S)
    assert dead and 'name="event" value="1"' in dead.group(0)
    headers = re.findall(r"<th[^>]*>(.*?)</th>", dead.group(0), re.S)
    assert text_of(headers[0]) == "Select 选择"  # the checkbox column has a header
    assert f'action="/console/subscriber/subscriptions/{dead_letter}/redeliver"' in dead.group(0)


def test_another_organisation_sees_none_of_it(exchange, browser, dead_letter):
    response = browser("mapco").get("/console/subscriber/subscriptions")

    assert response.status_code == 200
    assert f'id="subscription-{dead_letter}"' not in response.text
    assert PRODUCT not in response.text


def test_redelivering_through_the_console_delivers_the_dead_letter(
    exchange, browser, receiver, dead_letter
):
    police = browser("police")
    police.get("/console/subscriber/subscriptions")

    done = police.submit(
        f"/console/subscriber/subscriptions/{dead_letter}/redeliver", {"which": "all"}
    )

    page = police.follow(done)
    assert "1 dead letter(s) queued for redelivery." in text_of(page.text)
    assert [event["record"]["id"] for event in receiver.wait_for(2)] == ["cap-000002", "cap-000001"]
    settled(exchange, dead_letter, dead_letters=0, delivered=2)
    (entry,) = audit(exchange, action="subscription.redeliver")
    assert (entry["actor"], entry["decision"]) == (exchange.parties["police"].client_id, "allow")


def test_redelivering_ticked_events_only(exchange, browser, receiver, dead_letter):
    police = browser("police")
    police.get("/console/subscriber/subscriptions")

    done = police.submit(
        f"/console/subscriber/subscriptions/{dead_letter}/redeliver",
        [("which", "selected"), ("event", "1")],
    )

    assert "1 dead letter(s)" in text_of(police.follow(done).text)
    settled(exchange, dead_letter, dead_letters=0, delivered=2)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ([("which", "selected")], "event"),
        ([("which", "selected"), ("event", "one")], "events"),
        ([("which", "selected"), ("event", "0")], "events"),
    ],
)
def test_bad_redelivery_input_is_refused_naming_the_field(
    exchange, browser, dead_letter, fields, named
):
    police = browser("police")
    police.get("/console/subscriber/subscriptions")

    response = police.submit(f"/console/subscriber/subscriptions/{dead_letter}/redeliver", fields)

    assert response.status_code in (400, 422), response.status_code
    assert named in text_of(response.text)
    assert health(exchange, dead_letter)["dead_letters"] == 1
    assert not audit(exchange, action="subscription.redeliver")


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [("which", "")],
        [("which", "everything")],
        [("event", "1")],
        [("which", "ALL"), ("event", "1")],
    ],
)
def test_a_redelivery_that_does_not_say_all_or_selected_requeues_nothing(
    exchange, browser, dead_letter, fields
):
    police = browser("police")
    police.get("/console/subscriber/subscriptions")

    response = police.submit(f"/console/subscriber/subscriptions/{dead_letter}/redeliver", fields)

    assert response.status_code == 422, response.status_code
    assert "which" in text_of(response.text)
    assert "must be all or selected" in text_of(response.text)
    assert health(exchange, dead_letter)["dead_letters"] == 1
    assert not audit(exchange, action="subscription.redeliver")


def test_a_redelivery_form_without_its_csrf_token_does_nothing(exchange, browser, dead_letter):
    police = browser("police")

    response = police.http.post(
        f"/console/subscriber/subscriptions/{dead_letter}/redeliver", data={"which": "all"}
    )

    assert response.status_code == 403
    assert health(exchange, dead_letter)["dead_letters"] == 1
    assert not audit(exchange, action="subscription.redeliver")


def test_another_organisation_cannot_redeliver_the_police_s_letters(exchange, browser, dead_letter):
    mapco = browser("mapco")
    mapco.get("/console/subscriber/subscriptions")

    response = mapco.submit(
        f"/console/subscriber/subscriptions/{dead_letter}/redeliver", {"which": "all"}
    )

    assert response.status_code == 404
    assert health(exchange, dead_letter)["dead_letters"] == 1


def test_the_section_opens_on_the_subscriptions_page(exchange, browser):
    response = browser("lab").get("/console/subscriber")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/subscriber/subscriptions"


# --- requests and grants ------------------------------------------------------------------------


def ask(exchange: Exchange, who: str) -> dict[str, Any]:
    response = exchange.post(
        who,
        "/v1/access-requests",
        json={
            "product": REGULATED,
            "purpose": "research",
            "justification": JUSTIFICATION,
            "days": 30,
        },
    )
    assert response.status_code == 201, response.text
    asked: dict[str, Any] = response.json()
    return asked


@pytest.fixture
def asked(exchange: Exchange) -> dict[str, Any]:
    """The lab asked twice (one approved, with a quota; one pending); mapco asked
    once and was denied."""
    exchange.register("fleet", captures_product(REGULATED, "regulated"))
    approved = ask(exchange, "lab")
    granted = ok(
        exchange.post(
            "steward",
            f"/v1/access-requests/{approved['id']}/approve",
            json={"reason": "Ethics approval seen, 30 days", "quota": 500},
        )
    )["grant"]
    pending = ask(exchange, "lab")
    refused = ask(exchange, "mapco")
    ok(
        exchange.post(
            "steward",
            f"/v1/access-requests/{refused['id']}/deny",
            json={"reason": "Navigation does not need near misses"},
        )
    )
    return {"approved": approved, "pending": pending, "refused": refused, "grant": granted}


def test_the_lab_sees_its_own_requests_and_grants_only(exchange, browser, asked):
    response = browser("lab").get("/console/subscriber/requests")

    assert response.status_code == 200, text_of(response.text)[:500]
    requests = re.findall(r'<tr id="request-(\d+)" data-organization="([^"]+)"', response.text)
    assert sorted(requests) == sorted(
        [
            (str(asked["approved"]["id"]), "scut-mobility-lab"),
            (str(asked["pending"]["id"]), "scut-mobility-lab"),
        ]
    )
    approved = text_of(row_of(response.text, f"request-{asked['approved']['id']}"))
    assert "approved" in approved and "Ethics approval seen, 30 days" in approved
    pending = text_of(row_of(response.text, f"request-{asked['pending']['id']}"))
    assert "pending" in pending and when(asked["pending"]["due_at"]) in pending
    grants = re.findall(r'<tr id="grant-(\d+)" data-organization="([^"]+)"', response.text)
    assert grants == [(str(asked["grant"]["id"]), "scut-mobility-lab")]
    grant = text_of(row_of(response.text, f"grant-{asked['grant']['id']}"))
    assert "active" in grant and when(asked["grant"]["expires_at"]) in grant and "0 / 500" in grant
    assert "Navigation does not need near misses" not in response.text


def test_the_headings_say_whose_requests_and_grants_are_shown(exchange, browser, asked):
    words = text_of(browser("lab").get("/console/subscriber/requests").text)

    assert "Access requests you may see" in words
    assert "Grants you may see" in words
    assert "My organisation" not in words


def test_paging_links_carry_their_values_urlencoded(exchange, browser, asked, monkeypatch):
    """A cursor the API accepts may hold characters a URL gives meaning to (the
    decoder skips what is not base64): the next page's link keeps it a value."""
    monkeypatch.setattr("exchange.console.subscriber.PAGE_SIZE", 1)
    first = ok(exchange.get("lab", "/v1/grants", params={"active": "false"}))
    assert first["next_cursor"] is None
    odd = "&#?" + "eyJhZnRlciI6IDB9"  # the cursor of position 0, with URL syntax
    lab = browser("lab")

    response = lab.get("/console/subscriber/requests", params={"grants_cursor": odd})

    assert response.status_code == 200, text_of(response.text)[:500]
    link = re.search(r'<a href="\?([^"]*)">More requests', response.text)
    assert link, "a second page of requests"
    query = link.group(1).replace("&amp;", "&")
    assert query.endswith("&grants_cursor=%26%23%3FeyJhZnRlciI6IDB9")
    following = lab.get("/console/subscriber/requests?" + query)
    assert following.status_code == 200, text_of(following.text)[:500]
    assert len(re.findall(r'<tr id="request-(\d+)"', following.text)) == 1


def test_mapco_sees_its_denial_and_not_the_lab_s_grant(exchange, browser, asked):
    response = browser("mapco").get("/console/subscriber/requests")

    requests = re.findall(r'<tr id="request-(\d+)"', response.text)
    assert requests == [str(asked["refused"]["id"])]
    assert "Navigation does not need near misses" in text_of(response.text)
    assert 'id="grants-none"' in response.text
    assert "Ethics approval seen" not in response.text


def test_requests_filtered_by_status(exchange, browser, asked):
    response = browser("lab").get("/console/subscriber/requests", params={"status": "pending"})

    assert re.findall(r'<tr id="request-(\d+)"', response.text) == [str(asked["pending"]["id"])]


def test_a_status_that_is_not_one_is_a_bad_request(exchange, browser):
    response = browser("lab").get("/console/subscriber/requests", params={"status": "lost"})
    assert response.status_code == 400
    assert "status" in text_of(response.text)


# --- who may open the section -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "path", "logged"),
    [
        ("fleet", "/console/subscriber", "feeds.manage"),
        ("fleet", "/console/subscriber/subscriptions", "feeds.manage"),
        ("fleet", "/console/subscriber/requests", "grants.read"),
        ("steward", "/console/subscriber/subscriptions", "feeds.manage"),
        ("auditor", "/console/subscriber/requests", "grants.read"),
    ],
)
def test_others_cannot_open_subscriber_pages(exchange, browser, who, path, logged):
    response = browser(who).get(path)

    assert response.status_code == 403
    assert "Access denied" in text_of(response.text)
    (entry,) = audit(exchange, actor=exchange.parties[who].client_id, decision="deny")
    assert entry["action"] == logged


def test_a_publisher_s_redelivery_is_refused_and_logged(exchange, browser, dead_letter):
    fleet = browser("fleet")

    response = fleet.submit(
        f"/console/subscriber/subscriptions/{dead_letter}/redeliver", {"which": "all"}
    )

    assert response.status_code == 403
    assert health(exchange, dead_letter)["dead_letters"] == 1
    (entry,) = audit(exchange, actor=exchange.parties["fleet"].client_id, decision="deny")
    assert entry["action"] == "feeds.manage"
