"""Where a connector finds the exchange and its credentials, like other cloud CLIs.

The client id and secret come as a pair, from the first source that has either:

1. the command's options, `--client-id` and `--client-secret`;
2. a profile named with `--profile NAME` or `EXCHANGE_PROFILE`;
3. the environment, `EXCHANGE_CLIENT_ID` and `EXCHANGE_CLIENT_SECRET`;
4. the `default` profile.

The URL is `--url`, else the one of that same source (`EXCHANGE_URL` for the
environment; for options, `EXCHANGE_URL` or the profile's). So a secret is never
sent to an exchange that another source named: `--profile police` means the
police profile's exchange and credentials, whatever the environment holds. A
source with only half of the pair is an error, not completed from elsewhere.

The profile file is `EXCHANGE_PROFILES` or `~/.config/exchange/profiles.toml`:

    [default]
    url = "https://exchange.example.gov.cn"
    client_id = "cli_..."
    client_secret = "..."

A profile file holding any secret must be readable by its owner only (mode
0600), as SSH insists for its keys; otherwise it is refused rather than trusted.
"""

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from connectors.client import ExchangeClient

DEFAULT_PROFILES = Path("~/.config/exchange/profiles.toml")


class ConfigError(Exception):
    """The connector cannot tell which exchange to talk to, or as whom."""


@dataclass(frozen=True)
class Connection:
    url: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"Connection(url={self.url!r}, client_id={self.client_id!r})"


def _profiles_path() -> Path:
    return Path(os.environ.get("EXCHANGE_PROFILES") or DEFAULT_PROFILES).expanduser()


def _profile(name: str | None) -> dict[str, str]:
    """The named profile (an error if it is missing), or the default one (if any)."""
    path = _profiles_path()
    if not path.is_file():
        if name:
            raise ConfigError(f"profile {name!r} asked for, but there is no {path}")
        return {}
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    secret = any(isinstance(p, dict) and "client_secret" in p for p in profiles.values())
    if secret and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} holds secrets but others can read it: chmod 600 {path}")
    profile = profiles.get(name or "default")
    if profile is None:
        if name:
            raise ConfigError(f"{path} has no profile [{name}]")
        return {}
    if not isinstance(profile, dict):
        raise ConfigError(f"{path}: [{name or 'default'}] is not a table")
    return {key: str(value) for key, value in profile.items()}


def _environment(key: str) -> str | None:
    return os.environ.get(f"EXCHANGE_{key.upper()}") or None


def resolve(
    url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    profile: str | None = None,
) -> Connection:
    """The connection, by the rules of this module's docstring."""
    named = profile or _environment("profile")
    found: Mapping[str, str | None]
    if client_id or client_secret:
        source = "the options"
        where = url or _environment("url") or _profile(named).get("url")
        found = {"url": where, "client_id": client_id, "client_secret": client_secret}
    elif named:
        source, found = f"profile [{named}]", _profile(named)
    elif _environment("client_id") or _environment("client_secret"):
        keys = ("url", "client_id", "client_secret")
        source, found = "the environment", {key: _environment(key) for key in keys}
    else:
        source, found = "profile [default]", _profile(None)
    settings = {
        "url": url or found.get("url"),
        "client_id": found.get("client_id"),
        "client_secret": found.get("client_secret"),
    }
    missing = [key for key, value in settings.items() if not value]
    if missing:
        lacking = (
            f"no {' or '.join(missing)} in {source}" if any(found.values()) else "no credentials"
        )
        raise ConfigError(
            f"{lacking}: pass --url, --client-id and "
            "--client-secret, set EXCHANGE_URL, EXCHANGE_CLIENT_ID and "
            f"EXCHANGE_CLIENT_SECRET, or name a profile of {_profiles_path()}"
        )
    return Connection(
        str(settings["url"]), str(settings["client_id"]), str(settings["client_secret"])
    )


UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="The exchange, e.g. http://127.0.0.1:8000 [EXCHANGE_URL]"),
]
ClientIdOption = Annotated[
    str | None, typer.Option("--client-id", help="Your principal's client id [EXCHANGE_CLIENT_ID]")
]
ClientSecretOption = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        help="Its secret; prefer the environment variable [EXCHANGE_CLIENT_SECRET]",
        show_default=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", help="A profile of ~/.config/exchange/profiles.toml [EXCHANGE_PROFILE]"
    ),
]


def fail(message: str, status: int = 1) -> NoReturn:
    """End a connector command with a message instead of a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def client_from(
    url: str | None, client_id: str | None, client_secret: str | None, profile: str | None
) -> ExchangeClient:
    """The SDK client a connector command uses; a clear message and exit 2 if unset."""
    try:
        connection = resolve(url, client_id, client_secret, profile)
    except ConfigError as error:
        fail(str(error), 2)
    return ExchangeClient(connection.url, connection.client_id, connection.client_secret)
