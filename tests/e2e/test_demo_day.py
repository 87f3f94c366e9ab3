"""The README's promise, for real: `exchange demo`, then `exchange serve` (uvicorn in
its own process), then the day's steps 2, 3, 5 and 6–8 over HTTP with the demo's
credentials file."""

import hashlib
import json
import subprocess
from pathlib import Path

import httpx

from exchange.settings import Settings
from tests.e2e.conftest import run_exchange
from tests.feeds.receiver import receiving
from tests.pseudonyms import PSEUDONYM, pseudonym_for

KEYS = {
    *("fleet", "hotline", "police", "mapco", "lab", "market", "housing"),
    *("steward", "auditor", "admin"),
}


def _client(base: str, credentials: dict, key: str) -> httpx.Client:
    token = httpx.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials[key]["client_id"],
            "client_secret": credentials[key]["client_secret"],
        },
    ).json()["access_token"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})


def test_the_day_on_a_real_server(served: str, settings: Settings) -> None:
    path = Path(settings.data_dir) / "demo" / "credentials.json"
    credentials = json.loads(path.read_text())
    assert set(credentials) == KEYS
    assert all(
        set(c) == {"client_id", "client_secret", "organization"} for c in credentials.values()
    )
    assert path.stat().st_mode & 0o077 == 0, "credentials must be readable by the owner only"

    with _client(served, credentials, "police") as police:
        raw = police.get(
            "/v1/products/violation-captures/records",
            params={"purpose": "law_enforcement", "filter": "violation_type=red_light"},
        )
        assert raw.status_code == 200
        assert raw.json()["view"] == "raw"
        assert all(r["violation_type"] == "red_light" for r in raw.json()["records"])
        first = raw.json()["records"][0]
        assert first["photo"]["ref"].endswith(".jpg")
        assert {box["kind"] for box in first["photo"]["boxes"]} == {"plate", "face"}
        evidence = police.get(
            f"/v1/products/violation-captures/records/{first['id']}/image",
            params={"purpose": "law_enforcement"},
        )
        assert evidence.status_code == 200
        assert evidence.headers["content-type"] == "image/jpeg"
        assert evidence.headers["exchange-treatment"] == "raw"
        hotline = police.get(
            "/v1/products/hotline-tickets/records", params={"purpose": "law_enforcement"}
        )
        assert hotline.status_code == 200

    with _client(served, credentials, "mapco") as mapco:
        protected = mapco.get(
            "/v1/products/violation-captures/records", params={"purpose": "navigation_safety"}
        )
        assert protected.status_code == 200
        page = protected.json()
        record = page["records"][0]
        assert (page["fields"]["plate"], page["label"]) == ("pseudonymized", "deidentified")
        assert PSEUDONYM.fullmatch(record["plate"]) and record["photo"]["redacted"] is True
        assert page["fields"]["photo"] == "redacted"
        assert record["location"]["cell"].startswith("h3:")
        public = mapco.get(
            f"/v1/products/violation-captures/records/{first['id']}/image",
            params={"purpose": "navigation_safety"},
        )
        assert public.status_code == 200
        assert public.headers["exchange-treatment"] == "redacted"
        receipt = json.loads(public.headers["exchange-redaction"])
        assert receipt["original_sha256"] == hashlib.sha256(evidence.content).hexdigest()
        assert receipt["output_sha256"] == hashlib.sha256(public.content).hexdigest()
        assert public.content != evidence.content
        assert (
            mapco.get(
                "/v1/products/violation-captures/records", params={"purpose": "commercial"}
            ).status_code
            == 403
        )
        assert (
            mapco.get(
                "/v1/products/hotline-tickets/records", params={"purpose": "traffic_management"}
            ).status_code
            == 403
        )
        assert (
            mapco.get(
                "/v1/products/pedestrian-near-misses/records", params={"purpose": "research"}
            ).status_code
            == 403
        )

    # mapco's pseudonym is its own key's, for the plate the police see raw.
    with _client(served, credentials, "police") as police:
        same = police.get(
            f"/v1/products/violation-captures/records/{record['id']}",
            params={"purpose": "law_enforcement"},
        )
        assert same.status_code == 200, same.text
        plate = same.json()["record"]["plate"]
        assert record["plate"] == pseudonym_for(
            settings, "lingnan-maps", "violation-captures", plate, page["pseudonyms_until"]
        )
        assert plate not in protected.text

    with _client(served, credentials, "auditor") as auditor:
        entries = auditor.get(
            "/v1/audit/entries", params={"product": "violation-captures", "action": "read"}
        ).json()["entries"]
        seen = {(e["entry"]["organization"], e["entry"]["decision"]) for e in entries}
        assert seen == {
            ("gz-traffic-police", "allow"),
            ("lingnan-maps", "allow"),
            ("lingnan-maps", "deny"),
        }


