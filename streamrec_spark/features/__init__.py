"""Engagement features with declared schemas checked at the feature function's boundary."""
