"""Organisations, their principals, and how principals prove who they are."""
