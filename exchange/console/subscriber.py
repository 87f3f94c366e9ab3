"""The subscriber's pages (being written)."""

from fastapi import APIRouter

from exchange.console.pages import ConsoleRoute

router = APIRouter(prefix="/console/subscriber", route_class=ConsoleRoute, tags=["console"])
