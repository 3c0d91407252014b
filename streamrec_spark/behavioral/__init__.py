"""Behavioral tests of recommenders in the style of CheckList: MFT, INV and DIR."""
