"""Where connectors find the exchange: options, then environment, then a profile."""

from pathlib import Path

import pytest

from connectors import ConfigError, resolve

SECRET = "s3cret-value"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("URL", "CLIENT_ID", "CLIENT_SECRET", "PROFILE"):
        monkeypatch.delenv(f"EXCHANGE_{name}", raising=False)
    profiles = tmp_path / "profiles.toml"
    monkeypatch.setenv("EXCHANGE_PROFILES", str(profiles))
    return profiles


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)


PROFILES = f"""
[default]
url = "https://exchange.example"
client_id = "cli_default"
client_secret = "{SECRET}"

[police]
url = "https://police.example"
client_id = "cli_police"
client_secret = "{SECRET}-police"
"""


def test_options_win_over_the_environment_and_the_environment_over_profiles(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(clean, PROFILES)
    assert resolve().client_id == "cli_default"
    monkeypatch.setenv("EXCHANGE_CLIENT_ID", "cli_env")
    found = resolve()
    assert (found.url, found.client_id) == ("https://exchange.example", "cli_env")
    assert resolve(client_id="cli_option").client_id == "cli_option"


def test_a_named_profile(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(clean, PROFILES)
    assert resolve(profile="police").url == "https://police.example"
    monkeypatch.setenv("EXCHANGE_PROFILE", "police")
    assert resolve().client_id == "cli_police"
    with pytest.raises(ConfigError, match=r"no profile \[fire\]"):
        resolve(profile="fire")


def test_a_profile_file_others_can_read_is_refused(clean: Path) -> None:
    _write(clean, PROFILES, mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600") as refused:
        resolve()
    assert SECRET not in str(refused.value)


def test_missing_settings_are_named(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_URL", "http://127.0.0.1:8000")
    with pytest.raises(ConfigError, match="EXCHANGE_CLIENT_ID, EXCHANGE_CLIENT_SECRET"):
        resolve()
    _write(clean, "not = [toml")
    with pytest.raises(ConfigError, match=str(clean)):
        resolve(profile="default")


def test_the_secret_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    found = resolve("http://x", "cli_x", SECRET)
    assert SECRET not in repr(found) and SECRET not in str(found)
