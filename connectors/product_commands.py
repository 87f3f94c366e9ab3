"""`exchange product infer` and `exchange product register`: from a publisher's
file to a registered product, with a reviewable JSON definition in between.

    exchange product infer stops.csv --slug traffic-stops --out stops.json
    (edit stops.json: types, sensitivities, tier, purposes)
    exchange product register stops.json

Both exit 0 on success and 1 with a message naming the file (and, for the
exchange's refusals, each field it refused) on failure; 2 for a missing
connection setting.
"""

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.config import (
    ClientIdOption,
    ClientSecretOption,
    ProfileOption,
    UrlOption,
    client_from,
    fail,
)
from connectors.errors import ExchangeError
from connectors.inference import inference
from connectors.tabular import SourceError

_FIELD_AT = re.compile(r"^fields\.(\d+)\b")


def infer_command(
    file: Annotated[Path, typer.Argument(help="A .csv, .ndjson, .jsonl or .json file of records")],
    slug: Annotated[str, typer.Option("--slug", help="The product's slug, e.g. traffic-stops")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the definition here, not to standard output"),
    ] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="Read only the first N rows")
    ] = None,
) -> None:
    """Guess a product definition from a file: print it as JSON to review and register.

    What the guess noticed (dropped empty columns, values that do not fit a
    column's type, a column fit to be the record id) is printed to standard error.
    """
    try:
        result = inference(file, slug, sample=sample)
    except (SourceError, ValueError) as error:
        fail(str(error))
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    text = json.dumps(result.definition, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"{out}: {error.strerror or error}")
    typer.echo(f"wrote {out}", err=True)


def register_command(
    file: Annotated[Path, typer.Argument(help="The product definition, a JSON object")],
    url: UrlOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    profile: ProfileOption = None,
) -> None:
    """Register the product a JSON definition describes (as `product infer` writes it)."""
    definition = _definition(file)
    with client_from(url, client_id, client_secret, profile) as client:
        try:
            product = client.register_product(definition)
        except ExchangeError as error:
            typer.echo(f"error: {file}: {error}", err=True)
            for problem in error.errors:
                where = _where(problem.field, definition)
                typer.echo(f"  {where + ': ' if where else ''}{problem.reason}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"registered {product.slug} version {product.version}")


def _definition(file: Path) -> dict[str, Any]:
    try:
        definition = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"{file}: {error.strerror or error}")
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text")
    except json.JSONDecodeError as error:
        fail(f"{file}:{error.lineno}:{error.colno}: not JSON: {error.msg}")
    if not isinstance(definition, dict):
        fail(f"{file}: expected a JSON object (a product definition)")
    return definition


def _where(field: str | None, definition: dict[str, Any]) -> str | None:
    """`fields.3.type` with the field's name, `fields.3 (plate_id).type`, when it has one."""
    if field is None or not (match := _FIELD_AT.match(field)):
        return field
    fields = definition.get("fields")
    index = int(match[1])
    if not isinstance(fields, list) or index >= len(fields) or not isinstance(fields[index], dict):
        return field
    name = fields[index].get("name")
    return f"{match[0]} ({name}){field[match.end() :]}" if isinstance(name, str) else field
