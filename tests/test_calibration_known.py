"""edge.calibration's steps with known answers: the fit's degrees of freedom, person-grouped
folds, out-of-fold fits, the one-thigh spread, the interval scale, the thresholds at their edges
and the rates' empty cases. No torch, no scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.calibration import (
    calibrate,
    choose_thresholds,
    cv_rmse,
    decision_metrics,
    fit,
    folds_by_person,
    interval_scale,
    one_side_sd,
    out_of_fold,
)
from edge.smi import SmiCalibration
from edge.stats import t_ppf

ZERO4 = tuple((0.0,) * 4 for _ in range(4))


def exact(n: int, form: str = "linear", seed: int = 0):
    """Films whose SMI follows the form exactly: 2 + 0.01 area + 0.5 male + 1 height (linear), or
    exp(-1 + 0.5 log area + 0.1 male + 0.2 log height) (loglinear)."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(150, 400, n)
    height = rng.uniform(1.5, 1.9, n)
    sex = ["M" if i % 2 else "F" for i in range(n)]
    male = np.array([s == "M" for s in sex], float)
    if form == "linear":
        smi = 2 + 0.01 * area + 0.5 * male + 1.0 * height
    else:
        smi = np.exp(-1 + 0.5 * np.log(area) + 0.1 * male + 0.2 * np.log(height))
    return area, sex, height, smi


def test_fit_recovers_an_exact_linear_form_with_its_dof():
    area, sex, height, smi = exact(12)
    cal = fit("linear", area, sex, height, smi)
    assert cal.coef == pytest.approx((2.0, 0.01, 0.5, 1.0), abs=1e-9)
    assert cal.n == 12 and cal.t95 == pytest.approx(t_ppf(0.975, 8))
    noisy = smi + np.where(np.arange(12) % 3 == 0, 0.1, -0.05)
    cal = fit("linear", area, sex, height, noisy)
    X = np.column_stack([np.ones(12), area, [s == "M" for s in sex], height])
    resid = noisy - X @ np.array(cal.coef)
    assert cal.residual_sd == pytest.approx(math.sqrt(resid @ resid / 8))  # n - 4 dof
    five = fit("linear", area[:5], sex[:5], height[:5], noisy[:5])
    assert five.t95 == pytest.approx(12.7062, abs=1e-4)  # 1 dof


def test_folds_keep_a_person_together_reproducibly():
    groups = [f"p{i // 2}" for i in range(12)]  # 6 people, 2 films each
    f = folds_by_person(groups)
    assert sorted(set(f.tolist())) == [0, 1, 2, 3, 4]  # 5 folds by default
    assert all(f[2 * i] == f[2 * i + 1] for i in range(6))
    assert f.tolist() == folds_by_person(groups, 5, 0).tolist() == [4, 4, 0, 0, 1, 1, 0, 0, 3, 3, 2, 2]
    assert sorted(set(folds_by_person(groups, 3).tolist())) == [0, 1, 2]


def test_out_of_fold_fits_leave_the_fold_out():
    area, sex, height, smi = exact(24)
    smi = smi + np.sin(np.arange(24))  # noise, so each fit depends on its films
    groups = [f"p{i // 2}" for i in range(24)]
    cals = out_of_fold("linear", area, sex, height, smi, groups, k=3)
    folds = folds_by_person(groups, 3)
    for i in range(24):
        tr = folds != folds[i]
        ref = fit("linear", area[tr], [sex[j] for j in np.nonzero(tr)[0]], height[tr], smi[tr])
        assert cals[i].coef == pytest.approx(ref.coef)


