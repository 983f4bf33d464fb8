"""Known answers without scipy for edge.smi and edge.stats: the closed forms of Student's t
with 1 and 2 degrees of freedom, the linear form's interval and p_low, and the edge cases of
the agreement statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge import stats as es
from edge.smi import SmiCalibration, design_row

ZERO4 = tuple((0.0,) * 4 for _ in range(4))


def cauchy_cdf(t: float) -> float:  # Student's t, 1 degree of freedom
    return 0.5 + math.atan(t) / math.pi


def t2_cdf(t: float) -> float:  # Student's t, 2 degrees of freedom
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


@pytest.mark.parametrize("t", [-40.0, -3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0, 7.0, 100.0])
def test_t_cdf_closed_forms(t):
    assert es.t_cdf(t, 1) == pytest.approx(cauchy_cdf(t), abs=1e-12)
    assert es.t_cdf(t, 2) == pytest.approx(t2_cdf(t), abs=1e-12)


@pytest.mark.parametrize("p", [0.001, 0.025, 0.3, 0.8, 0.975, 0.999])
def test_t_ppf_closed_forms(p):
    assert es.t_ppf(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), abs=1e-9)
    assert es.t_ppf(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), abs=1e-9)


def test_t_ppf_of_one_half():
    # t_cdf is exactly 0.5 for |t| < about 1e-8 sqrt(df) (df / (df + t^2) rounds to 1), so the
    # median comes out within that flat stretch, not within the docstring's 1e-10.
    assert abs(es.t_ppf(0.5, 1)) < 2e-8 and abs(es.t_ppf(0.5, 280)) < 2e-7


def test_pearson_of_a_perfect_line_and_of_few_points():
    z = math.atanh(0.999999)
    for y, sign in (([2.0, 4, 6, 8], 1), ([8.0, 6, 4, 2], -1)):
        r = es.pearson([1.0, 2, 3, 4], y)  # n = 4: se = 1 / sqrt(1)
        assert r["r"] == pytest.approx(sign) and r["n"] == 4
        assert r["ci95"] == pytest.approx(sorted([sign * math.tanh(z - 1.96), sign * math.tanh(z + 1.96)]))
    r = es.pearson([1.0, 2, 3], [1.0, 3, 2])  # n = 3: se = 1 (n - 3 floored at 1); r = 0.5
    assert r["r"] == pytest.approx(0.5)
    assert r["ci95"] == pytest.approx([math.tanh(math.atanh(0.5) - 1.96), math.tanh(math.atanh(0.5) + 1.96)])


def test_roc_auc_with_integer_labels_and_ties_anywhere():
    # positives {1, 3}, negatives {2, 0}: 3 of 4 pairs ordered
    assert es.roc_auc(np.array([1.0, 3, 2, 0]), np.array([1, 1, 0, 0])) == pytest.approx(0.75)
    # a three-way tie at the top: positives {2, 2}, negatives {2, 1}: (.5 + 1) * 2 / 4
    assert es.roc_auc(np.array([2.0, 2, 2, 1]), np.array([True, False, True, False])) == pytest.approx(0.75)
    # ties in the middle: positives {3, 1}, negatives {2, 2, 0}: 3 > all (3), 1 > 0 (1) -> 4 / 6
    assert es.roc_auc(np.array([3.0, 2, 2, 1, 0]), np.array([1, 0, 0, 1, 0])) == pytest.approx(4 / 6)


def test_design_row_refuses_an_unknown_form_by_name():
    with pytest.raises(ValueError, match="^unknown calibration form 'cubic'$"):
        design_row("cubic", 100.0, "F", 1.6)


def test_one_side_widens_only_when_asked():
    cal = SmiCalibration("loglinear", (math.log(6.0), 0.0, 0.0, 0.0), ZERO4, 0.4, 2.0, 50, one_side_sd=0.3)
    assert cal.scale(300, "F", 1.6) == pytest.approx(0.4)
    assert cal.scale(300, "F", 1.6, one_side=True) == pytest.approx(0.5)
    assert cal.p_low(300, "F", 1.6, 6.0) == pytest.approx(0.5)
    # one SD above on the log scale with 46 dof: same p whichever spread, asked for explicitly
    assert cal.p_low(300, "F", 1.6, 6.0 * math.exp(0.4)) == pytest.approx(es.t_cdf(1.0, 46))
    assert cal.p_low(300, "F", 1.6, 6.0 * math.exp(0.5), one_side=True) == pytest.approx(es.t_cdf(1.0, 46))


def test_the_linear_form_in_kg_per_m2():
    A = tuple(tuple(0.5 if i == j == 0 else 0.0 for j in range(4)) for i in range(4))
    cal = SmiCalibration("linear", (6.0, 0.0, 0.0, 0.0), A, 0.1, 2.0, 50)
    half = 2.0 * 0.1 * math.sqrt(1.5)
    assert cal.predict(300, "F", 1.6) == pytest.approx((6.0, 6.0 - half, 6.0 + half))
    # n = 5: one degree of freedom, the Cauchy closed form; z = (7 - 6) / 1
    cauchy = SmiCalibration("linear", (6.0, 0.0, 0.0, 0.0), ZERO4, 1.0, 12.7, 5)
    assert cauchy.p_low(300, "F", 1.6, 7.0) == pytest.approx(0.75)


def test_p_low_uses_the_sex_in_the_spread():
    # xtx_inv weighs the male column: a man's spread is sqrt(1 + 3) = 2 times a woman's
    A = tuple(tuple(3.0 if i == j == 2 else 0.0 for j in range(4)) for i in range(4))
    cal = SmiCalibration("linear", (6.0, 0.0, 0.0, 0.0), A, 1.0, 12.7, 5)
    assert cal.p_low(300, "M", 1.6, 8.0) == pytest.approx(0.75)  # z = 2 / 2
    assert cal.p_low(300, "F", 1.6, 8.0) == pytest.approx(cauchy_cdf(2.0))  # z = 2 / 1
