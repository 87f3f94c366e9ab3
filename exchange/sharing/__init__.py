"""Sharing performance figures: how each organisation and product handles shared data."""
