"""The auditor's pages (being written)."""

from fastapi import APIRouter

from exchange.console.pages import ConsoleRoute

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, tags=["console"])
