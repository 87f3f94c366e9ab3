"""Signing in and out of the console, the session cookie, and the CSRF check:
each rule tried the way an attacker would."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

from tests.console.conftest import Browser, text_of
from tests.identity.test_tokens import FORGED, Forge
from tests.products import captures_product


def audit(exchange, **filters):
    response = exchange.get("auditor", "/v1/audit/entries", params=filters)
    assert response.status_code == 200, response.text
    return [found["entry"] for found in response.json()["entries"]]


def test_sign_in_sets_a_strict_httponly_session_cookie_for_the_console_only(exchange):
    response = Browser(exchange).sign_in(exchange.parties["steward"], "/console/catalog")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/catalog"
    cookie = next(c for c in response.headers.get_list("set-cookie") if "exchange_console=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert f"max-age={exchange.settings.token_ttl_seconds}" in flags


def test_a_wrong_secret_is_refused_on_the_page_and_audited(exchange):
    party = exchange.parties["steward"]
    wrong = Browser(exchange)
    form = wrong.get("/console/sign-in")
    response = wrong.http.post(
        "/console/sign-in",
        data={
            "csrf": wrong.csrf,
            "client_id": party.client_id,
            "client_secret": party.client_secret + "x",
        },
    )
    assert form.status_code == 200
    assert response.status_code == 401
    assert "unknown client or wrong secret" in text_of(response.text)
    assert party.client_secret not in response.text
    assert "exchange_console=" not in response.headers.get("set-cookie", "")
    refused = audit(exchange, action="token.issue", decision="deny")
    assert [entry["details"].get("client_id") for entry in refused] == [party.client_id]


def test_signing_in_is_audited_like_a_token_request(exchange):
    Browser(exchange).sign_in(exchange.parties["mapco"])
    issued = audit(exchange, action="token.issue", actor=exchange.parties["mapco"].client_id)
    assert [entry["decision"] for entry in issued] == ["allow"]  # mapco never used the API


def test_a_sign_in_form_without_its_csrf_cookie_is_refused(exchange):
    """Login CSRF: another site posting its own credentials into this browser."""
    party = exchange.parties["mapco"]
    fresh = Browser(exchange)
    response = fresh.http.post(
        "/console/sign-in",
        data={"csrf": "0" * 64, "client_id": party.client_id, "client_secret": party.client_secret},
    )
    assert response.status_code == 403
    assert "exchange_console=" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/console", "/console\\@evil", "/v1/audit"]
)
def test_after_signing_in_only_a_console_page_is_a_destination(exchange, target):
    response = Browser(exchange).sign_in(exchange.parties["mapco"], target)
    assert response.status_code == 303
    assert response.headers["location"] == "/console"


def test_without_a_session_a_page_sends_the_browser_to_sign_in_and_back(exchange):
    anonymous = Browser(exchange)
    response = anonymous.get("/console/catalog?q=bus")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in?next=%2Fconsole%2Fcatalog")
    back = anonymous.sign_in(exchange.parties["mapco"], "/console/catalog?q=bus")
    assert back.headers["location"] == "/console/catalog?q=bus"


@pytest.fixture
def forge(exchange) -> Forge:
    (jwk,) = exchange.client.get("/.well-known/jwks.json").json()["keys"]
    pem = Path(exchange.settings.resolved_signing_key_path).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    return Forge(exchange, key, jwk["kid"], jwk["x"])


@pytest.mark.parametrize("make", FORGED.values(), ids=FORGED.keys())
def test_a_forged_or_expired_session_cookie_is_no_session(exchange, forge, make):
    forged = Browser(exchange)
    forged.http.cookies.set("exchange_console", make(forge), path="/console")
    response = forged.get("/console/catalog")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in")


def test_a_bearer_token_does_not_open_the_console(exchange):
    """The console reads only its cookie; the API's header is not a session."""
    response = exchange.get("steward", "/console/catalog", follow_redirects=False)
    assert response.status_code == 303


def test_a_disabled_principal_is_signed_out_at_the_next_page(exchange, browser):
    mapco = browser("mapco")
    with exchange.client.app.state.engine.begin() as connection:
        connection.execute(
            text("UPDATE principal SET active = :no WHERE client_id = :id"),
            {"no": False, "id": exchange.parties["mapco"].client_id},
        )
    response = mapco.get("/console/catalog")
    assert response.status_code == 303
    assert "disabled" in response.headers["location"]


def _access_requests(exchange) -> list:
    return exchange.get("steward", "/v1/access-requests").json()["requests"]


REQUEST = {"purpose": "research", "days": "30", "justification": "Near-miss hot spots, 2026 study."}


@pytest.fixture
def regulated(exchange):
    exchange.register("fleet", captures_product("near-misses", tier="regulated"))
    return "/console/catalog/near-misses/access-requests"


def test_a_form_without_the_session_csrf_token_does_nothing(exchange, browser, regulated):
    lab = browser("lab")
    for token in ["", "0" * 64, browser("mapco").csrf]:
        response = lab.http.post(regulated, data={"csrf": token, **REQUEST})
        assert response.status_code == 403, token
        assert "CSRF" in text_of(response.text)
    assert _access_requests(exchange) == []


def test_a_form_posted_from_another_origin_does_nothing(exchange, browser, regulated):
    lab = browser("lab")
    response = lab.http.post(
        regulated,
        data={"csrf": lab.csrf, **REQUEST},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert _access_requests(exchange) == []


def test_signing_out_ends_the_session_and_needs_the_csrf_token(exchange, browser):
    steward = browser("steward")
    assert steward.http.post("/console/sign-out", data={"csrf": ""}).status_code == 403
    assert steward.get("/console/catalog").status_code == 200
    out = steward.submit("/console/sign-out", {})
    assert out.status_code == 303
    assert steward.get("/console/catalog").status_code == 303


def test_every_console_answer_keeps_out_of_frames_caches_and_foreign_scripts(exchange, browser):
    steward = browser("steward")
    for response in [
        steward.get("/console/catalog"),
        steward.get("/console/catalog/no-such-product"),
        steward.get("/console/no-such-page"),
        Browser(exchange).get("/console/sign-in"),
    ]:
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


def test_an_unknown_console_page_is_an_html_not_found_page(exchange, browser):
    response = browser("mapco").get("/console/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in text_of(response.text)


def test_the_navigation_shows_each_role_its_own_sections(exchange, browser):
    def sections(key: str) -> list[str]:
        page = browser(key).get("/console/catalog").text
        nav = page.split('aria-label="sections"', 1)[1].split("</nav>", 1)[0]
        return [word for word in ["Steward", "Audit", "Publisher", "Subscriber"] if word in nav]

    assert sections("steward") == ["Steward"]
    assert sections("auditor") == ["Audit"]
    assert sections("fleet") == ["Publisher"]
    assert sections("mapco") == ["Subscriber"]


def test_the_sign_in_page_says_why_in_its_own_words_never_the_urls(exchange):
    planted = Browser(exchange).get("/console/sign-in?why=Security+alert:+call+555-0100")
    assert "555-0100" not in planted.text
    ended = Browser(exchange).get("/console/sign-in?why=ended")
    assert "Your session ended" in text_of(ended.text)


def test_an_oversized_form_is_refused_before_it_is_read_whole(exchange):
    response = Browser(exchange).http.post(
        "/console/sign-in",
        content=b"client_id=" + b"x" * 2_100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "Payload too large" in text_of(response.text)