def test_police_get_signed_webhooks_of_new_captures(served: str, settings: Settings) -> None:
    """Step 2: the traffic police subscribe to red-light and bus-lane violations in two
    districts; the fleet's next captures arrive as signed webhooks, raw, and only those."""
    credentials = json.loads((Path(settings.data_dir) / "demo" / "credentials.json").read_text())
    wanted = {"violation_type": ["red_light", "bus_lane"], "district": ["Tianhe", "Yuexiu"]}
    with receiving() as receiver, _client(served, credentials, "police") as police:

        def subscribe(**delivery: str) -> dict:
            made = police.post(
                "/v1/subscriptions",
                json={
                    "product": "violation-captures",
                    "purpose": "law_enforcement",
                    "filter": {"equals": wanted},
                    **delivery,
                },
            )
            assert made.status_code == 201, made.text
            return made.json()

        receiver.secret = subscribe(delivery="webhook", url=receiver.url)["secret"]
        pulled = subscribe(delivery="pull")
        with _client(served, credentials, "fleet") as fleet:
            stored = fleet.get(
                "/v1/products/violation-captures/records",
                params={"purpose": "traffic_management", "limit": 200},
            ).json()["records"]
            fresh = [
                {k: v for k, v in r.items() if k not in ("seq", "published_at")}
                | {"id": f"live-{n}"}
                for n, r in enumerate(stored)
            ]
            assert fleet.post("/v1/products/violation-captures/records", json=fresh).is_success
        matching = [
            r["id"]
            for r in fresh
            if r["violation_type"] in wanted["violation_type"]
            and r["district"] in wanted["district"]
        ]
        assert matching and len(matching) < len(fresh)
        events = receiver.wait_for(len(matching), timeout=30)
        assert sorted(e["record"]["id"] for e in events) == sorted(matching)
        first = events[0]["record"]
        assert "·" in first["plate"] and {b["kind"] for b in first["photo"]["boxes"]} == {
            "plate",
            "face",
        }
        assert receiver.verified()[0].body["data"]["view"] == "raw"
        page = police.get(
            f"/v1/subscriptions/{pulled['id']}/events", params={"wait": 5, "limit": 1000}
        ).json()
        assert [e["record"]["id"] for e in page["events"]] == matching


