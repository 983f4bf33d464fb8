"""Fitting area (+ sex, height) -> DEXA SMI, and choosing the decision thresholds. Numpy only.

One module for both sides: `sarco calibrate` (training side, phantom cohorts) and
`sarco-edge calibrate` (a site's own films and DEXA) call `calibrate()` here.

- Form: `linear` or `loglinear` (edge.smi), whichever has the lower person-grouped 5-fold
  cross-validated RMSE.
- Interval: the regression's t prediction interval, times `interval_scale`, chosen so that the
  out-of-fold 95 % intervals cover the truth 95 % of the time (a model fitted on its own films
  is over-confident about new ones); a one-thigh estimate adds `one_side_sd` for left/right
  asymmetry, measured on films that show both thighs.
- Decision: `p_low`, the predictive probability that DEXA SMI is under the cut-off, from
  out-of-fold predictions; `clear` is the largest threshold that keeps sensitivity >= 0.90
  (a truly low person is cleared as `normal` at most 10 % of the time), both on the films'
  labels and by the predictive probabilities (the lower wins: with few films the labels alone
  overfit); `refer` the largest threshold >= clear that keeps the `borderline` share <= 15 %,
  which gives the best specificity (films at or over the cut-off not referred) at that
  sensitivity, since specificity only grows with `refer` (see `decision_metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from .criteria import CRITERIA
from .decision import Flag, Thresholds, decide
from .smi import FORMS, SmiCalibration, design_row
from .stats import t_ppf

MIN_SENSITIVITY = 0.90
MAX_BORDERLINE = 0.15
COVERAGE = 0.95


def fit(form: str, area: np.ndarray, sex: Sequence[str], height: np.ndarray, smi: np.ndarray) -> SmiCalibration:
    """Ordinary least squares on the form's scale, with what a prediction interval needs."""
    X = np.stack([design_row(form, a, s, h) for a, s, h in zip(area, sex, height)])
    y = np.log(smi) if form == "loglinear" else np.asarray(smi, float)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    dof = max(len(y) - X.shape[1], 1)
    resid = y - X @ coef
    return SmiCalibration(
        form=form,
        coef=tuple(float(c) for c in coef),
        xtx_inv=tuple(tuple(float(v) for v in r) for r in np.linalg.pinv(X.T @ X)),
        residual_sd=float(np.sqrt(resid @ resid / dof)),
        t95=float(t_ppf(0.975, dof)),
        n=len(y),
    )


