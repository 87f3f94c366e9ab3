"""Data products: their schema, tier, purposes and versions; the catalog search."""
