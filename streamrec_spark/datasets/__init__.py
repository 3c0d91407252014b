"""Click-stream data sources: the KuaiRand converter and the synthetic generator."""

from __future__ import annotations
