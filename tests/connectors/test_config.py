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


def test_credentials_come_as_a_pair_from_one_source(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(clean, PROFILES)
    assert resolve().client_id == "cli_default"
    monkeypatch.setenv("EXCHANGE_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("EXCHANGE_CLIENT_ID", "cli_env")
    with pytest.raises(ConfigError, match="no client_secret in the environment"):
        resolve()
    monkeypatch.setenv("EXCHANGE_CLIENT_SECRET", "env-secret")
    found = resolve()
    assert (found.url, found.client_id) == ("http://127.0.0.1:8000", "cli_env")
    given = resolve(client_id="cli_option", client_secret="option-secret")
    assert (given.url, given.client_id) == ("http://127.0.0.1:8000", "cli_option")
    assert resolve(url="https://other.example").url == "https://other.example"


def test_a_named_profile_wins_over_the_environment(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the fleet's secret in the environment would go to the police's exchange."""
    _write(clean, PROFILES)
    monkeypatch.setenv("EXCHANGE_URL", "https://fleet.example")
    monkeypatch.setenv("EXCHANGE_CLIENT_ID", "cli_fleet")
    monkeypatch.setenv("EXCHANGE_CLIENT_SECRET", "fleet-secret")
    police = resolve(profile="police")
    assert (police.url, police.client_id) == ("https://police.example", "cli_police")
    assert police.client_secret == f"{SECRET}-police"


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
    with pytest.raises(ConfigError, match="no credentials: pass --url"):
        resolve()
    _write(clean, '[default]\nurl = "http://x"\n')
    with pytest.raises(ConfigError, match=r"no client_id or client_secret in profile \[default\]"):
        resolve()
    _write(clean, "not = [toml")
    with pytest.raises(ConfigError, match=str(clean)):
        resolve(profile="default")


def test_the_secret_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    found = resolve("http://x", "cli_x", SECRET)
    assert SECRET not in repr(found) and SECRET not in str(found)


def test_a_connection_given_in_full_never_reads_the_profile_file(clean: Path) -> None:
    _write(clean, PROFILES, mode=0o644)  # refused whenever it is read
    found = resolve("https://given.example", "cli_given", "given-secret")
    assert (found.url, found.client_id) == ("https://given.example", "cli_given")
