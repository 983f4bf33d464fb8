"""Generate a cohort on disk in the layout of PHANTOM.md (dataset.json, cases.csv, images/, masks/).

Every film's randomness comes from its own seed sequence (cohort seed, person, film), so the
cohort is identical whatever the number of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydicom.uid import JPEG2000Lossless, RLELossless

from edge.criteria import CRITERIA
from edge.files import write_csv_atomic, write_text_atomic

from . import GENERATOR_NAME, GENERATOR_VERSION
from .anatomy import LABELS
from .dicom_writer import build_dataset, write_dicom
from .film import render, sample_acquisition, truths
from .person import Person, sample_person

AWGS2019_SMI = CRITERIA["awgs2019"].smi  # the cut-offs live in edge.criteria
FILMS_PER_PERSON = ([1, 2, 3, 4], [0.35, 0.25, 0.25, 0.15])  # mean 2.2, like 351 films of 157 people
SPLITS = (("train", 0.70), ("val", 0.15), ("test", 0.15))
PREVIEW_FILMS = 12
COMPRESSION = {"rle": RLELossless, "j2k": JPEG2000Lossless}


@dataclass(frozen=True)
class FilmTask:
    case_id: str
    person: Person
    person_index: int
    film_index: int
    view: str
    seed: int
    spacing_mm: float
    out: Path
    thumbnail: bool
    compress: str = "none"


def plan_people(n_films: int, seed: int) -> list[tuple[Person, list[str]]]:
    """People and the views of their films, until exactly n_films films are planned."""
    plan: list[tuple[Person, list[str]]] = []
    total, i = 0, 0
    while total < n_films:
        rng = np.random.default_rng([seed, i])
        person = sample_person(rng, f"{i + 1:05d}")
        k = int(rng.choice(FILMS_PER_PERSON[0], p=FILMS_PER_PERSON[1]))
        k = min(k, n_films - total)
        views = ["both"]
        for _ in range(k - 1):
            views.append("both" if rng.random() < 0.6 else str(rng.choice(["R", "L"])))
        plan.append((person, views))
        total += k
        i += 1
    return plan


def assign_splits(n_people: int, seed: int) -> list[str]:
    """Person-level split: all films of one person fall in the same split."""
    order = np.random.default_rng([seed, 99991]).permutation(n_people)
    n_val = max(int(round(SPLITS[1][1] * n_people)), 1 if n_people >= 3 else 0)
    n_test = max(int(round(SPLITS[2][1] * n_people)), 1 if n_people >= 3 else 0)
    out = ["train"] * n_people
    for j, idx in enumerate(order):
        if j < n_test:
            out[idx] = "test"
        elif j < n_test + n_val:
            out[idx] = "val"
    return out


def _render_one(task: FilmTask) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng([task.seed, task.person_index, task.film_index, 7])
    acq = sample_acquisition(task.person, rng, task.spacing_mm, task.view)
    stored, proj = render(task.person, acq, rng)
    ds = build_dataset(stored, task.person, acq, task.case_id, task.seed, GENERATOR_VERSION)
    if task.compress != "none":
        # generate_instance_uid=False: the UIDs come from the seed (build_dataset), so the same
        # seed gives the same bytes with any --compress.
        ds.compress(COMPRESSION[task.compress], generate_instance_uid=False)
    write_dicom(task.out / "images" / f"{task.case_id}.dcm", ds)
    mask_path = task.out / "masks" / f"{task.case_id}.png"
    tmp = mask_path.with_name(mask_path.stem + ".tmp.png")
    if not cv2.imwrite(str(tmp), proj.labels):
        raise OSError(f"could not write {mask_path}")
    tmp.replace(mask_path)
    seconds = time.perf_counter() - t0
    row = {
        "case_id": task.case_id,
        **truths(proj, acq),
        "seconds": seconds,
        "acq": acq.as_row(),
        "n_rows": stored.shape[0],
        "n_cols": stored.shape[1],
    }
    if task.thumbnail:
        row["thumb"] = _thumbnail(
            stored, acq.bits, acq.monochrome1, proj.labels, task.case_id, task.person.sex, acq.view
        )
    return row


def _thumbnail(
    stored: np.ndarray, bits: int, mono1: bool, labels: np.ndarray, case_id: str, sex: str, view: str, height: int = 640
) -> np.ndarray:
    """Film as displayed (bone bright) beside the same film with the thigh muscle label outlined."""
    v = stored.astype(np.float32) / ((1 << bits) - 1)
    if mono1:
        v = 1.0 - v
    w = max(int(round(stored.shape[1] * height / stored.shape[0])), 1)
    img = cv2.resize((v * 255).astype(np.uint8), (w, height), interpolation=cv2.INTER_AREA)
    lab = cv2.resize(labels, (w, height), interpolation=cv2.INTER_NEAREST)
    plain = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    over = plain.copy()
    for val, colour in (
        (LABELS["thigh_muscle"], (40, 40, 255)),
        (LABELS["thigh_fat"], (0, 220, 255)),
        (LABELS["calf_muscle"], (60, 200, 60)),
    ):
        cnts, _ = cv2.findContours((lab == val).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(over, cnts, -1, colour, 1)
    tile = np.concatenate([plain, over], axis=1)
    cv2.putText(tile, f"{case_id} {sex} {view}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
    return tile


def _contact_sheet(tiles: list[np.ndarray], path: Path, per_row: int = 4) -> None:
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = []
    for i in range(0, len(tiles), per_row):
        row = [np.pad(t, ((0, h - t.shape[0]), (0, w - t.shape[1] + 8), (0, 0))) for t in tiles[i : i + per_row]]
        while len(row) < per_row:
            row.append(np.zeros((h, w + 8, 3), np.uint8))
        rows.append(np.concatenate(row, axis=1))
    cv2.imwrite(str(path), np.concatenate(rows, axis=0))


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def ceiling(rows: list[dict]) -> dict:
    """Pearson r between the true (mask) thigh muscle area and DEXA SMI: the best any model can do.

    Computed on films that show both thighs uncropped by the shutters, pooled and per sex.
    """
    both = [r for r in rows if r["view"] == "both"]
    out: dict = {
        "films": len(both),
        "definition": "Pearson r, mask thigh_muscle_area_cm2 vs dexa_smi, films with view=both",
    }
    for key, sel in (
        ("pooled", both),
        ("F", [r for r in both if r["sex"] == "F"]),
        ("M", [r for r in both if r["sex"] == "M"]),
    ):
        x = np.array([r["thigh_muscle_area_cm2"] for r in sel], float)
        y = np.array([r["dexa_smi"] for r in sel], float)
        r_val = pearson(x, y)
        out[f"r_{key}"] = None if r_val is None else round(r_val, 4)
        out[f"n_{key}"] = len(sel)
    return out


def person_cells(p) -> dict:
    """The person's columns of cases.csv (both generators write them in this order)."""
    return {
        "sex": p.sex,
        "age": p.age,
        "height_m": p.height_m,
        "weight_kg": p.weight_kg,
        "dexa_alm_kg": round(p.dexa_alm_kg, 3),
        "dexa_smi": round(p.dexa_smi, 4),
    }


