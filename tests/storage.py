"""The test's database, reached directly — as an operator, or an attacker, would."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine

from exchange.settings import Settings


@contextmanager
def database(settings: Settings) -> Iterator[Connection]:
    """A connection of our own to the test's database, committed on leaving."""
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()
