"""Feeds tests: webhooks may go to the loopback receivers the tests start, and
retries come quickly. A module or test changes some settings with
`with_settings(...)` (an indirect parametrization of `settings`)."""

from pathlib import Path
from typing import Any

import pytest

from exchange.settings import Settings

FEED_SETTINGS: dict[str, Any] = {
    "webhook_allow_private": True,
    "delivery_poll_seconds": 0.05,
    "delivery_retry_base_seconds": 0.05,
    "delivery_retry_max_seconds": 0.2,
    "delivery_timeout_seconds": 2,
    "delivery_max_attempts": 4,
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    changes: dict[str, Any] = getattr(request, "param", {})
    return Settings(
        database_url=database_url, data_dir=tmp_path / "data", **(FEED_SETTINGS | changes)
    )


def with_settings(**changes: Any) -> pytest.MarkDecorator:
    label = ",".join(f"{name}={value}" for name, value in changes.items())
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=[label])
