"""`exchange subscribe`: start a feed, for `exchange pull` or `exchange receive`.

Prints the new subscription as JSON. For a webhook it includes the signing secret,
which the exchange shows only this once: give it to `exchange receive --secret`
(or EXCHANGE_WEBHOOK_SECRET) and keep it nowhere else.
"""

import json
from typing import Annotated, Any

import typer

from connectors.config import (
    ClientIdOption,
    ClientSecretOption,
    ProfileOption,
    UrlOption,
    client_from,
)
from connectors.errors import ExchangeError


def _filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--filter") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter('a JSON object, e.g. {"equals": {...}}', param_hint="--filter")
    return parsed


def subscribe(
    product: Annotated[str, typer.Argument(help="The product's slug, e.g. violation-captures.")],
    purpose: Annotated[str, typer.Option(help="Why you want the data, e.g. law_enforcement.")],
    webhook: Annotated[
        str | None,
        typer.Option(help="Deliver to this https URL (signed); without it, pull the events."),
    ] = None,
    filter: Annotated[
        str | None,
        typer.Option(
            help='Which records, as JSON: {"equals": {"district": ["Tianhe"]}, '
            '"at_least": {"speed_kmh": 80}} (docs/feeds.md).'
        ),
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Only these fields (repeat the option).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Events per delivery at most.")
    ] = None,
    url: UrlOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    profile: ProfileOption = None,
) -> None:
    """Subscribe to a product's new records: pulled (`exchange pull ID`) or sent
    to a webhook (`exchange receive`). Prints the subscription; a webhook's secret
    is in it, shown only now."""
    conditions = _filter(filter)
    with client_from(url, client_id, client_secret, profile) as client:
        try:
            made = client.subscribe(
                product,
                purpose=purpose,
                delivery="webhook" if webhook else "pull",
                url=webhook,
                filter=conditions,
                fields=field or None,
                batch_size=batch_size,
            )
        except ExchangeError as error:
            typer.echo(f"error: {error}", err=True)
            hint = error.extensions.get("hint")
            if hint:
                typer.echo(f"hint: {hint}", err=True)
            raise typer.Exit(1) from None
    typer.echo(json.dumps(made.model_dump(mode="json"), indent=2, ensure_ascii=False))
    if made.secret:
        typer.echo("the secret is shown only now: give it to `exchange receive --secret`", err=True)
