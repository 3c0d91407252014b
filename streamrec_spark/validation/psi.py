"""Population stability index and the bins it is computed on. Pure Python, no Spark."""

from __future__ import annotations

import math
from collections.abc import Sequence


def psi(expected: Sequence[int], actual: Sequence[int], epsilon: float) -> float:
    """Return PSI = sum over bins of (a - e) * ln(a / e), a and e being the bins' shares.

    ``expected`` and ``actual`` are raw counts over the same bins. A share of zero is replaced
    by ``epsilon`` so that an empty bin on either side gives a large but finite term. Raises
    ValueError when the bins differ in number or either side has no rows, because a PSI
    against nothing is undefined and must not read as "no drift".
    """
    if len(expected) != len(actual):
        raise ValueError(f"bins differ: {len(expected)} expected, {len(actual)} actual")
    expected_total = sum(expected)
    actual_total = sum(actual)
    if expected_total <= 0 or actual_total <= 0:
        raise ValueError("PSI needs at least one row on each side")
    total = 0.0
    for expected_count, actual_count in zip(expected, actual):
        e = max(expected_count / expected_total, epsilon)
        a = max(actual_count / actual_total, epsilon)
        total += (a - e) * math.log(a / e)
    return total


def quantile_cuts(grid_counts: Sequence[int], quantile_bins: int) -> list[int]:
    """Choose grid edges that split the reference into about ``quantile_bins`` equal shares.

    Returns the indices of the inner grid edges to cut at (edge ``i`` is the lower edge of
    grid bin ``i``), strictly increasing and without repeats, so the coarse bins are
    [-inf, e_c1), [e_c1, e_c2), ..., [e_ck, +inf). Each cut is the first edge at which the
    reference's cumulative share reaches j / quantile_bins, so a heavy grid bin can swallow
    several quantiles and yield fewer coarse bins.
    """
    total = sum(grid_counts)
    if total <= 0:
        raise ValueError("cannot place quantile bins on an empty reference")
    cuts: list[int] = []
    cumulative = 0
    target_index = 1
    for index, count in enumerate(grid_counts[:-1]):
        cumulative += count
        # Cut after grid bin ``index`` once the share reaches the next quantile; integer
        # arithmetic keeps the comparison exact.
        reached = False
        while target_index < quantile_bins and cumulative * quantile_bins >= target_index * total:
            target_index += 1
            reached = True
        if reached and cumulative < total:
            cuts.append(index + 1)
    return cuts


def coarsen(grid_counts: Sequence[int], cuts: Sequence[int]) -> list[int]:
    """Sum grid bins into the coarse bins delimited by ``cuts`` (indices from quantile_cuts)."""
    bounds = [0, *cuts, len(grid_counts)]
    return [sum(grid_counts[start:stop]) for start, stop in zip(bounds, bounds[1:])]
