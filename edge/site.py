"""A site's own calibration and validation, on the clinic install (no torch).

`sarco-edge calibrate FOLDER --dexa dexa.csv --out DIR` screens the listed films with the
current bundle, fits area -> SMI and the decision thresholds on them (edge.calibration) and
writes a new bundle (same model files, new manifest), recorded in the site trust store.
`sarco-edge validate FOLDER --dexa dexa.csv --out REPORT_DIR` measures how a bundle agrees
with the site's DEXA, as JSON and an HTML page.

dexa.csv columns: file (relative to FOLDER), person (a pseudonymous key), sex (F/M), height_cm
(or height_m), dexa_smi (kg/m2); optional alm_kg, days_between (film to DEXA).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .bundle import MANIFEST, sha256, trust_bundle
from .calibration import calibrate
from .criteria import CRITERIA
from .decision import Flag
from .files import write_text_atomic
from .reader import ReadError, read_film
from .screen import NO_CALIBRATION, Options, Screener
from .site_report import render_validation, validation_report

# Why these minimums: 4 coefficients and 5 person-grouped folds need at least 6 people per fold;
# the sex coefficient needs both sexes well represented; a 90 % sensitivity threshold needs at
# least 10 films under the cut-off to be more than one film's worth of granularity.
MIN_PEOPLE = 30
MIN_FILMS = 40
MIN_PEOPLE_PER_SEX = 10
MIN_EACH_SIDE_OF_CUTOFF = 10
SMI_RANGE = (2.5, 13.0)  # kg/m2: outside this a DEXA SMI is a typo or a unit error
HEIGHT_RANGE_M = (1.2, 2.1)
MAX_DAYS_APART = 180


class SiteError(Exception):
    """The site data cannot be used; str(e) is one line that says what to fix."""


@dataclass(frozen=True)
class DexaRow:
    file: str
    person: str
    sex: str
    height_m: float
    dexa_smi: float
    days_between: float | None


def read_dexa_csv(path: Path) -> list[DexaRow]:
    """Rows of dexa.csv, each checked; SiteError naming the rows that are out of range."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            raw = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise SiteError(f"{Path(path).name} cannot be read ({type(e).__name__})") from None
    if not raw:
        raise SiteError(f"{Path(path).name} has no rows")
    cols = set(raw[0])
    missing = {"file", "person", "sex", "dexa_smi"} - cols
    if missing or not ({"height_cm", "height_m"} & cols):
        raise SiteError(
            f"{Path(path).name} needs columns file, person, sex, height_cm (or height_m), dexa_smi; "
            f"missing: {', '.join(sorted(missing | ({'height_cm'} if not {'height_cm', 'height_m'} & cols else set())))}"
        )
    rows, bad = [], []
    for i, r in enumerate(raw, start=2):
        try:
            h = float(r["height_cm"]) / 100 if r.get("height_cm") not in (None, "") else float(r["height_m"])
            smi = float(r["dexa_smi"])
            days = float(r["days_between"]) if r.get("days_between") not in (None, "") else None
            sex = (r["sex"] or "").strip().upper()
            ok = (
                sex in ("F", "M")
                and SMI_RANGE[0] <= smi <= SMI_RANGE[1]
                and HEIGHT_RANGE_M[0] <= h <= HEIGHT_RANGE_M[1]
                and (days is None or abs(days) <= MAX_DAYS_APART)
                and r["file"]
                and r["person"]
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            bad.append(i)
            continue
        rows.append(DexaRow(r["file"].strip(), r["person"].strip(), sex, h, smi, days))
    if bad:
        raise SiteError(
            f"{len(bad)} row(s) of {Path(path).name} out of range or incomplete (lines "
            f"{', '.join(map(str, bad[:8]))}{'...' if len(bad) > 8 else ''}): sex F/M, height "
            f"{HEIGHT_RANGE_M[0]}-{HEIGHT_RANGE_M[1]} m, DEXA SMI {SMI_RANGE[0]}-{SMI_RANGE[1]} kg/m2, "
            f"at most {MAX_DAYS_APART} days between film and DEXA"
        )
    return rows


@dataclass
class Measured:
    row: DexaRow
    area: float | None = None
    right: float | None = None
    left: float | None = None
    sides_seen: int = 0
    refused: str | None = None


def measure(
    folder: Path,
    rows: list[DexaRow],
    screener: Screener,
    spacing_mm: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Measured]:
    """Screen each listed film as `screen` would (same gate); a film that cannot be used says why.
    A bundle without a calibration may still be calibrated: that one reason does not count."""
    out = []
    for k, r in enumerate(rows):
        m = Measured(r)
        path = Path(folder) / r.file
        try:
            film = read_film(path, spacing_mm=spacing_mm)
        except ReadError as e:
            m.refused = f"cannot be read: {e}"
        else:
            rep = screener.screen(film, Options(sex=r.sex, height_cm=r.height_m * 100)).report
            reasons = [x for x in rep.reasons if x != NO_CALIBRATION]
            if reasons:
                m.refused = "; ".join(reasons)
            else:
                m.area, m.right, m.left = rep.thigh_muscle_area_cm2, rep.right_cm2, rep.left_cm2
                m.sides_seen = rep.sides_seen
        out.append(m)
        if progress:
            progress(k + 1, len(rows))
    return out


def site_calibrate(
    folder: Path,
    dexa: Path,
    out: Path,
    screener: Screener,
    spacing_mm: float | None = None,
    skip_unusable: bool = False,
    progress=None,
) -> dict:
    rows = read_dexa_csv(dexa)
    if Path(out).exists():
        raise SiteError(f"{Path(out).name} exists: choose a new folder for the site bundle")
    measured = measure(folder, rows, screener, spacing_mm, progress)
    refused = [m for m in measured if m.refused]
    both, people = _usable(measured, refused, skip_unusable)
    fitted = calibrate(
        [m.area for m in both],
        [m.row.sex for m in both],
        [m.row.height_m for m in both],
        [m.row.dexa_smi for m in both],
        [m.row.person for m in both],
        right=[m.right for m in both],
        left=[m.left for m in both],
    )
    src = screener.bundle
    manifest, card = _site_manifest(src, fitted, refused, len(both), len(people))
    _write_bundle(src, Path(out), manifest, card)
    trust_bundle(Path(out))
    return {"films": len(both), "people": len(people), "excluded": len(refused), **fitted}


def _usable(measured: list[Measured], refused: list[Measured], skip_unusable: bool) -> tuple[list[Measured], set]:
    """The films that can fit a calibration (both thighs) and their people; SiteError with the
    minimum and why when there are too few, or when unusable films are not to be skipped."""
    if refused and not skip_unusable:
        names = ", ".join(m.row.file for m in refused[:5])
        raise SiteError(
            f"{len(refused)} film(s) cannot be read or assessed ({names}{'...' if len(refused) > 5 else ''}); "
            "fix or remove them, or pass --skip-unusable to calibrate without them"
        )
    both = [m for m in measured if not m.refused and m.sides_seen == 2]
    people = {m.row.person for m in both}
    if len(both) < MIN_FILMS or len(people) < MIN_PEOPLE:
        raise SiteError(
            f"too few usable films showing both thighs: {len(both)} films of {len(people)} people; at least "
            f"{MIN_FILMS} films of {MIN_PEOPLE} people are needed (5 person-grouped folds for 4 coefficients)"
        )
    for sex in ("F", "M"):
        n = len({m.row.person for m in both if m.row.sex == sex})
        if 0 < n < MIN_PEOPLE_PER_SEX:
            raise SiteError(
                f"only {n} {'women' if sex == 'F' else 'men'} with usable films: at least {MIN_PEOPLE_PER_SEX} "
                "per sex are needed to fit the sex term (or leave that sex out of dexa.csv)"
            )
    cut = CRITERIA["awgs2019"].smi
    n_low = sum(m.row.dexa_smi < cut[m.row.sex] for m in both)
    if min(n_low, len(both) - n_low) < MIN_EACH_SIDE_OF_CUTOFF:
        raise SiteError(
            f"{n_low} films under and {len(both) - n_low} over the AWGS 2019 cut-off: at least "
            f"{MIN_EACH_SIDE_OF_CUTOFF} on each side are needed to choose the decision thresholds"
        )
    return both, people


def _site_manifest(src, fitted: dict, refused: list[Measured], n_films: int, n_people: int) -> tuple[dict, str]:
    """The site bundle's manifest (the new calibration and thresholds) and its model card."""
    manifest = json.loads((src.root / MANIFEST).read_text())
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest.update(
        {
            "name": f"{manifest['name']}-site",
            "smi_calibration": {
                **fitted["calibration"],
                "area_source": "model",
                "fit_on": "site films showing both thighs",
            },
            "decision": fitted["decision"],
            "site_calibration": {
                **fitted["report"],
                "created": when,
                "from_bundle_manifest_sha256": src.digest,
                "excluded": [{"file": m.row.file, "reason": m.refused} for m in refused],
            },
            "calibration_report": None,
        }
    )
    card = (src.root / src.manifest["files"]["card"]).read_text() + (
        f"\n## Site calibration ({when})\n\nRefitted by `sarco-edge calibrate` on {n_films} films of {n_people} "
        f"people of this site ({fitted['report']['form']} form). The model files are unchanged.\n"
    )
    return manifest, card


def _write_bundle(src, out: Path, manifest: dict, card: str) -> None:
    """Copy the model files, write card and manifest with fresh sha256, then one rename."""
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    files = src.manifest["files"]
    for key in ("model_xml", "model_bin"):
        shutil.copyfile(src.root / files[key], tmp / files[key])
    (tmp / files["card"]).write_text(card)
    manifest["sha256"] = {name: sha256(tmp / name) for name in sorted(set(files.values()))}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    tmp.rename(out)


def site_validate(
    folder: Path,
    dexa: Path,
    out: Path,
    screener: Screener,
    criteria: str = "awgs2019",
    spacing_mm: float | None = None,
    progress=None,
) -> dict:
    rows = read_dexa_csv(dexa)
    res = []
    for k, r in enumerate(rows):
        try:
            film = read_film(Path(folder) / r.file, spacing_mm=spacing_mm)
        except ReadError as e:
            res.append((r, None, f"cannot be read ({e.kind})"))
        else:
            opts = Options(sex=r.sex, height_cm=r.height_m * 100, criteria=criteria)
            rep = screener.screen(film, opts).report.to_dict()
            res.append((r, rep, None if rep["flag"] != Flag.NOT_ASSESSABLE.value else "; ".join(rep["reasons"])))
        if progress:
            progress(k + 1, len(rows))
    report = validation_report(res, criteria)
    report["bundle"] = {k: screener.model_info[k] for k in ("name", "version", "precision", "manifest_sha256", "trust")}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "validation.json", json.dumps(report, indent=2))
    render_validation(res, report, out)
    return report