def test_five_folds_by_default_and_cv_rmse_of_the_out_of_fold_estimates():
    area, sex, height, smi = exact(24)
    smi = smi + np.sin(np.arange(24))
    groups = [f"p{i // 2}" for i in range(24)]
    default = out_of_fold("linear", area, sex, height, smi, groups)
    assert [c.coef for c in default] == [c.coef for c in out_of_fold("linear", area, sex, height, smi, groups, k=5)]
    assert [c.coef for c in default] != [c.coef for c in out_of_fold("linear", area, sex, height, smi, groups, k=6)]
    for k in (3, 5):
        cals = out_of_fold("linear", area, sex, height, smi, groups, k=k)
        err = [c.predict(a, s_, h)[0] - y for c, a, s_, h, y in zip(cals, area, sex, height, smi)]
        expected = math.sqrt(np.mean(np.square(err)))
        got = (
            cv_rmse("linear", area, sex, height, smi, groups, k)
            if k != 5
            else cv_rmse("linear", area, sex, height, smi, groups)
        )
        assert got == pytest.approx(expected)


def test_out_of_fold_needs_six_training_films():
    area, sex, height, smi = exact(8)
    groups = ["a", "a", "b", "b", "c", "c", "d", "d"]  # 4 people, 4 folds: 6 films to train on
    assert all(c is not None for c in out_of_fold("linear", area, sex, height, smi, groups, k=4))
    groups7 = ["a", "a", "b", "b", "c", "c", "d"]  # a fold of 2 leaves 5: no fit there
    cals = out_of_fold("linear", area[:7], sex[:7], height[:7], smi[:7], groups7, k=4)
    f = folds_by_person(groups7, 4)
    assert [c is None for c in cals] == [bool((f != f[i]).sum() < 6) for i in range(7)]
    assert any(c is None for c in cals) and any(c is not None for c in cals)


def test_cv_rmse_of_an_exact_form_is_zero():
    area, sex, height, smi = exact(20)
    groups = [f"p{i}" for i in range(20)]
    assert cv_rmse("linear", area, sex, height, smi, groups) == pytest.approx(0.0, abs=1e-9)
    assert cv_rmse("loglinear", area, sex, height, smi, groups) > 1e-3


def test_one_side_sd_known_answer_and_skipped_sides():
    # loglinear, area coefficient 1, a male term: doubling one side moves the mean by
    # log(2 r / (r + l)); (100, 300) -> log(0.5), log(1.5); (200, 200) -> 0, 0
    cal = SmiCalibration("loglinear", (0.0, 1.0, 0.3, 0.0), ZERO4, 0.1, 2.0, 50)
    d = [math.log(0.5), math.log(1.5), 0.0, 0.0]
    expected = math.sqrt(sum(v * v for v in d) / 4)
    sides = ([100.0, 200.0], [300.0, 200.0])
    assert one_side_sd(cal, *sides, ["M", "M"], [1.7, 1.7]) == pytest.approx(expected)
    skipped = ([100.0, 200.0, -1.0, 5.0, 0.5, None, 0.0], [300.0, 200.0, 5.0, -1.0, 0.7, 3.0, 3.0])
    n = len(skipped[0])
    small = [math.log(1.0 / 1.2), math.log(1.4 / 1.2)]  # (0.5, 0.7): counted; negative, None, 0: not
    assert one_side_sd(cal, *skipped, ["M"] * n, [1.7] * n) == pytest.approx(
        math.sqrt(sum(v * v for v in d + small) / 6)
    )
    assert one_side_sd(cal, [100.0], [300.0], ["M"], [1.7]) == 0.0  # fewer than 2 films: none


