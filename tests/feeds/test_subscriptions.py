"""Making and managing subscriptions over HTTP: the secret shown once, bad input as
problem details, the privacy rule on filters, the decision at creation, roles and
ownership, pause/resume/delete (resume decides anew), the SSRF guard with the
exchange's default settings, and the Prometheus metrics.

This module runs with the default settings (no private webhook targets), so its
webhook subscriptions point at a public address literal and nothing is ever published
to them: no request leaves the test.
"""

import base64
from pathlib import Path
from typing import Any

import pytest

from exchange.settings import Settings
from tests.conftest import Exchange
from tests.products import capture, captures_product
from tests.responses import PROBLEM, ok, problem

PRODUCT = "violation-captures"
PUBLIC = "https://93.184.216.34/hook"  # a public address literal: resolving it is local
LAW = "law_enforcement"
NAVIGATION = "navigation_safety"
MAPS_DENIED = f"p, org:lingnan-maps, product:{PRODUCT}, read, *, -, deny"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The exchange's defaults: https only, public addresses only."""
    made = Settings(database_url=database_url, data_dir=tmp_path / "data")
    assert made.webhook_allow_private is False
    return made


@pytest.fixture
def world(exchange: Exchange) -> Exchange:
    exchange.register("fleet", captures_product())
    return exchange


def create(exchange: Exchange, who: str, body: dict[str, Any]) -> Any:
    return exchange.post(who, "/v1/subscriptions", json=body)


def pull_body(purpose: str = LAW, **changes: Any) -> dict[str, Any]:
    return {"product": PRODUCT, "purpose": purpose, "delivery": "pull", **changes}


def webhook_body(purpose: str = LAW, **changes: Any) -> dict[str, Any]:
    return {"product": PRODUCT, "purpose": purpose, "delivery": "webhook", "url": PUBLIC, **changes}


def created(exchange: Exchange, who: str, body: dict[str, Any]) -> dict[str, Any]:
    response = create(exchange, who, body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def audit(exchange: Exchange, **filters: str) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params=filters | {"limit": 1000})
    assert response.status_code == 200, response.text
    return [item["entry"] for item in response.json()["entries"]]


def everything_audited(exchange: Exchange) -> str:
    """The text of every audit entry so far."""
    texts, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        response = exchange.get("auditor", "/v1/audit/entries", params=params)
        assert response.status_code == 200, response.text
        texts.append(response.text)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return "".join(texts)


def change_policy(exchange: Exchange, lines: list[str], reason: str) -> None:
    response = exchange.put("steward", "/v1/policies", json={"lines": lines, "reason": reason})
    assert response.status_code == 200, response.text


def policy_lines(exchange: Exchange) -> list[str]:
    lines: list[str] = ok(exchange.get("steward", "/v1/policies"))["lines"]
    return lines


def fields_named(body: dict[str, Any]) -> list[str | None]:
    return [error.get("field") for error in body.get("errors", [])]


# --- creating, and the secret ------------------------------------------------------------------


