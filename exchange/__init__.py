"""The broker service: HTTP API, identity, catalog, records, views, and the CLI.

This is the only package that imports FastAPI. It depends on `policies` (the one
access decision) and `audit` (the tamper-evident log); nothing imports it.
"""
