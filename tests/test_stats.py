"""edge.stats against scipy: the clinic side computes the same numbers without it."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edge import stats as es


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
