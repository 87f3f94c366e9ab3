"""The console in a real browser (headless Chromium, driven by Playwright) against a
served demo exchange: what a steward, a subscriber, an auditor and a publisher do
there, with a screenshot of each main page (see SCREENSHOTS)."""

import re

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, screenshot

COMPANIES_READ_OPEN = (
    "p, kind:enterprise+role:subscriber, tier:open, read, @declared, protected, allow"
)


def _api(console: Console, key: str) -> httpx.Client:
    party = console.credentials[key]
    token = httpx.post(
        f"{console.base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": party["client_id"],
            "client_secret": party["client_secret"],
        },
    ).json()["access_token"]
    return httpx.Client(base_url=console.base, headers={"Authorization": f"Bearer {token}"})


def test_a_steward_dry_runs_a_policy_change_sees_the_flips_and_applies_it(console: Console):
    steward = console.sign_in("steward")
    steward.goto("/console/steward/policy")
    expect(steward.locator("#policy-version")).to_have_text("1")
    editor = steward.locator("textarea[name=lines]")
    lines = editor.input_value().splitlines()
    assert COMPANIES_READ_OPEN in lines
    screenshot(steward, "steward-policy")

    editor.fill("\n".join(line for line in lines if line != COMPANIES_READ_OPEN))
    steward.locator("#dry-run-button").click()
    losses = steward.locator("#flips tr.flip-loses")
    expect(losses.first).to_be_visible()
    lost = losses.all_inner_texts()
    assert any("lingnan-maps" in row and "violation-captures" in row for row in lost), lost
    assert all("lingnan-maps" in row or "scut-mobility-lab" in row for row in lost), lost
    expect(steward.locator("#removed-lines")).to_contain_text(COMPANIES_READ_OPEN)
    expect(steward.locator("#policy-version")).to_have_text("1")  # nothing applied yet
    screenshot(steward, "steward-dry-run")

    steward.locator("input[name=reason]").fill("Companies read open captures only under a grant")
    steward.locator("#apply-button").click()
    expect(steward.locator("#policy-version")).to_have_text("2")
    with _api(console, "mapco") as mapco:
        refused = mapco.get(
            "/v1/products/violation-captures/records", params={"purpose": "navigation_safety"}
        )
    assert refused.status_code == 403


def test_a_subscriber_asks_for_access_and_the_steward_approves_it(console: Console):
    lab = console.sign_in("lab")
    lab.goto("/console/catalog/pedestrian-near-misses")
    expect(lab.locator("#tier")).to_have_text("regulated")
    screenshot(lab, "catalog-product")
    form = lab.locator("#request-access form")
    form.locator("select[name=purpose]").select_option("research")
    form.locator("input[name=days]").fill("30")
    form.locator("textarea[name=justification]").fill(
        "Where near misses cluster near schools, for the 2026 road-safety study."
    )
    form.get_by_role("button", name="Request access").click()
    notice = lab.locator(".notice")
    expect(notice).to_contain_text("Access request #")
    request_id = re.search(r"#(\d+)", notice.inner_text()).group(1)

    steward = console.sign_in("steward")
    steward.goto("/console/steward/requests")
    card = steward.locator(f"#request-{request_id}")
    expect(card).to_contain_text("scut-mobility-lab")
    expect(card).to_contain_text("research")
    screenshot(steward, "steward-requests")
    approve = card.locator("form", has=steward.get_by_role("button", name="Approve"))
    approve.locator("input[name=reason]").fill("Research use, approved for 30 days")
    approve.get_by_role("button", name="Approve").click()
    expect(steward.locator(".notice")).to_contain_text(f"#{request_id}")

    lab.goto("/console/subscriber/requests")
    expect(lab.locator("body")).to_contain_text("approved")
    screenshot(lab, "subscriber-requests")
    with _api(console, "lab") as api:
        read = api.get(
            "/v1/products/pedestrian-near-misses/records",
            params={"purpose": "research", "limit": 1},
        )
    assert read.status_code == 200, read.text


def test_an_auditor_filters_the_log_and_sees_the_demo_denial(console: Console):
    records = "/v1/products/violation-captures/records"
    with _api(console, "police") as police, _api(console, "mapco") as mapco:
        # the demo day's steps 2 and 3 (README): two allowed reads, then the denied one
        assert police.get(records, params={"purpose": "law_enforcement"}).status_code == 200
        assert mapco.get(records, params={"purpose": "navigation_safety"}).status_code == 200
        denied = mapco.get(records, params={"purpose": "commercial"})
    assert denied.status_code == 403

    auditor = console.sign_in("auditor")
    auditor.goto("/console/audit/entries")
    filters = auditor.locator("#audit-filters")
    filters.locator("input[name=product]").fill("violation-captures")
    filters.locator("select[name=decision]").select_option("deny")
    filters.get_by_role("button", name="Filter").click()
    rows = auditor.locator("#audit-entries tr.entry")
    expect(rows.first).to_be_visible()
    texts = rows.all_inner_texts()
    assert any("lingnan-maps" in row and "commercial" in row for row in texts), texts
    assert all("allow" not in row.split() for row in texts), texts
    screenshot(auditor, "audit-entries")

    auditor.goto("/console/audit/checkpoint")
    screenshot(auditor, "audit-checkpoint")
    auditor.goto("/console/audit/charts")
    expect(auditor.locator("#chart-by-decision")).to_be_visible()
    screenshot(auditor, "audit-charts")


STEWARD_PAGES = [
    "/console/steward",
    "/console/steward/requests",
    "/console/steward/grants",
    "/console/steward/policy",
    "/console/steward/policy/versions",
]


def test_a_subscriber_cannot_reach_steward_pages(console: Console):
    mapco = console.sign_in("mapco")
    expect(mapco.locator("nav[aria-label=sections]")).not_to_contain_text("Steward")
    for path in STEWARD_PAGES:
        response = mapco.goto(path)
        assert response is not None and response.status == 403, path
        expect(mapco.locator("h1")).to_contain_text("403")
    screenshot(mapco, "subscriber-refused")
    editor_posted = mapco.request.post("/console/steward/policy/apply", form={"lines": ""})
    assert editor_posted.status == 403


def _tour(page: Page, name: str, paths: list[str]) -> None:
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        screenshot(page, f"{name}-{path.rsplit('/', 1)[1]}")


def test_each_section_renders_for_its_role_on_a_laptop_and_a_tablet(console: Console):
    _tour(console.sign_in("mapco"), "catalog", ["/console/catalog"])
    _tour(console.sign_in("mapco", width=820), "tablet", ["/console/catalog"])
    _tour(
        console.sign_in("fleet"),
        "publisher",
        ["/console/publisher/products", "/console/publisher/usage", "/console/publisher/images"],
    )
    _tour(console.sign_in("police"), "subscriber", ["/console/subscriber/subscriptions"])
    _tour(console.sign_in("steward"), "steward", ["/console/steward/grants"])
    _tour(console.sign_in("auditor"), "audit", ["/console/audit/subjects"])