def test_interval_scale_known_answers():
    cal = SmiCalibration("linear", (6.0, 0.0, 0.5, 0.0), ZERO4, 0.5, 2.0, 50)  # half-width 1
    # z = |truth - mean| / 1: 2 for every film (men at 6.5, women at 6)
    assert interval_scale([cal, None, cal], [300] * 3, ["M", "F", "F"], [1.7] * 3, [8.5, 0.0, 4.0]) == 2.0
    # a film without a calibration is skipped, not the end: z = 2 and 3.5, 95 % quantile 3.425
    assert interval_scale([cal, None, cal], [300] * 3, ["M", "F", "F"], [1.7] * 3, [8.5, 0.0, 2.5]) == pytest.approx(
        3.425
    )
    # a man's spread: xtx_inv weighs the male column, sd sqrt(1 + 3) = 2 times: z = 4 / 2
    A = tuple(tuple(3.0 if i == j == 2 else 0.0 for j in range(4)) for i in range(4))
    wide = SmiCalibration("linear", (6.0, 0.0, 0.5, 0.0), A, 0.5, 2.0, 50)
    assert interval_scale([wide], [300], ["M"], [1.7], [10.5]) == 2.0
    assert interval_scale([cal] * 3, [300] * 3, ["M"] * 3, [1.7] * 3, [26.5] * 3) == 4.0  # capped
    assert interval_scale([cal] * 3, [300] * 3, ["F"] * 3, [1.7] * 3, [6.1] * 3) == 0.5  # floored
    assert interval_scale([None, None], [300] * 2, ["F"] * 2, [1.7] * 2, [6.0] * 2) == 1.0


def test_choose_thresholds_edges():
    # no low films: the labels clear everything, the model's own p clears up to 10 % of its mass
    out = choose_thresholds(np.array([0.0, 0.0]), np.array([0, 0]))
    assert (out["clear"], out["refer"]) == (0.0, 1.0)
    # p's that sum to less than 1: expected cleared 0.1, 0.3, 0.6, 1.0 of the sum
    out = choose_thresholds(np.array([0.01, 0.02, 0.03, 0.04]), np.array([0, 0, 0, 1]))
    assert out["clear"] == 0.01
    # expected cleared exactly 10 %: allowed; a film at clear is not above it
    out = choose_thresholds(np.array([0.1, 0.9]), np.array([False, True]))
    assert (out["clear"], out["refer"]) == (0.1, 0.9)


def test_decision_metrics_empty_classes_and_integer_input():
    m = decision_metrics([1, 0, 0], [0, 1, 0], [0, 0, 0])  # no low films
    assert m["sensitivity"] is None and m["refer_sensitivity"] is None
    assert m["specificity"] == pytest.approx(2 / 3) and m["clear_specificity"] == pytest.approx(1 / 3)
    m = decision_metrics([0, 0], [0, 0], [1, 1])  # all low, nothing cleared or referred
    assert m["specificity"] is None and m["clear_specificity"] is None
    assert m["refer_ppv"] is None and m["clear_npv"] is None and m["borderline_share"] == 1.0
    m = decision_metrics([], [], [])
    assert m["borderline_share"] is None and m["n"] == 0
    m = decision_metrics([1, 0, 0], [0, 1, 1], [1, 1, 0])  # 2 low, 1 not
    assert m["sensitivity"] == 0.5 and m["specificity"] == 0.0 and m["n_low"] == 2


def test_calibrate_report_and_chosen_form():
    area, sex, height, smi = exact(30, "loglinear", seed=2)
    groups = [f"p{i // 2}" for i in range(30)]
    out = calibrate(area, sex, height, smi, groups)
    r = out["report"]
    assert r["form"] == "loglinear" and r["cv_rmse"]["loglinear"] < r["cv_rmse"]["linear"]
    assert (r["n_films"], r["n_people"], r["one_side_sd"]) == (30, 15, 0.0)
    assert r["interval_scale"] == out["calibration"]["interval_scale"] and 0.5 <= r["interval_scale"] <= 4.0
    assert 0.0 <= r["oof_interval_coverage"] <= 1.0
    assert out["calibration"]["form"] == "loglinear" and out["calibration"]["one_side_sd"] == 0.0
    for d in out["decision"].values():
        assert d["chosen_on"] == "out-of-fold predictions (5 folds by person)"


