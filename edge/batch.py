"""Screen every image under a folder into one CSV, a row per file, errors included.

Rows are appended one whole line at a time (O_APPEND, fsync), so a killed run loses nothing it
had finished; `resume` skips files already in the CSV and drops a half-written last line.
Reading and decoding the next films runs in a thread while the model works on the current one.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .reader import ReadError, read_film
from .screen import Options, Screener, write_overlay

COLUMNS = ["file", "status", "error_kind", "error", "flag", "reasons", "thigh_muscle_area_cm2", "right_cm2", "left_cm2",
           "thigh_muscle_area_px", "smi_estimate", "smi_low", "smi_high", "criteria", "cutoff", "category", "sex",
           "sex_source", "height_m", "height_source", "pixel_spacing_mm", "pixel_spacing_source",
           "segmentation_confidence", "model_version"]
PREFETCH = 2


def find_images(folder: Path, exclude: tuple[Path, ...] = ()) -> list[Path]:
    """Every regular file under `folder`, recursively, in a stable order (hidden files skipped)."""
    ex = {p.resolve() for p in exclude}
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() not in ex)
        for n in sorted(names):
            p = Path(root) / n
            if not n.startswith(".") and p.is_file() and p.resolve() not in ex:
                files.append(p)
    return files


def overlay_name(rel: str) -> str:
    """A flat, safe, unique file name for a relative input path.

    Readable part: the path with anything outside [A-Za-z0-9._-] replaced (it cannot leave the
    overlays folder, and is cut to 120 characters); unique part: 12 hex digits of the sha256 of
    the exact path bytes, so `x y` / `x_y`, `é` / `è`, `sub/a` / `sub__a` and long names that
    share their first characters never overwrite each other.
    """
    flat = re.sub(r"[^A-Za-z0-9._-]+", "_", rel.replace(os.sep, "__").replace("/", "__")).strip("._") or "film"
    digest = hashlib.sha256(os.fsencode(rel)).hexdigest()[:12]
    return f"{flat[:120]}-{digest}.png"


def _done_files(out_csv: Path) -> set[str]:
    """Files already in the CSV; a torn last line (killed mid-write) is cut off first."""
    if not out_csv.exists():
        return set()
    data = out_csv.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(out_csv, "r+b") as f:
            f.truncate(keep)
        data = data[:keep]
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return {r["file"] for r in rows}


def _line(row: dict) -> bytes:
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n").writerow({k: row.get(k, "") for k in COLUMNS})
    return buf.getvalue().encode("utf-8")


def _append(fd: int, data: bytes) -> None:
    os.write(fd, data)
    os.fsync(fd)


def _row(rel: str, rep: dict) -> dict:
    lo, hi = rep["smi_interval_95"] or ("", "")
    return {"file": rel, "status": "ok", "flag": rep["flag"], "reasons": "; ".join(rep["reasons"]),
            "thigh_muscle_area_cm2": rep["thigh_muscle_area_cm2"], "right_cm2": rep["right_cm2"],
            "left_cm2": rep["left_cm2"], "thigh_muscle_area_px": rep["thigh_muscle_area_px"],
            "smi_estimate": rep["smi_estimate"], "smi_low": lo, "smi_high": hi, "criteria": rep["criteria"],
            "cutoff": rep["cutoff"], "category": rep.get("category", ""), "sex": rep["sex"],
            "sex_source": rep["sex_source"], "height_m": rep["height_m"], "height_source": rep["height_source"],
            "pixel_spacing_mm": (rep["pixel_spacing_mm"] or [""])[0], "pixel_spacing_source": rep["pixel_spacing_source"],
            "segmentation_confidence": rep["quality"]["segmentation_confidence"],
            "model_version": f"{rep['model']['name']} {rep['model']['version']} {rep['model']['precision']}"}


def run_batch(folder: Path, out_csv: Path, opts: Options, screener: Screener, overlays: Path | None = None,
              resume: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    folder, out_csv = Path(folder), Path(out_csv)
    if out_csv.exists() and not resume:
        raise FileExistsError(f"{out_csv.name} exists; pass --resume to continue it or choose another --out")
    exclude = tuple(p for p in (out_csv, overlays) if p)
    files = find_images(folder, exclude)
    done = _done_files(out_csv) if resume else set()
    todo = [f for f in files if f.relative_to(folder).as_posix() not in done]
    if overlays:
        overlays.mkdir(parents=True, exist_ok=True)
    counts = {"files": len(files), "skipped_done": len(files) - len(todo), "screened": 0, "low_muscle_mass": 0,
              "borderline": 0, "normal": 0, "not_assessable": 0, "errors": 0}
    new = not out_csv.exists() or out_csv.stat().st_size == 0
    fd = os.open(out_csv, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if new:
            _append(fd, (",".join(COLUMNS) + "\n").encode())

        def load(p: Path):
            try:
                return read_film(p, spacing_mm=opts.spacing_mm)
            except ReadError as e:
                return e

        with ThreadPoolExecutor(max_workers=PREFETCH) as pool:
            futures = [pool.submit(load, p) for p in todo[:PREFETCH]]
            for i, path in enumerate(todo):
                if i + PREFETCH < len(todo):
                    futures.append(pool.submit(load, todo[i + PREFETCH]))
                film = futures[i].result()
                futures[i] = None
                rel = path.relative_to(folder).as_posix()
                if isinstance(film, ReadError):
                    row = {"file": rel, "status": "error", "error_kind": film.kind, "error": str(film)}
                    counts["errors"] += 1
                else:
                    res = screener.screen(path, opts, film)
                    row = _row(rel, res.report)
                    counts["screened"] += 1
                    counts[res.report["flag"]] += 1
                    if overlays:
                        write_overlay(overlays / overlay_name(rel), res.film, res.mask, res.report)
                _append(fd, _line(row))
                if progress:
                    progress(i + 1, len(todo))
    finally:
        os.close(fd)
    return counts
