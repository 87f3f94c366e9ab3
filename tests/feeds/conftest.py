"""Feeds tests: webhooks may go to the loopback receivers the tests start, and
retries come quickly."""

from pathlib import Path

import pytest

from exchange.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        webhook_allow_private=True,
        delivery_poll_seconds=0.05,
        delivery_retry_base_seconds=0.05,
        delivery_retry_max_seconds=0.2,
        delivery_timeout_seconds=2,
        delivery_max_attempts=4,
    )
