"""Generator 2's cohort on disk: the same layout, label values and columns as generator 1
(cohort.py), films rendered by v2_body and v2_scene, exported as DICOM or 8-bit PNG/JPEG.

The population, its muscle-mass split and the DEXA truth are generator 1's (person.py, i.e.
PHANTOM.md); generator 2 adds per-person shape traits (v2_body.Shape) drawn from their own
seed. Every film's randomness comes from (cohort seed, person, film), so the cohort is the same
for any number of workers. Raster films carry their true pixel spacing in cases.csv
(pixel_spacing_mm), which `sarco evaluate` passes to the reader for films without a header.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.files import write_csv_atomic

from . import GENERATOR_NAME
from .anatomy import LABELS, SIDE_CODE
from .cohort import (
    AWGS2019_SMI,
    COMPRESSION,
    PREVIEW_FILMS,
    SPLITS,
    _thumbnail,
    assign_splits,
    ceiling,
    person_cells,
    plan_people,
    truth_cells,
    write_dataset_info,
)
from .dicom_writer import build_dataset, write_dicom
from .film import rotate
from .person import Person
from .v2_body import Shape, build_body, path_lengths, sample_shape2, with_stance
from .v2_scene import (
    Acq2,
    attenuation,
    burn_text,
    detector,
    display,
    film_grid,
    objects_in_beam,
    sample_acq2,
    shutters,
    stitch,
)

GENERATOR2_VERSION = "2.0.0"


@dataclass(frozen=True)
class Task2:
    case_id: str
    person: Person
    shape: Shape
    person_index: int
    film_index: int
    view: str
    seed: int
    out: Path
    thumbnail: bool
    compress: str = "none"


def render2(p: Person, sh: Shape, a: Acq2, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displayed image in [0, 1] (bone bright, before export), label map and side map."""
    grid = film_grid(a)
    body = build_body(grid, p, sh, rng, a.plate_cm)
    P = attenuation(path_lengths(body), p, a.energy_kev)
    labels, side = body.labels, body.side
    if a.rotation_deg:
        P, labels, side = rotate(P, labels, side, a.rotation_deg)
    body_P = P.copy()
    objects_in_beam(P, grid, a, p, rng)
    _, beam = stitch([P, body_P, labels, side], a, grid.rows, rng)
    shut = shutters(a, grid)
    P[shut] += 7.0
    labels[shut] = 0
    side[shut] = 0
    log_img = detector(P, body_P, beam, a, labels == LABELS["thigh_muscle"], rng)
    v = display(log_img, a, rng)
    burn_text(v, a, rng)
    if a.crop:
        mid = int((0.0 - grid.x0) / grid.s) + int(rng.uniform(-3.0, 3.0) / grid.s)
        mid = int(np.clip(mid, 1, grid.cols - 1))
        cs = slice(0, mid) if a.crop == "R" else slice(mid, grid.cols)
        v, labels, side = v[:, cs], labels[:, cs], side[:, cs]
    return np.ascontiguousarray(v), np.ascontiguousarray(labels), np.ascontiguousarray(side)


def export(v: np.ndarray, a: Acq2, path_stem: Path, p: Person, case_id: str, seed: int, compress: str) -> tuple:
    """Write the film; returns (relative image name, stored array, bits)."""
    if a.fmt == "dcm":
        top = (1 << a.bits) - 1
        stored = np.rint(v * top).astype(np.uint16)
        if a.monochrome1:
            stored = (top - stored).astype(np.uint16)
        ds = build_dataset(stored, p, a, case_id, seed, GENERATOR2_VERSION)
        if compress != "none":
            ds.compress(COMPRESSION[compress], generate_instance_uid=False)
        write_dicom(path_stem.with_suffix(".dcm"), ds)
        return f"images/{case_id}.dcm", stored, a.bits
    img = np.rint(v * 255).astype(np.uint8)
    if a.monochrome1:
        img = 255 - img
    path = path_stem.with_suffix("." + a.fmt)
    params = [cv2.IMWRITE_JPEG_QUALITY, a.jpeg_quality] if a.fmt == "jpg" else []
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), img, params):
        raise OSError(f"could not write {path}")
    tmp.replace(path)
    return f"images/{case_id}.{a.fmt}", img.astype(np.uint16), 8


def truths2(labels: np.ndarray, side: np.ndarray, spacing_mm: float) -> dict:
    """Truths measured on the label map, at the film's own (patient-plane) pixel spacing."""
    px = (spacing_mm / 10.0) ** 2
    m1 = labels == LABELS["thigh_muscle"]

    def cm2(mask: np.ndarray) -> float:
        return round(int(np.count_nonzero(mask)) * px, 3)

    return {
        "thigh_muscle_area_cm2": cm2(m1),
        "right_cm2": cm2(m1 & (side == SIDE_CODE["R"])),
        "left_cm2": cm2(m1 & (side == SIDE_CODE["L"])),
        "thigh_fat_area_cm2": cm2(labels == LABELS["thigh_fat"]),
        "calf_muscle_area_cm2": cm2(labels == LABELS["calf_muscle"]),
        "pixel_spacing_mm": round(spacing_mm, 6),
    }


