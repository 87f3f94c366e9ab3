"""Where a connector finds the exchange and its credentials, like other cloud CLIs.

Each of the URL, client id and client secret is taken from the first of:

1. the command's option (`--url`, `--client-id`, `--client-secret`);
2. the environment (`EXCHANGE_URL`, `EXCHANGE_CLIENT_ID`, `EXCHANGE_CLIENT_SECRET`);
3. a profile in the profile file: `--profile NAME` or `EXCHANGE_PROFILE`, else
   `default`. The file is `EXCHANGE_PROFILES` or `~/.config/exchange/profiles.toml`:

       [default]
       url = "https://exchange.example.gov.cn"
       client_id = "cli_..."
       client_secret = "..."

A profile file holding a secret must be readable by its owner only (mode 0600),
as SSH insists for its keys; otherwise it is refused rather than trusted.
"""

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

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


def _profile(name: str | None) -> dict[str, str]:
    path = Path(os.environ.get("EXCHANGE_PROFILES") or DEFAULT_PROFILES).expanduser()
    wanted = name or os.environ.get("EXCHANGE_PROFILE")
    if not path.is_file():
        if wanted:
            raise ConfigError(f"profile {wanted!r} asked for, but there is no {path}")
        return {}
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    profile = profiles.get(wanted or "default")
    if profile is None:
        if wanted:
            raise ConfigError(f"{path} has no profile [{wanted}]")
        return {}
    if not isinstance(profile, dict):
        raise ConfigError(f"{path}: [{wanted or 'default'}] is not a table")
    if "client_secret" in profile and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} holds a secret but others can read it: chmod 600 {path}")
    return {key: str(value) for key, value in profile.items()}


def resolve(
    url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    profile: str | None = None,
) -> Connection:
    """The connection from options, then the environment, then the profile file."""
    given = {"url": url, "client_id": client_id, "client_secret": client_secret}
    for key in given:
        given[key] = given[key] or os.environ.get(f"EXCHANGE_{key.upper()}")
    if profile or not all(given.values()):
        stored = _profile(profile)
        for key in given:
            given[key] = given[key] or stored.get(key)
    missing = [key for key, value in given.items() if not value]
    if missing:
        names = ", ".join(f"EXCHANGE_{key.upper()}" for key in missing)
        raise ConfigError(f"no {', '.join(missing)}: set {names}, pass the options, or a profile")
    return Connection(str(given["url"]), str(given["client_id"]), str(given["client_secret"]))


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


def client_from(
    url: str | None, client_id: str | None, client_secret: str | None, profile: str | None
) -> ExchangeClient:
    """The SDK client a connector command uses; a clear message and exit 2 if unset."""
    try:
        connection = resolve(url, client_id, client_secret, profile)
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    return ExchangeClient(connection.url, connection.client_id, connection.client_secret)
