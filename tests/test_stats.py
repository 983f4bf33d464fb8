"""edge.stats against scipy: the clinic side computes the same numbers without it."""

from __future__ import annotations

import numpy as np
import pytest

from edge import stats as es

# scipy is the reference here; the clinic install has none (edge.stats exists because of that).
stats = pytest.importorskip("scipy.stats", reason="scipy is the reference: pip install -e '.[test]'")


@pytest.mark.parametrize("df", [3, 10, 57, 280])
def test_t_distribution_matches_scipy(df):
    for t in (-4.0, -1.3, 0.0, 0.7, 2.5):
        assert es.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-9)
    for p in (0.025, 0.5, 0.9, 0.975):
        assert es.t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), abs=1e-6)


def test_agreement_statistics_match_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(6, 1, 80)
    y = 0.8 * x + rng.normal(0.5, 0.4, 80)
    assert es.pearson(x, y)["r"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    lr = stats.linregress(x, y)
    assert es.linregress(x, y) == pytest.approx({"slope": lr.slope, "intercept": lr.intercept}, abs=1e-10)
    pos = y < 5.4
    u = stats.mannwhitneyu(-y[pos], -y[~pos]).statistic / (pos.sum() * (~pos).sum())
    assert es.roc_auc(-y, pos) == pytest.approx(u, abs=1e-12)
    # Lin's CCC by its definition; identical series agree perfectly, a shifted one less
    assert es.lin_ccc(x, x) == pytest.approx(1.0)
    assert es.lin_ccc(x, x + 2) < 0.4
    assert es.icc_a1(x, x) == pytest.approx(1.0)
    assert es.icc_a1(x, x + 1) < es.icc_a1(x, x + 0.1)
    assert es.roc_auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5


def test_known_answers_by_hand():
    x, y = np.array([1.0, 2, 3, 4]), np.array([2.0, 3, 4, 5])
    assert es.icc_a1(x, y) == pytest.approx(10 / 13)  # MSR 10/3, MSC 2, MSE 0
    assert es.lin_ccc([1.0, 2, 3], [2.0, 3, 4]) == pytest.approx(4 / 7)
    ba = es.bland_altman(np.array([1.0, 2, 3]), np.array([0.0, 2, 2]))
    assert ba["bias"] == pytest.approx(2 / 3) and ba["sd"] == pytest.approx(np.sqrt(1 / 3))
    assert ba["loa"] == pytest.approx([2 / 3 - 1.96 * np.sqrt(1 / 3), 2 / 3 + 1.96 * np.sqrt(1 / 3)])
    assert es.linregress(x, 2 * x + 1) == pytest.approx({"slope": 2.0, "intercept": 1.0})
    # ties count one half: pos {1, 3}, neg {1, 2}: pairs (1>1: .5, 1>2: 0, 3>1: 1, 3>2: 1) -> 2.5 / 4
    assert es.roc_auc(np.array([1.0, 1.0, 3.0, 2.0]), np.array([True, False, True, False])) == pytest.approx(0.625)
    assert es.roc_auc(np.array([1.0, 2.0]), np.array([True, True])) is None
    assert es.roc_auc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([True, True, False, False])) == 1.0


def test_pearson_interval_is_fishers():
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    ours = es.pearson(x, y)
    ref = stats.pearsonr(x, y).confidence_interval(0.95)
    assert ours["n"] == 40
    assert ours["ci95"] == pytest.approx([ref.low, ref.high], abs=2e-3)  # 1.96 vs the exact quantile


def test_incomplete_beta_edges_and_symmetry():
    assert es.betainc(2.0, 3.0, 0.0) == 0.0 and es.betainc(2.0, 3.0, 1.0) == 1.0
    for a, b, v in ((2.0, 3.0, 0.3), (0.5, 5.0, 0.9), (7.0, 0.5, 0.2)):
        assert es.betainc(a, b, v) == pytest.approx(1 - es.betainc(b, a, 1 - v), abs=1e-12)
        assert es.betainc(a, b, v) == pytest.approx(stats.beta.cdf(v, a, b), abs=1e-10)
    assert es.t_cdf(0.0, 5) == pytest.approx(0.5)


def test_icc_against_a_loop_anova():
    """ICC(A,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n), sums of squares by loops."""
    x = [4.0, 6.5, 5.0, 7.5, 3.0, 6.0]
    y = [5.0, 6.0, 6.5, 8.0, 3.5, 7.5]
    n, k = len(x), 2
    rows = list(zip(x, y))
    grand = sum(x + y) / (n * k)
    row_m = [sum(r) / k for r in rows]
    col_m = [sum(x) / n, sum(y) / n]
    ssr = k * sum((m - grand) ** 2 for m in row_m)
    ssc = n * sum((m - grand) ** 2 for m in col_m)
    sst = sum((v - grand) ** 2 for r in rows for v in r)
    msr, msc, mse = ssr / (n - 1), ssc / (k - 1), (sst - ssr - ssc) / ((n - 1) * (k - 1))
    expected = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    assert es.icc_a1(np.array(x), np.array(y)) == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 1
