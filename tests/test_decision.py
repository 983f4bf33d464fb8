"""Known answers for what the clinician reads: the SMI estimate, its interval, p_low, the flag,
the criteria's category, and the thresholds. Hand-computed expectations, no torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.calibration import calibrate, choose_thresholds, decision_metrics, fit, one_side_sd
from edge.criteria import CRITERIA, category
from edge.decision import Flag, Thresholds, decide
from edge.smi import SmiCalibration, design_row

ZERO4 = tuple((0.0,) * 4 for _ in range(4))


def flat(mean_smi: float, sd: float = 0.1, n: int = 100_004, **kw) -> SmiCalibration:
    """A loglinear calibration whose estimate is `mean_smi` whatever the film (only the intercept)."""
    return SmiCalibration("loglinear", (math.log(mean_smi), 0.0, 0.0, 0.0), ZERO4, sd, 1.96, n, **kw)


def test_decide_at_and_around_each_threshold():
    th = Thresholds(clear=0.2, refer=0.4)
    assert decide(0.4, th) is Flag.LOW_MUSCLE_MASS  # at refer: refer
    assert decide(0.3999, th) is Flag.BORDERLINE
    assert decide(0.2001, th) is Flag.BORDERLINE
    assert decide(0.2, th) is Flag.NORMAL  # at clear: normal
    assert decide(0.0, th) is Flag.NORMAL and decide(1.0, th) is Flag.LOW_MUSCLE_MASS
    same = Thresholds(0.3, 0.3)
    assert decide(0.3, same) is Flag.LOW_MUSCLE_MASS and decide(0.29, same) is Flag.NORMAL


def test_p_low_is_the_predictive_probability():
    cal = flat(6.0, sd=0.1)
    assert cal.p_low(300, "F", 1.6, 6.0) == pytest.approx(0.5, abs=1e-9)
    # one SD above the mean on the log scale: Phi(1) = 0.8413 (t with 100000 dof)
    assert cal.p_low(300, "F", 1.6, 6.0 * math.exp(0.1)) == pytest.approx(0.841345, abs=1e-4)
    assert cal.p_low(300, "F", 1.6, 6.0 * math.exp(-0.2)) == pytest.approx(0.022750, abs=1e-4)
    wide = flat(6.0, sd=0.1, interval_scale=2.0)
    assert wide.p_low(300, "F", 1.6, 6.0 * math.exp(0.2)) == pytest.approx(0.841345, abs=1e-4)
    side = flat(6.0, sd=0.1, one_side_sd=0.1)
    assert side.p_low(300, "F", 1.6, 6.0 * math.exp(0.1 * math.sqrt(2)), one_side=True) == pytest.approx(
        0.841345, abs=1e-4
    )


def test_interval_is_a_prediction_interval_in_kg_per_m2():
    A = tuple(tuple(0.5 if i == j == 0 else 0.0 for j in range(4)) for i in range(4))
    cal = SmiCalibration("loglinear", (math.log(6.0), 0.0, 0.0, 0.0), A, 0.1, 2.0, 50)
    est, lo, hi = cal.predict(300, "F", 1.6)
    half = 2.0 * 0.1 * math.sqrt(1 + 0.5)  # a confidence interval would be sqrt(0.5)
    assert est == pytest.approx(6.0)
    assert (lo, hi) == pytest.approx((6.0 * math.exp(-half), 6.0 * math.exp(half)))


def test_design_row_takes_height_in_metres_and_log_area():
    row = design_row("loglinear", 400.0, "M", 1.6)
    assert row.tolist() == pytest.approx([1.0, math.log(400.0), 1.0, math.log(1.6)])
    assert design_row("linear", 400.0, "F", 1.6).tolist() == [1.0, 400.0, 0.0, 1.6]
    with pytest.raises(ValueError):
        design_row("cubic", 1, "F", 1.6)


def test_the_shipped_form_recovers_a_known_law():
    """SMI = 0.05 * area^0.8 * 1.1^male / height^1.5 exactly: the fit finds the exponents."""
    rng = np.random.default_rng(0)
    area = rng.uniform(250, 550, 60)
    sex = ["M" if i % 3 == 0 else "F" for i in range(60)]
    h = rng.uniform(1.45, 1.8, 60)
    smi = 0.05 * area**0.8 * np.where(np.array(sex) == "M", 1.1, 1.0) / h**1.5
    cal = fit("loglinear", area, sex, h, smi)
    assert cal.coef == pytest.approx((math.log(0.05), 0.8, math.log(1.1), -1.5), abs=1e-8)
    assert cal.predict(400.0, "F", 1.6)[0] == pytest.approx(0.05 * 400**0.8 / 1.6**1.5, rel=1e-8)


def test_thresholds_keep_sensitivity_and_the_borderline_share():
    # 20 truly low films with p 0.05..1.0 and 80 others with p 0.0..0.79
    p_low_films = np.linspace(0.05, 1.0, 20)
    p_ok = np.linspace(0.0, 0.79, 80)
    p = np.concatenate([p_low_films, p_ok])
    low = np.concatenate([np.ones(20, bool), np.zeros(80, bool)])
    th = choose_thresholds(p, low)
    # at most 2 of 20 low films may be cleared: clear sits just under the 3rd lowest (0.15)
    assert th["clear"] == pytest.approx(0.15, abs=1e-6) and th["clear"] < 0.15
    assert th["sensitivity"] >= 0.90 and th["borderline_share"] <= 0.15
    flags = [decide(v, Thresholds(th["clear"], th["refer"])) for v in p]
    assert sum(f is Flag.BORDERLINE for f in flags) == 15  # the whole 15 % budget, not more


def test_calibrate_covers_held_out_truth_and_widens_for_one_thigh():
    rng = np.random.default_rng(1)
    n = 300
    area = rng.uniform(250, 550, n)
    sex = ["M" if i % 3 == 0 else "F" for i in range(n)]
    h = rng.uniform(1.45, 1.8, n)
    smi = 0.05 * area**0.8 / h**1.5 * np.exp(rng.normal(0, 0.08, n))
    right = area * rng.uniform(0.45, 0.55, n)
    out = calibrate(area, sex, h, smi, [str(i // 2) for i in range(n)], right=right, left=area - right)
    assert 0.93 <= out["report"]["oof_interval_coverage"] <= 0.97
    cal = SmiCalibration(**out["calibration"])
    assert cal.one_side_sd > 0.01
    assert cal.predict(400, "F", 1.6, one_side=True)[2] > cal.predict(400, "F", 1.6)[2]
    for name, d in out["decision"].items():
        assert d["sensitivity"] >= 0.90 and d["borderline_share"] <= 0.15 + 1e-9, name


@pytest.mark.parametrize(
    "crit,sex,flag,grip,gait,expected",
    [
        ("awgs2019", "F", "low_muscle_mass", 17.9, 1.2, "sarcopenia"),
        ("awgs2019", "F", "low_muscle_mass", 18.0, 1.0, "no_sarcopenia"),  # at the cut-offs: not low
        ("awgs2019", "F", "low_muscle_mass", 18.0, 0.99, "sarcopenia"),
        ("awgs2019", "M", "low_muscle_mass", 27.9, 0.99, "severe_sarcopenia"),
        ("awgs2019", "M", "normal", 27.9, None, "possible_sarcopenia"),
        ("awgs2019", "M", "normal", 28.0, 1.0, "no_sarcopenia"),
        ("awgs2019", "F", "borderline", 17.0, None, "possible_sarcopenia"),
        ("ewgsop2", "F", "low_muscle_mass", 15.9, 0.8, "severe_sarcopenia"),  # EWGSOP2 gait <= 0.8
        ("ewgsop2", "F", "low_muscle_mass", 15.9, 0.81, "sarcopenia"),
        ("ewgsop2", "F", "low_muscle_mass", 16.0, 0.5, "no_sarcopenia"),  # strength first
        ("ewgsop2", "M", "normal", 26.9, None, "possible_sarcopenia"),
        ("ewgsop2", "M", "low_muscle_mass", 27.0, None, "no_sarcopenia"),
    ],
)
def test_category_at_and_around_each_cut_off(crit, sex, flag, grip, gait, expected):
    assert category(CRITERIA[crit], sex, flag, grip, gait)["category"] == expected


def test_cut_offs_are_the_published_ones():
    assert CRITERIA["awgs2019"].smi == {"M": 7.0, "F": 5.4} and CRITERIA["ewgsop2"].smi == {"M": 7.0, "F": 5.5}
    assert CRITERIA["awgs2019"].grip == {"M": 28.0, "F": 18.0} and CRITERIA["ewgsop2"].grip == {"M": 27.0, "F": 16.0}


def test_borderline_mass_with_low_performance_is_possible_sarcopenia():
    """EWGSOP2 with normal grip: a borderline mass and slow gait warrant a look; a normal one not."""
    ew = CRITERIA["ewgsop2"]
    assert category(ew, "F", "borderline", 20.0, 0.7)["category"] == "possible_sarcopenia"
    assert category(ew, "F", "normal", 20.0, 0.7)["category"] == "no_sarcopenia"
    out = category(CRITERIA["awgs2019"], "M", "normal", 30.0, 0.9)
    assert out == {
        "category": "possible_sarcopenia",
        "low_strength": False,
        "low_performance": True,
        "used": ["grip_kg", "gait_speed_mps"],
    }
    assert category(CRITERIA["awgs2019"], "M", "normal", None, None) == {
        "category": "no_sarcopenia",
        "low_strength": None,
        "low_performance": None,
        "used": [],
    }


def test_decision_metrics_known_answer():
    normal = np.array([True, True, False, False, False, True, False, False])
    refer = np.array([False, False, True, True, False, False, False, True])
    low = np.array([True, False, True, False, True, False, False, True])
    m = decision_metrics(normal, refer, low)
    # low films (4): cleared, referred, borderline, referred -> 3 not cleared, 2 referred;
    # not-low films (4): cleared, referred, cleared, borderline -> 3 not referred, 2 cleared.
    assert m == pytest.approx(
        {
            "sensitivity": 3 / 4,
            "specificity": 3 / 4,
            "refer_sensitivity": 2 / 4,
            "clear_specificity": 2 / 4,
            "refer_ppv": 2 / 3,
            "clear_npv": 2 / 3,
            "borderline_share": 2 / 8,
            "n": 8,
            "n_low": 4,
        }
    )


def test_one_side_sd_known_answer():
    cal = SmiCalibration("loglinear", (0.0, 1.0, 0.0, 0.0), ZERO4, 0.1, 2.0, 100)
    # right 60 %, left 40 %: one thigh doubled is log(1.2) and log(0.8) from both thighs
    sd = one_side_sd(cal, [60.0] * 4, [40.0] * 4, ["F"] * 4, [1.6] * 4)
    assert sd == pytest.approx(np.sqrt((np.log(1.2) ** 2 + np.log(0.8) ** 2) / 2))
    assert one_side_sd(cal, [50.0] * 4, [50.0] * 4, ["F"] * 4, [1.6] * 4) == 0.0
    assert one_side_sd(cal, [60.0], [40.0], ["F"], [1.6]) == 0.0  # too few films to say


def test_calibrations_and_thresholds_read_back_from_the_manifest():
    import json
    from pathlib import Path

    m = json.loads((Path(__file__).resolve().parents[1] / "models" / "default" / "manifest.json").read_text())
    cal = SmiCalibration.from_dict(m["smi_calibration"])
    assert cal.form == m["smi_calibration"]["form"] and cal.n == m["smi_calibration"]["n"]
    assert (
        cal.coef == tuple(m["smi_calibration"]["coef"]) and cal.interval_scale == m["smi_calibration"]["interval_scale"]
    )
    assert cal.one_side_sd == m["smi_calibration"]["one_side_sd"] and cal.t95 == m["smi_calibration"]["t95"]
    assert cal.xtx_inv == tuple(tuple(r) for r in m["smi_calibration"]["xtx_inv"])
    assert cal.residual_sd == m["smi_calibration"]["residual_sd"]
    old = {k: v for k, v in m["smi_calibration"].items() if k not in ("interval_scale", "one_side_sd")}
    assert SmiCalibration.from_dict(old).interval_scale == 1.0 and SmiCalibration.from_dict(old).one_side_sd == 0.0
    th = Thresholds.from_dict(m["decision"]["awgs2019"])
    assert (th.clear, th.refer) == (m["decision"]["awgs2019"]["clear"], m["decision"]["awgs2019"]["refer"])


def test_the_sex_term_moves_estimate_interval_and_p_low():
    cal = SmiCalibration("loglinear", (math.log(6.0), 0.0, 0.2, 0.0), ZERO4, 0.1, 1.96, 100_004)
    assert cal.predict(300, "M", 1.6)[0] == pytest.approx(6.0 * math.exp(0.2))
    assert cal.p_low(300, "M", 1.6, 6.0 * math.exp(0.2)) == pytest.approx(0.5, abs=1e-9)
    assert cal.p_low(300, "F", 1.6, 6.0) == pytest.approx(0.5, abs=1e-9)
    A = tuple(tuple(1.0 if i == j == 2 else 0.0 for j in range(4)) for i in range(4))
    wide_for_men = SmiCalibration("loglinear", (math.log(6.0), 0.0, 0.0, 0.0), A, 0.1, 2.0, 50)
    lo_m, hi_m = wide_for_men.predict(300, "M", 1.6)[1:]
    lo_f, hi_f = wide_for_men.predict(300, "F", 1.6)[1:]
    assert hi_m / lo_m == pytest.approx(math.exp(2 * 2.0 * 0.1 * math.sqrt(2)))
    assert hi_f / lo_f == pytest.approx(math.exp(2 * 2.0 * 0.1))


def test_few_labels_cannot_push_the_clear_threshold_past_what_p_low_supports():
    """Ten low films at p 0.9 and ten others at 0.08: the labels alone would clear everything
    under 0.9; the predictive probabilities say clearing the 0.08s already costs 8 % of low films,
    so clear stays at 0.08."""
    p = np.array([0.9] * 10 + [0.08] * 10)
    low = np.array([True] * 10 + [False] * 10)
    th = choose_thresholds(p, low)
    assert th["clear"] == pytest.approx(0.08)
    p2 = np.array([0.9] * 10 + [0.12] * 10)  # 12 % expected cleared: nothing may be cleared
    assert choose_thresholds(p2, low)["clear"] == 0.0
