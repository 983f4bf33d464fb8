"""A cohort on disk (PHANTOM.md layout, or a site's own in the same layout) and a cache of
preprocessed arrays, so that training reads each film once, through edge's reader and
preprocessing: the model sees exactly the pixels the clinic will give it.

It lives in edge (numpy and OpenCV only) because training, quantization and evaluation all read
cohorts the same way, and train and quantize may not import each other.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .preprocess import DEFAULT_SIZE, resize_mask, to_model_input
from .reader import read_film

PREP_VERSION = "1"


@dataclass(frozen=True)
class Case:
    case_id: str
    person_id: str
    image: Path
    mask: Path | None
    split: str
    sex: str | None
    height_m: float | None
    dexa_smi: float | None
    view: str
    row: dict


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def raster_spacing(case: Case) -> float | None:
    """A raster film (PNG, JPEG, TIFF) has no header: its spacing comes from cases.csv
    (pixel_spacing_mm), as a user would give --spacing-mm. DICOM keeps its own header's."""
    if case.image.suffix.lower() in (".dcm", ""):
        return None
    try:
        return float(case.row.get("pixel_spacing_mm") or "") or None
    except ValueError:
        return None


def load_cases(cohort: Path, split: str | None = None) -> list[Case]:
    """Rows of cases.csv; `split` may be 'train', 'val', 'test', 'train+val' or None for all."""
    cohort = Path(cohort)
    with open(cohort / "cases.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    wanted = None if split is None else set(split.split("+"))
    out = []
    for r in rows:
        if wanted and r.get("split") not in wanted:
            continue
        out.append(
            Case(
                case_id=r["case_id"],
                person_id=r.get("person_id") or r["case_id"],
                image=cohort / r["image"],
                mask=(cohort / r["mask"]) if r.get("mask") else None,
                split=r.get("split", ""),
                sex=r.get("sex") or None,
                height_m=_float(r.get("height_m")),
                dexa_smi=_float(r.get("dexa_smi")),
                view=r.get("view") or "both",
                row=r,
            )
        )
    return out


def read_mask(case: Case) -> np.ndarray:
    m = cv2.imread(str(case.mask), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise FileNotFoundError(f"mask of {case.case_id} unreadable: {case.mask}")
    return m


def cache_dir(cohort: Path, size: tuple[int, int]) -> Path:
    """Where a cohort's preprocessed arrays for one model input size are cached."""
    return Path(cohort) / ".cache" / f"prep{PREP_VERSION}_{size[0]}x{size[1]}"


def _key(case: Case, size: tuple[int, int]) -> str:
    st = case.image.stat()
    h = hashlib.sha1(f"{PREP_VERSION}|{size}|{case.image.name}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return f"{case.case_id}_{h}.npz"


def cached_arrays(
    cases: list[Case], cache: Path, size: tuple[int, int] = DEFAULT_SIZE, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) float16 model inputs and (N, H, W) uint8 label maps, built once and cached."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    xs = np.empty((len(cases), *size), np.float16)
    ys = np.empty((len(cases), *size), np.uint8)
    for i, case in enumerate(cases):
        f = cache / _key(case, size)
        if f.exists():
            with np.load(f) as z:
                xs[i], ys[i] = z["x"], z["y"]
        else:
            film = read_film(case.image)
            x, box = to_model_input(film.pixels, size)
            y = resize_mask(read_mask(case), box)
            xs[i], ys[i] = x[0, 0], y
            tmp = f.with_suffix(".tmp.npz")
            np.savez(tmp, x=xs[i], y=ys[i])
            tmp.replace(f)
        if progress:
            progress(i + 1, len(cases))
    return xs, ys


def dataset_info(cohort: Path) -> dict:
    p = Path(cohort) / "dataset.json"
    return json.loads(p.read_text()) if p.exists() else {}
