"""Unit tests for the population stability index and the quantile bins it is computed on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamrec_spark.validation.psi import coarsen, psi, quantile_cuts

EPSILON = 1e-4


def _term(expected_share: float, actual_share: float) -> float:
    return (actual_share - expected_share) * math.log(actual_share / expected_share)


@pytest.mark.parametrize(
    "expected, actual, value",
    [
        pytest.param([50, 50], [50, 50], 0.0, id="identical"),
        pytest.param([1, 3], [10, 30], 0.0, id="same-shares-other-totals"),
        # 0.1 * ln(1.2) + 0.1 * ln(1.25)
        pytest.param([50, 50], [60, 40], 0.04054651081081644, id="two-bins"),
        pytest.param([5, 5], [6, 4], 0.04054651081081644, id="two-bins-scaled"),
        pytest.param([60, 40], [50, 50], 0.04054651081081644, id="two-bins-swapped"),
        pytest.param(
            [25, 25, 50], [10, 40, 50], _term(0.25, 0.10) + _term(0.25, 0.40), id="three-bins"
        ),
        pytest.param(
            [90, 10], [10, 90], 2 * 0.8 * math.log(9), id="reversed-shares"
        ),
    ],
)
def test_psi_hand_computed(expected, actual, value):
    assert psi(expected, actual, EPSILON) == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_psi_empty_actual_bin_uses_epsilon():
    value = psi([50, 40, 10], [50, 50, 0], EPSILON)

    expected = _term(0.4, 0.5) + _term(0.1, EPSILON)
    assert value == pytest.approx(expected, rel=1e-12)
    assert math.isfinite(value)


def test_psi_empty_expected_bin_uses_epsilon():
    value = psi([50, 50, 0], [50, 40, 10], EPSILON)

    assert value == pytest.approx(_term(0.5, 0.4) + _term(EPSILON, 0.1), rel=1e-12)


def test_psi_bin_empty_on_both_sides_adds_nothing():
    assert psi([50, 50, 0], [60, 40, 0], EPSILON) == pytest.approx(0.04054651081081644, rel=1e-12)


def test_psi_grows_as_epsilon_shrinks():
    # The empty-bin term is about 0.1 * ln(0.1 / epsilon), so a smaller epsilon gives a larger PSI.
    large = psi([50, 40, 10], [50, 50, 0], 1e-3)
    small = psi([50, 40, 10], [50, 50, 0], 1e-6)

    assert small > large


@pytest.mark.parametrize(
    "expected, actual, match",
    [
        pytest.param([1, 2], [1, 2, 3], r"bins differ: 2 expected, 3 actual", id="bin-count"),
        pytest.param([0, 0], [1, 2], r"at least one row on each side", id="empty-expected"),
        pytest.param([1, 2], [0, 0], r"at least one row on each side", id="empty-actual"),
        pytest.param([], [], r"at least one row on each side", id="no-bins"),
    ],
)
def test_psi_invalid_input(expected, actual, match):
    with pytest.raises(ValueError, match=match):
        psi(expected, actual, EPSILON)


@pytest.mark.parametrize(
    "grid_counts, quantile_bins, cuts",
    [
        pytest.param([10, 10, 10, 10], 4, [1, 2, 3], id="uniform-one-grid-bin-per-quantile"),
        pytest.param([10] * 8, 4, [2, 4, 6], id="uniform-two-grid-bins-per-quantile"),
        pytest.param([10] * 8, 2, [4], id="median-only"),
        pytest.param([10] * 8, 1, [], id="one-quantile-no-cut"),
        # Cumulative 30, 60, 100: the 1/3 share (33.3) is first reached at edge 2.
        pytest.param([30, 30, 40], 3, [2], id="cut-at-first-edge-reaching-share"),
        # The heavy bin swallows the 1/4, 2/4 and 3/4 quantiles: one cut after it.
        pytest.param([5, 80, 5, 10], 4, [2], id="heavy-bin-swallows-quantiles"),
        pytest.param([25, 50, 25], 4, [1, 2], id="heavy-middle-bin"),
        # The first grid bin contains every row, so any cut would leave an empty last bin.
        pytest.param([100, 0, 0, 0], 4, [], id="all-mass-in-first-bin"),
        pytest.param([0, 0, 0, 100], 4, [], id="all-mass-in-last-bin"),
        pytest.param([0, 0, 50, 50], 2, [3], id="leading-empty-bins"),
        pytest.param([50, 50, 0, 0], 2, [1], id="trailing-empty-bins"),
        pytest.param([25, 0, 0, 25, 50], 4, [1, 4], id="empty-bins-inside"),
        pytest.param([1, 1], 10, [1], id="more-quantiles-than-grid-bins"),
    ],
)
def test_quantile_cuts_hand_made_grids(grid_counts, quantile_bins, cuts):
    assert quantile_cuts(grid_counts, quantile_bins) == cuts


@pytest.mark.parametrize("grid_counts", [[], [0], [0, 0, 0]])
def test_quantile_cuts_empty_reference(grid_counts):
    with pytest.raises(ValueError, match=r"cannot place quantile bins on an empty reference"):
        quantile_cuts(grid_counts, 4)


@pytest.mark.parametrize(
    "grid_counts, cuts, coarse",
    [
        pytest.param([1, 2, 3, 4, 5], [2, 4], [3, 7, 5], id="two-cuts"),
        pytest.param([1, 2, 3, 4, 5], [], [15], id="no-cut"),
        pytest.param([1, 2, 3, 4, 5], [1, 2, 3, 4], [1, 2, 3, 4, 5], id="every-edge"),
        pytest.param([0, 0, 7, 0], [3], [7, 0], id="empty-coarse-bin-kept"),
    ],
)
def test_coarsen_hand_made(grid_counts, cuts, coarse):
    assert coarsen(grid_counts, cuts) == coarse


def test_coarsen_current_with_reference_cuts():
    reference = [5, 80, 5, 10]
    current = [40, 40, 10, 10]
    cuts = quantile_cuts(reference, 4)

    assert coarsen(reference, cuts) == [85, 15]
    assert coarsen(current, cuts) == [80, 20]
    assert psi(coarsen(reference, cuts), coarsen(current, cuts), EPSILON) == pytest.approx(
        _term(0.85, 0.80) + _term(0.15, 0.20), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(20))
def test_quantile_cuts_invariants_random_grids(seed):
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(2, 70))
    # Zero-inflated counts with a few heavy bins, as skewed durations produce.
    counts = rng.integers(0, 50, size=bins) * (rng.random(bins) < 0.7)
    counts[rng.integers(0, bins)] += int(rng.integers(0, 2000))
    counts = [int(c) for c in counts]
    if sum(counts) == 0:
        counts[0] = 1
    quantile_bins = int(rng.integers(1, 12))

    cuts = quantile_cuts(counts, quantile_bins)
    coarse = coarsen(counts, cuts)

    assert cuts == sorted(set(cuts))
    assert all(1 <= cut <= bins - 1 for cut in cuts)
    assert len(coarse) <= quantile_bins
    assert sum(coarse) == sum(counts)
    # Every coarse reference bin contains rows, so no PSI term rests on epsilon alone.
    assert all(count > 0 for count in coarse)
    # Each cut sits at the first edge where the cumulative share reached a new quantile.
    total = sum(counts)
    for cut in cuts:
        before = sum(counts[: cut - 1])
        upto = sum(counts[:cut])
        assert math.floor(upto * quantile_bins / total) > math.floor(before * quantile_bins / total)
