"""The web console at /console: the API's own routes, rendered as pages per role.

Stewards, auditors, publishers and subscribers sign in with their principal's
client id and secret (`session`); `sections` says which sections and tabs the
policy opens to each. Each section's pages call the API's route functions for
their data and their actions, so every decision, view and audit entry is the
API's (`pages`). Nothing here is a second source of truth.
"""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from exchange.console import auditor, catalog, publisher, session, steward, subscriber
from exchange.console.pages import HERE, error_page

__all__ = ["error_page", "mount"]


def mount(app: FastAPI) -> None:
    """Serve the console (its pages and its stylesheet) from the app."""
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for part in (session, catalog, steward, auditor, publisher, subscriber):
        app.include_router(part.router)
