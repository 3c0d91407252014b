"""Serving probe: single-user latency and size on disk of a saved model, stored in Delta."""
