"""Linking records about one subject across products, and cross-checking two registries."""
