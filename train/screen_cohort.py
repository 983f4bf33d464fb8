"""Screen every film of a cohort as the clinic would, and count refusals (issue 9's "refused"
share among films that show both thighs).

`sarco evaluate` scores masks (Dice, area error); this runs the clinic's own Screener on each
film instead (bundle, quality gate, decision) with what a user would give: a DICOM's own header,
a raster film's true spacing from cases.csv (as `--spacing-mm`), sex and height from cases.csv.

    sarco screen-cohort COHORT --model models/default --out screened.csv
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from edge.dataset import load_cases, raster_spacing
from edge.files import write_csv_atomic
from edge.reader import read_film
from edge.screen import Options, Screener


def screen_cohort(cohort: Path, model: Path) -> list[dict]:
    scr = Screener(model)
    rows = []
    for c in load_cases(cohort):
        spacing = raster_spacing(c)
        film = read_film(c.image, spacing_mm=spacing)
        height = c.height_m * 100.0 if c.height_m else None
        rep = scr.screen(film, Options(sex=c.sex, height_cm=height, spacing_mm=spacing)).report
        true = float(c.row.get("thigh_muscle_area_cm2") or "nan")
        area = rep.thigh_muscle_area_cm2
        rows.append(
            {
                "case_id": c.case_id,
                "view": c.view,
                "flag": rep.flag,
                "refused": rep.flag == "not_assessable",
                "reasons": " | ".join(rep.reasons),
                "area_cm2": "" if area is None else round(area, 3),
                "area_true_cm2": true,
                "area_err_pct": "" if area is None or not true else round(100.0 * (area - true) / true, 3),
            }
        )
    return rows


def summary(rows: list[dict]) -> list[str]:
    both = [r for r in rows if r["view"] == "both"]
    refused = [r for r in both if r["refused"]]
    lines = [
        f"{len(rows)} films, {len(both)} show both thighs, refused {len(refused)} ({100 * len(refused) / max(len(both), 1):.1f} %)"
    ]
    err = np.array([abs(r["area_err_pct"]) for r in both if not r["refused"] and r["area_err_pct"] != ""], float)
    if err.size:
        lines.append(
            f"assessed two-thigh films: median |area error| {np.median(err):.2f} %, "
            f"90th percentile {np.percentile(err, 90):.2f} % (n={err.size})"
        )
    reasons = collections.Counter(x.split("(")[0].strip() for r in refused for x in r["reasons"].split(" | ") if x)
    lines += [f"  {n:4d}  {reason}" for reason, n in reasons.most_common()]
    return lines


def main(cohort: Path, model: Path, out: Path) -> None:
    """`sarco screen-cohort`: the per-film CSV written atomically, the summary printed."""
    rows = screen_cohort(cohort, model)
    write_csv_atomic(out, rows)
    print("\n".join(summary(rows)))
