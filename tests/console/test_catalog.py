"""The catalog pages: what each party may find, what it would get per field and
purpose, and asking for regulated access from the product's page."""

import re

import pytest

from tests.console.conftest import text_of
from tests.products import captures_product


def cells(html: str, table: str = "fields") -> dict[str, list[str]]:
    """A table's body rows by their first cell: the other cells' words."""
    body = html.split(f'id="{table}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        words = [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        found[words[0].split()[0]] = words[1:]
    return found


@pytest.fixture
def products(exchange):
    exchange.register("fleet", captures_product())
    exchange.register("fleet", captures_product("near-misses", tier="regulated"))
    exchange.register("hotline", captures_product("hotline-tickets", tier="government_only"))


def test_each_party_finds_only_the_products_it_may_discover(exchange, browser, products):
    def found(key: str) -> list[str]:
        return re.findall(
            r'href="/console/catalog/([a-z0-9-]+)"', browser(key).get("/console/catalog").text
        )

    assert found("police") == ["violation-captures", "near-misses", "hotline-tickets"]
    assert found("mapco") == ["violation-captures", "near-misses"]
    assert browser("mapco").get("/console/catalog/hotline-tickets").status_code == 404


def test_search_and_tier_filters_narrow_the_catalog(exchange, browser, products):
    police = browser("police")
    by_tier = police.get("/console/catalog?tier=regulated").text
    assert "near-misses" in by_tier and "violation-captures</code>" not in by_tier
    assert "No product" in text_of(police.get("/console/catalog?q=nothing-like-this").text)
    assert police.get("/console/catalog?tier=secret").status_code == 400


def test_a_company_sees_the_protected_view_per_field_and_the_denied_purpose(
    exchange, browser, products
):
    page = browser("mapco").get("/console/catalog/violation-captures").text
    rows = cells(page)
    # type, sensitivity, then the purposes in declared order: law_enforcement,
    # traffic_management, navigation_safety, research
    assert rows["plate"][2] == "—"  # law enforcement: denied to a company
    assert rows["plate"][4] == "pseudonymized"  # navigation safety
    assert rows["location"][4] == "generalized"
    assert rows["photo"][4] == "redacted"
    assert "denied by rule" in text_of(page)


def test_the_police_see_raw_fields_for_law_enforcement(exchange, browser, products):
    rows = cells(browser("police").get("/console/catalog/violation-captures").text)
    assert rows["plate"][2] == "raw"
    assert rows["photo"][2] == "raw"


REQUEST = {"purpose": "research", "days": "30", "justification": "Near-miss hot spots, 2026 study."}


def _requests(exchange) -> list[dict]:
    return exchange.get("steward", "/v1/access-requests").json()["requests"]


def test_a_regulated_product_page_offers_an_access_request_that_reaches_the_steward(
    exchange, browser, products
):
    lab = browser("lab")
    page = lab.get("/console/catalog/near-misses")
    assert 'id="request-access"' in page.text
    done = lab.follow(lab.submit("/console/catalog/near-misses/access-requests", REQUEST))
    (made,) = _requests(exchange)
    assert made["organization"] == "scut-mobility-lab"
    assert made["purpose"] == "research" and made["days"] == 30
    assert made["justification"] == REQUEST["justification"]
    assert f"Access request #{made['id']} sent" in text_of(done.text)
    entries = exchange.get(
        "auditor", "/v1/audit/entries", params={"action": "access_request.create"}
    ).json()["entries"]
    assert [e["entry"]["decision"] for e in entries] == ["allow"]


def test_an_open_product_page_offers_no_access_request(exchange, browser, products):
    assert (
        'id="request-access"' not in browser("lab").get("/console/catalog/violation-captures").text
    )


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"days": "thirty"}, 422, "days"),
        ({"days": ""}, 422, "days"),
        ({"days": "²"}, 422, "days"),
        ({"days": "3.5"}, 422, "days"),
        ({"justification": "too short"}, 422, "justification"),
        ({"days": "100000"}, 422, "days"),
        ({"purpose": "commercial"}, 400, "purpose"),
    ],
)
def test_a_bad_access_request_form_names_the_field_and_writes_nothing(
    exchange, browser, products, change, status, field
):
    lab = browser("lab")
    response = lab.submit("/console/catalog/near-misses/access-requests", REQUEST | change)
    assert response.status_code == status
    assert field in text_of(response.text)
    assert _requests(exchange) == []


def test_a_company_asking_for_law_enforcement_is_refused_and_the_refusal_logged(
    exchange, browser, products
):
    mapco = browser("mapco")
    exchange.register(
        "fleet",
        captures_product("police-only-misses", tier="regulated"),
    )
    response = mapco.submit(
        "/console/catalog/police-only-misses/access-requests",
        REQUEST | {"purpose": "law_enforcement"},
    )
    assert response.status_code == 403
    assert _requests(exchange) == []
    denied = exchange.get(
        "auditor",
        "/v1/audit/entries",
        params={"action": "access_request.create", "decision": "deny"},
    ).json()["entries"]
    assert [e["entry"]["organization"] for e in denied] == ["lingnan-maps"]


def test_asking_for_an_open_product_is_a_conflict_page(exchange, browser, products):
    response = browser("lab").submit("/console/catalog/violation-captures/access-requests", REQUEST)
    assert response.status_code == 409
    assert "not regulated" in text_of(response.text)