def test_calibrate_counts_a_film_at_the_cut_off_as_not_low():
    from edge.criteria import CRITERIA

    area, sex, height, smi = exact(30, "loglinear", seed=2)
    smi = smi * 7.0 / smi.mean() + np.sin(np.arange(30))  # around 7 kg/m2, with spread
    cut = CRITERIA["ewgsop2"].smi
    smi[0] = cut[sex[0]]
    out = calibrate(area, sex, height, smi, [f"p{i // 2}" for i in range(30)])
    assert out["decision"]["ewgsop2"]["n_low"] == sum(v < cut[s] for v, s in zip(smi, sex))


def test_calibrate_with_films_that_get_no_out_of_fold_fit():
    area, sex, height, smi = exact(7, "loglinear", seed=3)
    out = calibrate(area, sex, height, smi, ["a", "a", "b", "b", "c", "c", "d"])
    assert out["report"]["n_films"] == 7 and 0.0 <= out["report"]["oof_interval_coverage"] <= 1.0


def test_calibrate_with_no_out_of_fold_fit_reports_no_coverage():
    area, sex, height, smi = exact(6, "loglinear", seed=4)
    out = calibrate(area, sex, height, smi, ["a", "a", "b", "b", "c", "c"])  # 4 films to train on: none
    assert out["report"]["oof_interval_coverage"] is None and out["report"]["interval_scale"] == 1.0


def _sexed_cohort(n: int = 120, seed: int = 5):
    """Men carry 1.5 kg/m2 more SMI than women of the same thigh area and height, so scoring a man
    as a woman moves his estimate, interval and p_low a long way."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(200, 400, n)
    height = rng.uniform(1.5, 1.8, n)
    sex = ["M" if i % 3 == 0 else "F" for i in range(n)]
    male = np.array([s == "M" for s in sex], float)
    smi = 3.0 + 0.008 * area + 1.5 * male + rng.normal(0, 0.35, n)
    return area, sex, height, smi, [f"p{i // 2}" for i in range(n)]


def test_calibrate_scores_each_film_with_its_own_sex():
    """The coverage and the thresholds calibrate reports equal an independent recomputation from
    the out-of-fold fits with each film's own sex (a man scored as a woman changes both)."""
    from dataclasses import asdict

    from edge.criteria import CRITERIA

    area, sex, height, smi, groups = _sexed_cohort()
    res = calibrate(area, sex, height, smi, groups)
    scale = res["report"]["interval_scale"]
    oof = out_of_fold(res["report"]["form"], area, sex, height, smi, groups)
    oof = [None if c is None else SmiCalibration(**{**asdict(c), "interval_scale": scale}) for c in oof]
    keep = [i for i, c in enumerate(oof) if c is not None]
    covered = [
        oof[i].predict(area[i], sex[i], height[i])[1] <= smi[i] <= oof[i].predict(area[i], sex[i], height[i])[2]
        for i in keep
    ]
    assert res["report"]["oof_interval_coverage"] == pytest.approx(float(np.mean(covered)))
    cut = CRITERIA["awgs2019"].smi
    p = np.array([oof[i].p_low(area[i], sex[i], height[i], cut[sex[i]]) for i in keep])
    low = np.array([smi[i] < cut[sex[i]] for i in keep])
    want = choose_thresholds(p, low)
    got = res["decision"]["awgs2019"]
    assert (got["clear"], got["refer"], got["sensitivity"]) == pytest.approx(
        (want["clear"], want["refer"], want["sensitivity"])
    )


def test_a_truth_on_the_interval_bound_counts_as_covered(monkeypatch):
    """The 95 % interval is closed: a truth equal to a bound is covered (the stand-in interval is
    the truth itself, so every film sits exactly on both bounds)."""
    area, sex, height, smi = exact(40, "linear")[:4]
    smi = smi + np.random.default_rng(2).normal(0, 0.2, len(smi))
    truth = dict(zip(area.tolist(), smi.tolist()))
    monkeypatch.setattr(SmiCalibration, "predict", lambda self, a, s, h, one_side=False: (truth[a],) * 3)
    res = calibrate(area, sex, height, smi, [f"p{i}" for i in range(len(area))])
    assert res["report"]["oof_interval_coverage"] == 1.0
