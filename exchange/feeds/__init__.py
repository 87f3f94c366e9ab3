"""Feeds: subscriptions to a product's new records, delivered by signed webhooks or pulled."""
