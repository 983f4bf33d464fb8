"""Statistics the clinic side needs without scipy: Student t, agreement, ROC.

Each function is the textbook formula; tests/test_stats.py checks them against scipy (which the
test extra has) so the clinic install can do without it.
"""

from __future__ import annotations

import math

import numpy as np


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t (bisection on t_cdf; |error| < 1e-10)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def pearson(x: np.ndarray, y: np.ndarray) -> dict:
    """r with its Fisher-z 95 % CI."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    r = float(np.corrcoef(x, y)[0, 1])
    z, se = math.atanh(max(min(r, 0.999999), -0.999999)), 1 / math.sqrt(max(n - 3, 1))
    return {"r": r, "ci95": [math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)], "n": n}


def lin_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient (agreement, not just correlation)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sxy = float(np.mean((x - x.mean()) * (y - y.mean())))
    return 2 * sxy / (float(x.var()) + float(y.var()) + float(x.mean() - y.mean()) ** 2)


def icc_a1(x: np.ndarray, y: np.ndarray) -> float:
    """ICC(A,1): two-way, absolute agreement, single measurement (McGraw and Wong)."""
    data = np.stack([np.asarray(x, float), np.asarray(y, float)], axis=1)
    n, k = data.shape
    grand = data.mean()
    msr = k * float(((data.mean(axis=1) - grand) ** 2).sum()) / (n - 1)
    msc = n * float(((data.mean(axis=0) - grand) ** 2).sum()) / (k - 1)
    sse = float(((data - data.mean(axis=1, keepdims=True) - data.mean(axis=0, keepdims=True) + grand) ** 2).sum())
    mse = sse / ((n - 1) * (k - 1))
    return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)


def linregress(x: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares line of y on x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    return {"slope": slope, "intercept": float(y.mean() - slope * x.mean())}


def bland_altman(est: np.ndarray, ref: np.ndarray) -> dict:
    d = np.asarray(est, float) - np.asarray(ref, float)
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"bias": bias, "sd": sd, "loa": [bias - 1.96 * sd, bias + 1.96 * sd]}


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """AUC by the Mann-Whitney statistic (mid-ranks for ties); None without both classes."""
    score, positive = np.asarray(score, float), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), float)
    s = score[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
