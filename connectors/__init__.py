"""Join the exchange without hand-written HTTP: an SDK and ready connectors.

`ExchangeClient` / `AsyncExchangeClient` cover the whole API (see `connectors.routes`);
`connectors.errors` is the exception tree of its problem responses. The connector
commands (`exchange publish`, `receive`, `pull`, `simulate`, `product infer`) are
built on them. Nothing here imports the exchange itself: only its HTTP API.
"""

from connectors.calls import Retries
from connectors.client import AsyncExchangeClient, ExchangeClient
from connectors.config import ConfigError, Connection, resolve
from connectors.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Denied,
    ExchangeError,
    FieldProblem,
    Gone,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    UnexpectedAnswer,
    ValidationFailed,
)

__all__ = [
    "AsyncExchangeClient",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Connection",
    "ConnectionFailed",
    "Denied",
    "ExchangeClient",
    "ExchangeError",
    "FieldProblem",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Retries",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "UnexpectedAnswer",
    "ValidationFailed",
    "resolve",
]
