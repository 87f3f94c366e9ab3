"""A real exchange for end-to-end tests: `exchange demo`, then `exchange serve`
in its own process (uvicorn), on a free port of the test's own; and a real
browser (headless Chromium) for the console."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from exchange.settings import Settings


def run_exchange(
    settings: Settings, *args: str, more_env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess:
    env = os.environ | {
        "EXCHANGE_DATABASE_URL": settings.resolved_database_url,
        "EXCHANGE_DATA_DIR": str(settings.data_dir),
        **(more_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        **kwargs,
    )


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    run_exchange(settings, "demo")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "EXCHANGE_DATABASE_URL": settings.resolved_database_url,
        "EXCHANGE_DATA_DIR": str(settings.data_dir),
        "EXCHANGE_PORT": str(port),
        "EXCHANGE_WEBHOOK_ALLOW_PRIVATE": "true",  # the test's receiver is on loopback
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "exchange", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


CHROMIUM = os.environ.get("EXCHANGE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("EXCHANGE_SCREENSHOTS", "test-artifacts/console"))


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (`make browser` installs it), driven by Playwright; never
    a browser Playwright downloads."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: run `make browser` (Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Console:
    """The demo's parties in the console of a served exchange, each in its own
    browser context (its own cookies), as separate people would be."""

    def __init__(self, chromium: Browser, base: str, credentials: dict[str, dict[str, str]]):
        self.chromium, self.base, self.credentials = chromium, base, credentials
        self.contexts: list[BrowserContext] = []

    def sign_in(self, key: str, *, width: int = 1280) -> Page:
        context = self.chromium.new_context(
            base_url=self.base, viewport={"width": width, "height": 900}
        )
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.goto("/console/sign-in")
        page.get_by_label("Client id").fill(self.credentials[key]["client_id"])
        page.get_by_label("Client secret").fill(self.credentials[key]["client_secret"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/console/**")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def screenshot(page: Page, name: str) -> None:
    """A full-page picture of what the party sees, kept as a test artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.fixture
def console(chromium: Browser, served: str, settings: Settings) -> Iterator[Console]:
    credentials = json.loads((settings.data_dir / "demo" / "credentials.json").read_text())
    parties = Console(chromium, served, credentials)
    yield parties
    parties.close()