def test_a_webhook_subscription_shows_its_secret_once(world: Exchange) -> None:
    response = create(world, "police", webhook_body(filter={"at_least": {"speed_kmh": 30}}))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert body["delivery"] == "webhook" and body["url"] == PUBLIC
    assert (body["product"], body["purpose"], body["status"]) == (PRODUCT, LAW, "active")
    assert body["filter"] == {"at_least": {"speed_kmh": 30.0}}
    assert body["created_by"] == world.parties["police"].client_id
    assert body["events"] == 0 and body["health"]["events_waiting"] == 0
    sid = body["id"]

    rotated = world.post("police", f"/v1/subscriptions/{sid}/secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != secret

    shown = [
        world.get("police", f"/v1/subscriptions/{sid}"),
        world.get("police", "/v1/subscriptions"),
        world.get("police", f"/v1/subscriptions/{sid}/deliveries"),
    ]
    for answer in shown:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and new not in answer.text
    assert "secret" not in shown[0].json()
    assert all("secret" not in s for s in shown[1].json()["subscriptions"])

    audited = everything_audited(world)
    assert secret not in audited and new not in audited
    assert base64.b64decode(secret.removeprefix("whsec_")).hex() not in audited
    (entry,) = audit(world, action="subscribe")
    assert entry["decision"] == "allow"
    assert entry["details"] == {
        "subscription": sid,
        "delivery": "webhook",
        "filter": {"at_least": {"speed_kmh": 30.0}},
    }
    assert [e["details"] for e in audit(world, action="subscription.rotate_secret")] == [
        {"subscription": sid}
    ]


def test_a_pull_subscription_has_no_secret(world: Exchange) -> None:
    response = create(world, "police", pull_body())
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "secret" not in body
    assert (body["delivery"], body["url"], body["batch_size"]) == ("pull", None, 100)
    rotated = world.post("police", f"/v1/subscriptions/{body['id']}/secret")
    problem(rotated, 409, "conflict")
    listed = ok(world.get("police", "/v1/subscriptions"))["subscriptions"]
    assert [s["id"] for s in listed] == [body["id"]]


# --- bad input ---------------------------------------------------------------------------------


def test_an_unknown_product_is_not_found_and_the_refusal_audited(world: Exchange) -> None:
    body = problem(create(world, "police", pull_body(product="no-such-product")), 404, "not_found")
    assert "no-such-product" in body["detail"]
    (entry,) = audit(world, action="subscribe")
    assert (entry["decision"], entry["product"], entry["purpose"]) == (
        "deny",
        "no-such-product",
        LAW,
    )
    assert entry["actor"] == world.parties["police"].client_id


UNFIT = [
    ({"filter": {"equals": {"colour": ["red"]}}}, "filter.equals.colour", None),
    ({"filter": {"equals": {"location": ["Tianhe"]}}}, "filter.equals.location", None),
    ({"filter": {"equals": {"speed_kmh": [42]}}}, "filter.equals.speed_kmh", None),
    ({"filter": {"at_least": {"violation_type": 1}}}, "filter.at_least.violation_type", None),
    ({"filter": {"at_most": {"colour": 1}}}, "filter.at_most.colour", None),
    ({"filter": {"within": {"speed_kmh": [0, 0, 1, 1]}}}, "filter.within.speed_kmh", None),
    ({"fields": ["plate", "colour"]}, "fields", 1),
    ({"fields": ["colour", "plate", "shade"]}, "fields", 0),
    ({"batch_size": 101}, "batch_size", None),
]


def test_input_that_does_not_fit_the_product_is_refused_naming_where(world: Exchange) -> None:
    for changes, where, index in UNFIT:
        response = create(world, "police", pull_body(**changes))
        body = problem(response, 422, "validation_failed")
        assert body["errors"][0]["field"] == where, (changes, body)
        assert body["errors"][0].get("index") == index, (changes, body)
    assert ok(world.get("police", "/v1/subscriptions"))["subscriptions"] == []
    refusals = audit(world, action="subscribe", decision="deny")
    assert len(refusals) == len(UNFIT), "each refusal after the decision is audited"


def test_several_misfits_are_all_named(world: Exchange) -> None:
    response = create(
        world,
        "police",
        pull_body(filter={"equals": {"colour": ["red"], "location": ["x"]}}, fields=["shade"]),
    )
    body = problem(response, 422, "validation_failed")
    assert sorted((e["field"], e.get("index")) for e in body["errors"]) == [
        ("fields", 0),
        ("filter.equals.colour", None),
        ("filter.equals.location", None),
    ]


MALFORMED = [
    ("bbox west of east", pull_body(filter={"within": {"location": [113.5, 23.0, 113.2, 23.2]}})),
    ("bbox north of 90", pull_body(filter={"within": {"location": [113.2, 23.0, 113.5, 91]}})),
    ("bbox of three", pull_body(filter={"within": {"location": [113.2, 23.0, 113.5]}})),
    ("bbox of text", pull_body(filter={"within": {"location": ["w", "s", "e", "n"]}})),
    ("webhook without url", webhook_body(url=None)),
    ("webhook with empty url", webhook_body(url="")),
    ("pull with url", pull_body(url=PUBLIC)),
    ("extra key", pull_body(colour="red")),
    ("extra filter key", pull_body(filter={"near": {"location": 1}})),
    ("batch_size too large", pull_body(batch_size=1001)),
    ("batch_size zero", pull_body(batch_size=0)),
    ("unknown delivery", pull_body(delivery="email")),
    ("bad purpose", pull_body(purpose="Law Enforcement")),
    ("bad product slug", pull_body(product="Not A Slug")),
    ("no purpose", {"product": PRODUCT, "delivery": "pull"}),
    ("empty equals", pull_body(filter={"equals": {"violation_type": []}})),
    ("empty fields", pull_body(fields=[])),
    ("from without zone", pull_body(filter={"from": "2026-12-01T00:00:00"})),
    (
        "from not before to",
        pull_body(filter={"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
    ),
    ("equals of objects", pull_body(filter={"equals": {"violation_type": [{"a": 1}]}})),
    ("not an object", ["product", PRODUCT]),
]


def test_malformed_input_is_a_bad_request_never_a_500(world: Exchange) -> None:
    for name, body in MALFORMED:
        response = create(world, "police", body)
        assert response.status_code == 400, (name, response.text)
        assert response.headers["content-type"] == PROBLEM, name
        assert response.json()["type"] == "urn:exchange:problem:bad_request", name
        assert response.json()["errors"], name
    assert ok(world.get("police", "/v1/subscriptions"))["subscriptions"] == []


def test_a_bad_bbox_is_named(world: Exchange) -> None:
    response = create(world, "police", pull_body(filter={"within": {"location": [1, 2, 3]}}))
    body = problem(response, 400, "bad_request")
    assert "filter.within.location" in fields_named(body)
    response = create(world, "police", pull_body(filter={"within": {"location": [3, 0, 1, 1]}}))
    body = problem(response, 400, "bad_request")
    assert any("within.location" in e["reason"] for e in body["errors"]), body


# --- privacy: filters only on fields shown raw -------------------------------------------------


HIDDEN_FROM_MAPCO = [
    ({"equals": {"plate": ["粤A·10001"]}}, "filter.equals.plate"),
    ({"within": {"location": [113.2, 23.0, 113.5, 23.2]}}, "filter.within.location"),
    ({"equals": {"driver_note": ["tired"]}}, "filter.equals.driver_note"),
]


def test_mapco_may_not_filter_on_fields_it_is_not_shown_raw(world: Exchange) -> None:
    for feed_filter, where in HIDDEN_FROM_MAPCO:
        response = create(world, "mapco", pull_body(NAVIGATION, filter=feed_filter))
        body = problem(response, 400, "bad_request")
        assert fields_named(body) == [where], body
        assert "raw" in body["errors"][0]["reason"]
    refusals = audit(world, action="subscribe", decision="deny")
    assert len(refusals) == len(HIDDEN_FROM_MAPCO)
    assert {e["organization"] for e in refusals} == {"lingnan-maps"}

    shown = {"equals": {"violation_type": ["red_light"]}, "at_least": {"speed_kmh": 40}}
    made = created(
        world, "mapco", pull_body(NAVIGATION, filter=shown | {"from": "2026-11-01T00:00:00Z"})
    )
    assert made["filter"]["equals"] == {"violation_type": ["red_light"]}


def test_the_police_may_filter_on_plate_and_location(world: Exchange) -> None:
    for feed_filter, _ in HIDDEN_FROM_MAPCO:
        created(world, "police", pull_body(LAW, filter=feed_filter))
    assert len(ok(world.get("police", "/v1/subscriptions"))["subscriptions"]) == 3


# --- the decision at creation ------------------------------------------------------------------


def test_an_enterprise_may_not_subscribe_to_a_government_only_product(world: Exchange) -> None:
    world.register("hotline", captures_product("hotline-reports", tier="government_only"))
    body = pull_body(NAVIGATION, product="hotline-reports")
    problem(create(world, "mapco", body), 403, "access_denied")
    (entry,) = audit(world, action="subscribe", decision="deny")
    assert (entry["actor"], entry["product"]) == (
        world.parties["mapco"].client_id,
        "hotline-reports",
    )
    assert entry["policy_version"] == "v1"
    assert ok(world.get("mapco", "/v1/subscriptions"))["subscriptions"] == []
    created(world, "police", pull_body(LAW, product="hotline-reports"))


def test_an_enterprise_may_not_state_law_enforcement(world: Exchange) -> None:
    problem(create(world, "mapco", pull_body(LAW)), 403, "access_denied")
    problem(create(world, "lab", pull_body(LAW)), 403, "access_denied")
    entries = audit(world, action="subscribe", decision="deny", purpose=LAW)
    assert [e["organization"] for e in entries] == ["lingnan-maps", "scut-mobility-lab"]


def test_a_regulated_product_needs_a_grant(world: Exchange) -> None:
    world.register("fleet", captures_product("near-misses", tier="regulated"))
    body = pull_body("research", product="near-misses")
    problem(create(world, "lab", body), 403, "access_denied")
    assert len(audit(world, action="subscribe", decision="deny")) == 1

    asked = world.post(
        "lab",
        "/v1/access-requests",
        json={
            "product": "near-misses",
            "purpose": "research",
            "justification": "A study of pedestrian close calls near school crossings.",
            "days": 30,
        },
    )
    assert asked.status_code == 201, asked.text
    approved = world.post(
        "steward",
        f"/v1/access-requests/{asked.json()['id']}/approve",
        json={"reason": "verified with the ethics board"},
    )
    grant = ok(approved)["grant"]
    made = created(world, "lab", body)
    (entry,) = audit(world, action="subscribe", decision="allow")
    assert entry["grant"] == str(grant["id"])
    assert entry["details"]["subscription"] == made["id"]


# --- roles and ownership -----------------------------------------------------------------------


def test_only_subscribers_manage_subscriptions(world: Exchange) -> None:
    sid = created(world, "police", pull_body())["id"]
    for who in ("auditor", "steward", "fleet", "admin"):
        problem(create(world, who, pull_body()), 403, "access_denied")
        problem(world.get(who, "/v1/subscriptions"), 403, "access_denied")
        problem(world.get(who, f"/v1/subscriptions/{sid}"), 403, "access_denied")
        problem(world.get(who, f"/v1/subscriptions/{sid}/events"), 403, "access_denied")
        problem(world.delete(who, f"/v1/subscriptions/{sid}"), 403, "access_denied")
    assert ok(world.get("police", f"/v1/subscriptions/{sid}"))["status"] == "active"
    refusals = audit(world, action="feeds.manage", decision="deny")
    assert len(refusals) == 4 * 5


def test_another_organisation_cannot_see_or_touch_a_subscription(world: Exchange) -> None:
    sid = created(world, "police", webhook_body())["id"]
    path = f"/v1/subscriptions/{sid}"
    attempts = [
        ("GET", path),
        ("DELETE", path),
        ("POST", f"{path}/pause"),
        ("POST", f"{path}/resume"),
        ("GET", f"{path}/events"),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/redeliver"),
        ("POST", f"{path}/secret"),
    ]
    for method, where in attempts:
        body = problem(world.request(method, "mapco", where), 404, "not_found")
        assert "secret" not in body
    assert ok(world.get("mapco", "/v1/subscriptions"))["subscriptions"] == []

    mine = ok(world.get("police", path))
    assert mine["status"] == "active"
    assert audit(world, action="subscription.pause") == []
    assert audit(world, action="subscription.delete") == []


def test_a_colleague_in_the_same_organisation_sees_and_manages_it(world: Exchange) -> None:
    world.add_party("police2", "gz-traffic-police", "government", ["subscriber"])
    pulled = created(world, "police", pull_body())["id"]
    world.publish("fleet", PRODUCT, [capture(1)])
    webhook = created(world, "police", webhook_body())["id"]  # after the publish: nothing to send

    listed = ok(world.get("police2", "/v1/subscriptions"))["subscriptions"]
    assert [s["id"] for s in listed] == [pulled, webhook]
    assert ok(world.get("police2", f"/v1/subscriptions/{pulled}"))["created_by"] == (
        world.parties["police"].client_id
    )
    page = ok(world.get("police2", f"/v1/subscriptions/{pulled}/events"))
    assert [e["record"]["id"] for e in page["events"]] == ["cap-000001"]
    (entry,) = audit(world, action="pull")
    assert entry["actor"] == world.parties["police2"].client_id
    assert ok(world.post("police2", f"/v1/subscriptions/{webhook}/pause"))["status"] == "paused"
    assert ok(world.get("police2", f"/v1/subscriptions/{webhook}/deliveries"))["attempts"] == []
    assert world.delete("police2", f"/v1/subscriptions/{webhook}").status_code == 204
    problem(world.get("police", f"/v1/subscriptions/{webhook}"), 404, "not_found")


# --- pause, resume, delete ---------------------------------------------------------------------


def test_pause_resume_and_delete(world: Exchange) -> None:
    sid = created(world, "police", webhook_body())["id"]
    path = f"/v1/subscriptions/{sid}"

    paused = ok(world.post("police", f"{path}/pause"))
    assert (paused["id"], paused["status"], paused["status_reason"]) == (sid, "paused", None)
    assert ok(world.get("police", path))["status"] == "paused"
    resumed = ok(world.post("police", f"{path}/resume"))
    assert (resumed["status"], resumed["status_reason"]) == ("active", None)
    assert ok(world.post("police", f"{path}/resume"))["status"] == "active"

    deleted = world.delete("police", path)
    assert deleted.status_code == 204 and deleted.content == b""
    problem(world.get("police", path), 404, "not_found")
    problem(world.delete("police", path), 404, "not_found")
    problem(world.post("police", f"{path}/resume"), 404, "not_found")
    assert ok(world.get("police", "/v1/subscriptions"))["subscriptions"] == []

    for action in ("pause", "resume", "delete"):
        entries = audit(world, action=f"subscription.{action}")
        assert entries, action
        assert {(e["decision"], e["details"]["subscription"]) for e in entries} == {("allow", sid)}


def test_resume_decides_anew(world: Exchange) -> None:
    sid = created(world, "mapco", pull_body(NAVIGATION))["id"]
    path = f"/v1/subscriptions/{sid}"
    assert ok(world.post("mapco", f"{path}/pause"))["status"] == "paused"
    lines = policy_lines(world)
    change_policy(world, [*lines, MAPS_DENIED], "lingnan-maps is cut off")

    problem(world.post("mapco", f"{path}/resume"), 403, "access_denied")
    assert ok(world.get("mapco", path))["status"] == "paused"
    (entry,) = audit(world, action="subscription.resume")
    assert (entry["decision"], entry["policy_version"]) == ("deny", "v2")

    change_policy(world, lines, "lingnan-maps is back")
    assert ok(world.post("mapco", f"{path}/resume"))["status"] == "active"


def test_a_suspended_subscription_resumes_only_when_allowed_again(world: Exchange) -> None:
    sid = created(world, "mapco", pull_body(NAVIGATION))["id"]
    path = f"/v1/subscriptions/{sid}"
    lines = policy_lines(world)
    change_policy(world, [*lines, MAPS_DENIED], "lingnan-maps is cut off")
    problem(world.get("mapco", f"{path}/events"), 403, "access_denied")
    suspended = ok(world.get("mapco", path))
    assert suspended["status"] == "suspended" and suspended["status_reason"]

    problem(world.post("mapco", f"{path}/pause"), 409, "conflict")
    problem(world.post("mapco", f"{path}/resume"), 403, "access_denied")
    assert ok(world.get("mapco", path))["status"] == "suspended"

    change_policy(world, lines, "lingnan-maps is back")
    assert ok(world.post("mapco", f"{path}/resume"))["status"] == "active"
    assert ok(world.get("mapco", f"{path}/events"))["events"] == []


# --- SSRF, with the default settings -----------------------------------------------------------


REFUSED_URLS = [
    "http://93.184.216.34/hook",
    "https://127.0.0.1/",
    "https://localhost/",
    "https://10.0.0.1/",
    "https://192.168.1.1/hook",
    "https://172.16.0.1/hook",
    "https://100.64.0.1/",
    "https://169.254.169.254/latest",
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://user:pw@example.com/",
    "https://user@93.184.216.34/",
    "https://93.184.216.34/hook#fragment",
    "ftp://93.184.216.34/",
    "https:///nohost",
    "https://93.184.216.34:99999/",
    "https://2130706433/",
]


def test_webhook_urls_to_private_networks_are_refused(world: Exchange) -> None:
    for url in REFUSED_URLS:
        response = create(world, "police", webhook_body(url=url))
        body = problem(response, 422, "validation_failed")
        assert fields_named(body) == ["url"], (url, body)
    assert ok(world.get("police", "/v1/subscriptions"))["subscriptions"] == []
    assert len(audit(world, action="subscribe", decision="deny")) == len(REFUSED_URLS)


def test_an_http_url_is_refused_saying_https(world: Exchange) -> None:
    response = create(world, "police", webhook_body(url="http://93.184.216.34/hook"))
    body = problem(response, 422, "validation_failed")
    assert body["errors"] == [{"field": "url", "reason": "a webhook URL must use https"}]


def test_a_public_address_is_accepted(world: Exchange) -> None:
    for url in (PUBLIC, "https://93.184.216.34:8443/hooks/in?token=abc", "https://[2606:4700::1]/"):
        made = created(world, "police", webhook_body(url=url))
        assert made["url"] == url


# --- metrics -----------------------------------------------------------------------------------


def gauges(text: str, name: str) -> dict[str, float]:
    """Per subscription id, the value of one gauge."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            parts = dict(part.split("=", 1) for part in labels.split(","))
            found[parts["subscription"].strip('"')] = float(value)
    return found


def test_metrics_show_each_subscriptions_lag(world: Exchange) -> None:
    police = created(world, "police", pull_body())["id"]
    mapco = created(world, "mapco", pull_body(NAVIGATION, filter={"equals": {"lane": [1]}}))["id"]
    world.publish("fleet", PRODUCT, [capture(n) for n in range(1, 4)])

    for who in ("auditor", "admin"):
        response = world.get(who, "/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.text
        assert "# TYPE exchange_feed_events_waiting gauge" in text
        assert (
            f'exchange_feed_events_waiting{{subscription="{police}",organization='
            f'"gz-traffic-police",product="{PRODUCT}",delivery="pull"}} 3'
        ) in text
        assert gauges(text, "exchange_feed_events_waiting") == {str(police): 3, str(mapco): 0}
        assert gauges(text, "exchange_feed_suspended") == {str(police): 0, str(mapco): 0}

    page = ok(world.get("police", f"/v1/subscriptions/{police}/events", params={"limit": 2}))
    world.get(
        "police", f"/v1/subscriptions/{police}/events", params={"cursor": page["next_cursor"]}
    )
    text = world.get("auditor", "/metrics").text
    assert gauges(text, "exchange_feed_events_waiting")[str(police)] == 1
    assert gauges(text, "exchange_feed_events_delivered")[str(police)] == 2


def test_metrics_are_for_auditors_and_admins_only(world: Exchange) -> None:
    for who in ("police", "mapco", "lab", "steward", "fleet"):
        problem(world.get(who, "/metrics"), 403, "access_denied")
