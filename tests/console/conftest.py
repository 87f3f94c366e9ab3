"""The console over HTTP, as a browser without JavaScript would use it: sign in
with a party's client id and secret, keep the session cookie, post forms with
the CSRF token the page carries."""

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Exchange, Party

CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def text_of(html: str) -> str:
    """A page's words, tags stripped and spaces folded: what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


class Browser:
    """One party's console session: its own cookie jar, and the CSRF token of its
    last page (as the page's forms would carry it)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.http = TestClient(exchange.client.app, follow_redirects=False)
        self.csrf = ""

    def sign_in(self, party: Party, next_url: str = "/console") -> httpx.Response:
        form = self.get("/console/sign-in")
        return self.http.post(
            "/console/sign-in",
            data={
                "csrf": self._csrf_of(form),
                "next": next_url,
                "client_id": party.client_id,
                "client_secret": party.client_secret,
            },
        )

    def _csrf_of(self, response: httpx.Response) -> str:
        found = CSRF.search(response.text)
        return found.group(1) if found else ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.get(path, **kwargs)
        self.csrf = self._csrf_of(response) or self.csrf
        return response

    def submit(self, path: str, fields: dict[str, Any] | list[tuple[str, str]]) -> httpx.Response:
        """Post a form as the page would: with this session's CSRF token."""
        if not self.csrf:
            self.get("/console/catalog")
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        return self.http.post(
            path,
            content=urlencode([("csrf", self.csrf), *pairs]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def follow(self, response: httpx.Response) -> httpx.Response:
        """The page a 303 after a form leads to."""
        assert response.status_code == 303, (response.status_code, text_of(response.text)[:500])
        return self.get(response.headers["location"])


@pytest.fixture
def browser(exchange: Exchange):
    """`browser("steward")`: a signed-in console session for that party."""

    def signed_in(key: str) -> Browser:
        session = Browser(exchange)
        response = session.sign_in(exchange.parties[key])
        assert response.status_code == 303, text_of(response.text)[:500]
        session.get("/console/catalog")
        return session

    return signed_in