def truth_cells(p, res: dict) -> dict:
    """The film's truth columns: label areas on the native grid, the person's muscle masses, spacing."""
    return {
        "thigh_muscle_area_cm2": res["thigh_muscle_area_cm2"],
        "right_cm2": res["right_cm2"],
        "left_cm2": res["left_cm2"],
        "thigh_fat_area_cm2": res["thigh_fat_area_cm2"],
        "calf_muscle_area_cm2": res["calf_muscle_area_cm2"],
        "thigh_muscle_volume_cm3": round(p.thigh_muscle_volume_cm3, 1),
        "thigh_muscle_kg": round(sum(leg.thigh_muscle_kg for leg in p.legs), 3),
        "arm_muscle_kg": round(p.arm_muscle_kg, 3),
        "calf_muscle_kg": round(sum(leg.calf_muscle_kg for leg in p.legs), 3),
        "pixel_spacing_mm": res["pixel_spacing_mm"],
    }


def write_dataset_info(out: Path, info: dict, results: list[dict]) -> None:
    """dataset.json (atomically), and preview.png from the first films' thumbnails if any."""
    write_text_atomic(out / "dataset.json", json.dumps(info, indent=2))
    thumbs = [r["thumb"] for r in results if "thumb" in r]
    if thumbs:
        _contact_sheet(thumbs, out / "preview.png")