def render_task(task: Task2) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng([task.seed, task.person_index, task.film_index, 2002])
    a = sample_acq2(task.person, task.view, task.shape.foot_drop, rng)
    v, labels, side = render2(task.person, task.shape, a, rng)
    stem = task.out / "images" / task.case_id
    image, stored, bits = export(v, a, stem, task.person, task.case_id, task.seed, task.compress)
    mask_path = task.out / "masks" / f"{task.case_id}.png"
    tmp = mask_path.with_name(mask_path.stem + ".tmp.png")
    if not cv2.imwrite(str(tmp), labels):
        raise OSError(f"could not write {mask_path}")
    tmp.replace(mask_path)
    row = {
        "case_id": task.case_id,
        "image": image,
        **truths2(labels, side, a.pixel_spacing_mm),
        "seconds": time.perf_counter() - t0,
        "acq": a,
        "n_rows": v.shape[0],
        "n_cols": v.shape[1],
    }
    if task.thumbnail:
        view = a.crop or a.view
        row["thumb"] = _thumbnail(stored, bits, a.monochrome1, labels, task.case_id, task.person.sex, view)
    return row


def plan_tasks(out: Path, n: int, seed: int, preview: bool, compress: str) -> tuple[list[Task2], list[str]]:
    plan = plan_people(n, seed)
    splits = assign_splits(len(plan), seed)
    tasks: list[Task2] = []
    for pi, (person, views) in enumerate(plan):
        shape = sample_shape2(person, np.random.default_rng([seed, pi, 2001]))
        person = with_stance(person, shape)
        for fi, view in enumerate(views):
            case_id = f"case_{person.person_id}_{fi + 1}"
            thumb = preview and len(tasks) < PREVIEW_FILMS
            tasks.append(Task2(case_id, person, shape, pi, fi, view, seed, out, thumb, compress))
    return tasks, splits


def case_row(task: Task2, res: dict, split: str) -> dict:
    p, a, sh = task.person, res["acq"], task.shape
    return {
        "case_id": task.case_id,
        "person_id": p.person_id,
        "image": res["image"],
        "mask": f"masks/{task.case_id}.png",
        **person_cells(p),
        "split": split,
        "view": a.crop or a.view,
        **truth_cells(p, res),
        "imager_pixel_spacing_mm": a.spacing_mm,
        "magnification": a.magnification,
        "rows": res["n_rows"],
        "cols": res["n_cols"],
        "format": a.fmt,
        "film_view": a.view,
        "crop": a.crop,
        "energy_kev": round(a.energy_kev, 2),
        "bits_stored": a.bits,
        "photometric": "MONOCHROME1" if a.monochrome1 else "MONOCHROME2",
        "implant": next((leg.implant + "_" + leg.side for leg in p.legs if leg.implant), ""),
        "exposures": a.exposures,
        "ruler": a.ruler_x is not None,
        "markers": a.markers,
        "gonad_shield": a.shield,
        "grid_cm": a.grid_cm,
        "clahe": round(a.clahe, 3),
        "rotation_deg": round(a.rotation_deg, 2),
        "collimation_cm": str(tuple(round(c, 2) for c in a.collimation_cm)),
        "vh_blend": round(sh.blend, 3),
        "vh_aspect": round(sh.aspect, 3),
        "depth_ratio": round(p.depth_ratio, 3),
        "fat_mid_cm": round(p.fat_mid_cm, 2),
        "myosteatosis": round(p.myosteatosis, 3),
    }


def _run(tasks: list[Task2], workers: int, progress) -> list[dict]:
    results: list[dict] = []
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            for res in pool.imap(render_task, tasks, chunksize=1):
                results.append(res)
                if progress:
                    progress(len(results), len(tasks))
        return results
    for task in tasks:
        results.append(render_task(task))
        if progress:
            progress(len(results), len(tasks))
    return results


def generate2(
    out: Path, n: int, seed: int, workers: int = 1, preview: bool = True, progress=None, compress: str = "none"
) -> dict:
    """Write a generator-2 cohort; returns the dataset.json content."""
    out = Path(out)
    if (out / "dataset.json").exists():
        raise FileExistsError(f"{out} already holds a cohort (dataset.json); choose a new folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    tasks, splits = plan_tasks(out, n, seed, preview, compress)
    t0 = time.perf_counter()
    results = _run(tasks, workers, progress)
    wall = time.perf_counter() - t0
    rows = [case_row(t, r, splits[t.person_index]) for t, r in zip(tasks, results)]
    write_csv_atomic(out / "cases.csv", rows)
    people = {r["person_id"]: r for r in rows}
    low = [r for r in people.values() if r["dexa_smi"] < AWGS2019_SMI[r["sex"]]]
    secs = np.array([r["seconds"] for r in results])
    info = {
        "name": out.name,
        "description": "Synthetic standing AP long-leg radiographs, generator 2: Visible Human thigh muscle "
        "sections, full pelvis and spine, clutter, stitching, display processing, DICOM and 8-bit exports.",
        "labels": dict(LABELS),
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR2_VERSION, "generation": 2},
        "parameters": {"n": n, "seed": seed, "compress": compress, "spacing": "sampled per film, 0.14-1.5 mm"},
        "anatomy_source": "Visible Human thigh sections, Andreassen et al., Sci Data 10:34 (2023), CC BY 4.0",
        "seed": seed,
        "n_films": len(rows),
        "n_people": len(people),
        "splits": {s: sum(1 for r in rows if r["split"] == s) for s, _ in SPLITS},
        "formats": {f: sum(1 for r in rows if r["format"] == f) for f in ("dcm", "png", "jpg")},
        "ceiling": ceiling(rows),
        "awgs2019_low_smi_share": round(len(low) / max(len(people), 1), 4),
        "timing": {"median_s_per_film": round(float(np.median(secs)), 3), "workers": workers, "wall_s": round(wall, 2)},
    }
    write_dataset_info(out, info, results)
    return info
