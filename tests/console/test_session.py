"""Signing in and out of the console, the session cookie, and the CSRF check."""

from tests.console.conftest import Browser, text_of


def test_sign_in_sets_a_strict_httponly_session_cookie(exchange):
    response = Browser(exchange).sign_in(exchange.parties["steward"], "/console/catalog")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/catalog"
    cookie = next(c for c in response.headers.get_list("set-cookie") if "exchange_console=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "max-age=900" in flags


def test_the_catalog_shows_what_a_company_would_get_per_field(exchange, browser):
    from tests.products import captures_product

    exchange.register("fleet", captures_product())
    page = browser("mapco").get("/console/catalog/violation-captures")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "pseudonymized" in words and "denied" in words