def folds_by_person(groups: Sequence[str], k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold index per film; all films of one person in one fold.

    scikit-learn's GroupKFold does the same, but would bring scikit-learn and scipy into the
    clinic install (which has neither) for these four lines of numpy."""
    uniq = np.unique(np.asarray(groups))
    fold_of = dict(zip(np.random.default_rng(seed).permutation(uniq), np.arange(len(uniq)) % k))
    return np.array([fold_of[g] for g in groups])


def out_of_fold(form: str, area, sex, height, smi, groups, k: int = 5) -> list[SmiCalibration | None]:
    """For each film, the calibration fitted without its person's fold."""
    folds = folds_by_person(groups, k)
    cals: list[SmiCalibration | None] = [None] * len(area)
    for f in range(k):
        tr, te = folds != f, folds == f
        if te.sum() == 0 or tr.sum() < 6:
            continue
        cal = fit(form, area[tr], [sex[i] for i in np.nonzero(tr)[0]], height[tr], smi[tr])
        for i in np.nonzero(te)[0]:
            cals[i] = cal
    return cals


def cv_rmse(form: str, area, sex, height, smi, groups, k: int = 5) -> float:
    err = [
        cal.predict(a, s, h)[0] - y
        for cal, a, s, h, y in zip(out_of_fold(form, area, sex, height, smi, groups, k), area, sex, height, smi)
        if cal is not None
    ]
    return float(np.sqrt(np.mean(np.square(err))))


def one_side_sd(cal: SmiCalibration, right, left, sex, height) -> float:
    """SD, on the form's scale, of the estimate from one thigh doubled around the both-thigh one."""
    d = []
    for r, l, s, h in zip(right, left, sex, height):
        if r and l and r > 0 and l > 0:
            both = cal.mean(r + l, s, h)
            d += [cal.mean(2 * r, s, h) - both, cal.mean(2 * l, s, h) - both]
    return float(np.sqrt(np.mean(np.square(d)))) if len(d) >= 4 else 0.0


def interval_scale(cals, area, sex, height, smi) -> float:
    """Factor on the interval's half-width so that out-of-fold intervals cover COVERAGE of films."""
    z = []
    for cal, a, s, h, y in zip(cals, area, sex, height, smi):
        if cal is None:
            continue
        mean, scale = cal.mean(a, s, h), cal.scale(a, s, h)
        target = math.log(y) if cal.form == "loglinear" else y
        z.append(abs(target - mean) / (scale * cal.t95))
    return float(min(max(np.quantile(z, COVERAGE), 0.5), 4.0)) if z else 1.0


def choose_thresholds(p: np.ndarray, low: np.ndarray) -> dict:
    """(clear, refer) on p_low for sensitivity >= MIN_SENSITIVITY and borderline <= MAX_BORDERLINE."""
    p, low = np.asarray(p, float), np.asarray(low, bool)
    n_low, n = int(low.sum()), len(p)
    # normal when p <= clear: at most floor(10 %) of the low films may be cleared
    allowed = int(math.floor((1 - MIN_SENSITIVITY) * n_low + 1e-9))  # 0.1 * 20 is 1.99999... in floats
    low_p = np.sort(p[low])
    clear = float(low_p[allowed] - 1e-9) if allowed < n_low else 1.0
    # The same target from the predictive probabilities themselves (expected low films cleared
    # = sum of p_low at or under the threshold): smooth where the labels are few. The lower of
    # the two is kept, so a small site cannot talk itself into clearing too many.
    values = np.unique(p)  # ties are cleared together: count at each distinct value
    expected_cleared = np.array([p[p <= v].sum() for v in values]) / max(float(p.sum()), 1e-12)
    ok = np.nonzero(expected_cleared <= 1 - MIN_SENSITIVITY + 1e-12)[0]
    model_clear = float(values[ok[-1]]) if len(ok) else 0.0
    clear = max(min(clear, model_clear), 0.0)
    above = np.sort(p[p > clear])
    k = int(math.floor(MAX_BORDERLINE * n + 1e-9))  # at most k films strictly between clear and refer
    refer = float(above[k]) if k < len(above) else 1.0
    refer = max(refer, clear)
    flags = [decide(v, Thresholds(clear, refer)) for v in p]
    return {
        "clear": clear,
        "refer": refer,
        **decision_metrics(
            np.array([f == Flag.NORMAL for f in flags]), np.array([f == Flag.LOW_MUSCLE_MASS for f in flags]), low
        ),
    }


def decision_metrics(normal: np.ndarray, refer: np.ndarray, low: np.ndarray) -> dict:
    """The decision's rates, the way a test with two cut-offs and a zone between is reported
    (README, "The flag"): `borderline` is no automatic action either way, so

    - sensitivity: truly low films not cleared (referred or borderline): the rule-out side;
    - specificity: films at or over the cut-off not referred (cleared or borderline): the
      rule-in side;
    - refer_sensitivity / clear_specificity: the strict rates (low films referred; films at or
      over the cut-off cleared), reported next to them;
    - refer PPV, clear NPV, and the borderline share (which the thresholds keep <= 15 %).
    """
    normal, refer, low = (np.asarray(v, bool) for v in (normal, refer, low))
    n_low, n_ok = int(low.sum()), int((~low).sum())
    border = ~normal & ~refer
    return {
        "sensitivity": float((~normal & low).sum() / n_low) if n_low else None,
        "specificity": float((~refer & ~low).sum() / n_ok) if n_ok else None,
        "refer_sensitivity": float((refer & low).sum() / n_low) if n_low else None,
        "clear_specificity": float((normal & ~low).sum() / n_ok) if n_ok else None,
        "refer_ppv": float((refer & low).sum() / refer.sum()) if refer.sum() else None,
        "clear_npv": float((normal & ~low).sum() / normal.sum()) if normal.sum() else None,
        "borderline_share": float(border.mean()) if len(low) else None,
        "n": int(len(low)),
        "n_low": n_low,
    }


def calibrate(area, sex, height, smi, groups, right=None, left=None) -> dict:
    """Choose the form, fit it on all films, set the interval and the decision thresholds.

    Returns {"calibration": dict for the manifest, "decision": {criteria: thresholds},
    "report": what was chosen and why}.
    """
    area, height, smi = (np.asarray(v, float) for v in (area, height, smi))
    sex, groups = list(sex), list(groups)
    cv = {form: cv_rmse(form, area, sex, height, smi, groups) for form in FORMS}
    form = min(cv, key=cv.get)
    cal = fit(form, area, sex, height, smi)
    oof = out_of_fold(form, area, sex, height, smi, groups)
    scale = interval_scale(oof, area, sex, height, smi)
    side_sd = one_side_sd(cal, right, left, sex, height) if right is not None else 0.0
    cal = SmiCalibration(**{**asdict(cal), "interval_scale": scale, "one_side_sd": side_sd})
    oof = [None if c is None else SmiCalibration(**{**asdict(c), "interval_scale": scale}) for c in oof]
    decision, coverage = {}, []
    for name, crit in CRITERIA.items():
        keep = [i for i, c in enumerate(oof) if c is not None]
        p = np.array([oof[i].p_low(area[i], sex[i], height[i], crit.smi[sex[i]]) for i in keep])
        low = np.array([smi[i] < crit.smi[sex[i]] for i in keep])
        decision[name] = {**choose_thresholds(p, low), "chosen_on": "out-of-fold predictions (5 folds by person)"}
    for c, a, s, h, y in zip(oof, area, sex, height, smi):
        if c is not None:
            _, lo, hi = c.predict(a, s, h)
            coverage.append(lo <= y <= hi)
    report = {
        "form": form,
        "cv_rmse": cv,
        "n_films": len(area),
        "n_people": len(set(groups)),
        "interval_scale": scale,
        "one_side_sd": side_sd,
        "oof_interval_coverage": float(np.mean(coverage)) if coverage else None,
    }
    return {"calibration": asdict(cal), "decision": decision, "report": report}
