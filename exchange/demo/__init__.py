"""The demo of a day on the exchange."""