def test_the_days_linkage_cross_check_and_figures(served: str, settings: Settings) -> None:
    """README steps 6-8: a plate linked across the captures and the parking reports;
    the registries cross-checked under a grant naming both, finding the planted
    building; the sharing figures as CSV."""
    credentials = json.loads((Path(settings.data_dir) / "demo" / "credentials.json").read_text())
    with (
        _client(served, credentials, "police") as police,
        _client(served, credentials, "market") as market,
        _client(served, credentials, "steward") as steward,
        _client(served, credentials, "auditor") as auditor,
    ):
        reports = police.get(
            "/v1/products/illegal-parking-reports/records",
            params={"purpose": "law_enforcement", "limit": 50},
        ).json()["records"]
        linked = [
            police.post(
                "/v1/linkage",
                json={"kind": "plate", "value": r["plate"], "purpose": "law_enforcement"},
            ).json()
            for r in reports
        ]
        both = [body for body in linked if all(part["records"] for part in body["parts"])]
        assert both, "some reported plate was also caught by the fleet"
        assert {part["product"] for part in both[0]["parts"]} == {
            "violation-captures",
            "illegal-parking-reports",
        }

        check = {
            "left": "business-registrations",
            "right": "residential-addresses",
            "purpose": "registry_reconciliation",
            "count_by": {"product": "residential-addresses", "field": "building"},
        }
        assert market.post("/v1/cross-checks", json=check).status_code == 403
        asked = market.post(
            "/v1/access-requests",
            json={
                "product": "business-registrations",
                "partner": "residential-addresses",
                "purpose": "registry_reconciliation",
                "days": 14,
                "justification": "Find homes registered as company addresses",
            },
        ).json()
        approved = steward.post(
            f"/v1/access-requests/{asked['id']}/approve", json={"reason": "matches only"}
        )
        assert approved.status_code == 200, approved.text
        found = market.post("/v1/cross-checks", json=check).json()
        assert found["counts"] == {
            "left_records": 400,
            "right_records": 1200,
            "matched_keys": 80,
            "left_matched": 80,
            "right_matched": 80,
        }
        assert next(iter(found["counted_by"]["counts"].items())) == (
            "Yunxi Garden Building 3",
            68,
        )

        figures = auditor.get("/v1/metrics/sharing", params={"format": "csv"})
        assert figures.headers["content-type"].startswith("text/csv")
        rows = {line.split(",")[2] for line in figures.text.splitlines()[1:] if line}
        assert {"business-registrations", "residential-addresses"} <= rows


def test_demo_is_idempotent(settings: Settings) -> None:
    first = json.loads(run_exchange(settings, "demo").stdout)
    second = json.loads(run_exchange(settings, "demo").stdout)
    assert set(first["principals_created"]) == KEYS
    assert first["records_published"]["violation-captures"] >= 1000
    assert second["principals_created"] == []
    assert set(second["records_published"].values()) == {0}


def test_the_fleet_simulator_feeds_the_police_through_the_connectors(
    served: str, settings: Settings, tmp_path: Path
) -> None:
    """The README's connector steps: with the demo's profiles, the police subscribe
    with `exchange subscribe`, the fleet drives with `exchange simulate`, and
    `exchange pull` stores what matches, exactly once across two runs."""
    profiles = Path(settings.data_dir) / "demo" / "profiles.toml"
    assert profiles.stat().st_mode & 0o077 == 0
    env = {"EXCHANGE_PROFILES": str(profiles)}

    def connector(*args: str) -> subprocess.CompletedProcess:
        return run_exchange(settings, *args, "--url", served, more_env=env)

    wanted = {"equals": {"violation_type": ["red_light", "bus_lane", "speeding"]}}
    made = connector(
        "subscribe",
        "violation-captures",
        "--purpose",
        "law_enforcement",
        "--filter",
        json.dumps(wanted),
        "--profile",
        "police",
    )
    subscription = str(json.loads(made.stdout)["id"])
    out = tmp_path / "police.ndjson"
    simulated = connector(
        "simulate", "--rate", "15", "--duration", "2", "--seed", "11", "--profile", "fleet"
    )
    assert "records published 30" in simulated.stdout, simulated.stdout
    connector("pull", subscription, "--out", str(out), "--once", "--profile", "police")
    connector("pull", subscription, "--out", str(out), "--once", "--profile", "police")
    stored = [json.loads(line) for line in out.read_text().splitlines()]
    types = {line["record"]["violation_type"] for line in stored}
    assert stored and types <= set(wanted["equals"]["violation_type"])
    assert len({line["event"] for line in stored}) == len(stored), "each event once"
    assert all(line["record"]["id"].startswith("sim-11-") for line in stored)
    assert all(line["view"] == "raw" and "·" in line["record"]["plate"] for line in stored)