def generate(
    out: Path,
    n: int,
    seed: int,
    spacing_mm: float = 0.5,
    workers: int = 1,
    preview: bool = True,
    progress=None,
    compress: str = "none",
) -> dict:
    """Write the cohort; returns the dataset.json content."""
    out = Path(out)
    if (out / "dataset.json").exists():
        raise FileExistsError(f"{out} already holds a cohort (dataset.json); choose a new folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    plan = plan_people(n, seed)
    splits = assign_splits(len(plan), seed)
    tasks: list[FilmTask] = []
    for pi, (person, views) in enumerate(plan):
        for fi, view in enumerate(views):
            case_id = f"case_{person.person_id}_{fi + 1}"
            tasks.append(
                FilmTask(
                    case_id,
                    person,
                    pi,
                    fi,
                    view,
                    seed,
                    spacing_mm,
                    out,
                    len(tasks) < PREVIEW_FILMS and preview,
                    compress,
                )
            )
    t0 = time.perf_counter()
    results: list[dict] = []
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            for res in pool.imap(_render_one, tasks, chunksize=1):
                results.append(res)
                if progress:
                    progress(len(results), len(tasks))
    else:
        for task in tasks:
            results.append(_render_one(task))
            if progress:
                progress(len(results), len(tasks))
    wall = time.perf_counter() - t0

    rows = []
    for task, res in zip(tasks, results):
        p = task.person
        acq = res["acq"]
        pi = task.person_index
        rows.append(
            {
                "case_id": task.case_id,
                "person_id": p.person_id,
                "image": f"images/{task.case_id}.dcm",
                "mask": f"masks/{task.case_id}.png",
                **person_cells(p),
                "split": splits[pi],
                "view": task.view,
                **truth_cells(p, res),
                "imager_pixel_spacing_mm": spacing_mm,
                "magnification": round(acq["magnification"], 4),
                "rows": res["n_rows"],
                "cols": res["n_cols"],
                "energy_kev": round(acq["energy_kev"], 2),
                "bits_stored": acq["bits"],
                "photometric": "MONOCHROME1" if acq["monochrome1"] else "MONOCHROME2",
                "implant": next((l.implant + "_" + l.side for l in p.legs if l.implant), ""),
                "exposures": acq["exposures"],
                "ruler": acq["ruler_x"] is not None,
                "markers": acq["markers"],
                "gonad_shield": acq["gonad_shield"],
                "rotation_deg": round(acq["rotation_deg"], 2),
                "cropped_top": acq["cropped_top"],
                "cropped_bottom": acq["cropped_bottom"],
                "collimation_cm": acq["collimation_cm"],
                "depth_ratio": round(p.depth_ratio, 3),
                "fat_mid_cm": round(p.fat_mid_cm, 2),
                "myosteatosis": round(p.myosteatosis, 3),
            }
        )
    write_csv_atomic(out / "cases.csv", rows)

    people = {r["person_id"]: r for r in rows}
    low = [r for r in people.values() if r["dexa_smi"] < AWGS2019_SMI[r["sex"]]]
    secs = np.array([r["seconds"] for r in results])
    info = {
        "name": out.name,
        "description": "Synthetic standing AP long-leg radiographs with thigh-muscle labels and DEXA truth (PHANTOM.md).",
        "labels": dict(LABELS),
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        "parameters": {"n": n, "seed": seed, "imager_pixel_spacing_mm": spacing_mm, "compress": compress},
        "seed": seed,
        "n_films": len(rows),
        "n_people": len(people),
        "splits": {s: sum(1 for r in rows if r["split"] == s) for s, _ in SPLITS},
        "ceiling": ceiling(rows),
        "awgs2019_low_smi_share": round(len(low) / max(len(people), 1), 4),
        "timing": {"median_s_per_film": round(float(np.median(secs)), 3), "workers": workers, "wall_s": round(wall, 2)},
    }
    write_dataset_info(out, info, results)
    return info
