"""`python -m exchange` is the `exchange` command."""

from exchange.cli import app

app(prog_name="exchange")
