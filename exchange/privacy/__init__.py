"""Views: how each field of a record reaches a consumer."""
