"""Offline evaluation of recommenders: ranking metrics per slice, stored in Delta."""
