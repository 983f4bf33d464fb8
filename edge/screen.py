"""Screen one film: read -> preprocess -> infer -> measure -> SMI estimate -> criteria -> report.

The plain OpenVINO flow. Quality checks come before any flag: a film that is not a long-leg
film, a segmentation the model is unsure of, an implausible area, or missing spacing, sex or
height make the result `not_assessable` with its reasons, never a wrong flag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .bundle import BONE, Bundle, class_probabilities_of_pair, compile_bundle, load_bundle, muscle_of
from .criteria import CRITERIA, category
from .decision import MEANING, Flag, Thresholds, decide
from .files import write_bytes_atomic
from .measure import Areas, femur_shafts, midline, thigh_areas
from .preprocess import Letterbox, mirror, to_film_grid, to_model_input
from .quality import GateConfig, femur_support, femur_width, quality_gate
from .report import Report
from .smi import SmiCalibration

if TYPE_CHECKING:  # the film type only: importing the reader (pydicom) is not this module's start-up cost
    from .reader import Film

DISCLAIMER = (
    "Screening aid, not a diagnosis: the model was trained on synthetic films; a radiograph speaks to "
    "muscle mass only (not strength or performance). The area is the thigh muscle projected on an AP film, "
    "not a CT cross-section. Confirm with DEXA or BIA and grip strength."
)
DEFAULT_CACHE = Path(os.environ.get("SARCO_EDGE_CACHE", Path.home() / ".cache" / "sarco-edge" / "ov"))


@dataclass(frozen=True)
class Options:
    sex: str | None = None
    height_cm: float | None = None
    criteria: str = "awgs2019"
    grip_kg: float | None = None
    gait_mps: float | None = None
    spacing_mm: float | None = None


NO_CALIBRATION = "model bundle carries no SMI calibration or decision thresholds for these criteria"


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray  # thigh muscle, on the film's grid
    confidence: float
    femur_support: float | None  # share of the muscle's rows with bone between its edges
    femur_width_px: float | None = None  # femoral shaft width at mid-thigh, film pixels
    midline: tuple[float, float] | None = None  # between two femurs, film pixels (measure.Areas)


@dataclass
class Result:
    report: Report
    film: Film
    mask: np.ndarray
    areas: Areas | None = None  # the report's areas before rounding (the DICOM SEG splits its sides by them)


class Screener:
    """Loads and verifies the bundle once, compiles once (with the model cache), screens many films."""

    def __init__(
        self,
        model_dir: Path | None = None,
        device: str = "CPU",
        cache_dir: Path | None = DEFAULT_CACHE,
        hint: str | None = None,
        threads: int = 0,
    ) -> None:
        self.bundle: Bundle = load_bundle(model_dir)
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
        self.compiled = compile_bundle(self.bundle, device, cache_dir, hint, threads)
        cal = self.bundle.manifest.get("smi_calibration")
        self.calibration = SmiCalibration.from_dict(cal) if cal else None
        self.thresholds = {k: Thresholds.from_dict(v) for k, v in (self.bundle.manifest.get("decision") or {}).items()}
        self.gate = GateConfig.from_dict(self.bundle.manifest.get("quality_gate"))
        m = self.bundle.manifest
        self.model_info = {
            "name": m["name"],
            "version": m["version"],
            "architecture": m["architecture"],
            "precision": m["precision"],
            "sha256": m["sha256"]["model.bin"],
            "manifest_sha256": self.bundle.digest,
            "trust": self.bundle.trust,
            "device": device,
        }

    def segment(self, film: Film) -> tuple[np.ndarray, float]:
        """Thigh-muscle mask on the film's grid and the model's confidence in it."""
        s = self.segment_full(film)
        return s.mask, s.confidence

    def segment_full(self, film: Film) -> Segmentation:
        """The mask, the model's confidence, and (multi-class models) how well the femur backs it."""
        x, box = to_model_input(film.pixels, self.bundle.input_size)
        out = self.compiled.output(0)
        mirrored = self.compiled(mirror(x))[out]
        return self.segment_logits(box, self.compiled(x)[out], mirrored)

    def segment_logits(self, box: Letterbox, logits: np.ndarray, logits_mirrored: np.ndarray) -> Segmentation:
        """segment_full's second half, from the model's outputs on the input and on its mirror."""
        probs = class_probabilities_of_pair(logits, logits_mirrored)
        prob = muscle_of(probs)
        # Confidence: how decided the model is wherever it sees any muscle (1 = all 0 or 1).
        near = prob > 0.1
        confidence = float(np.mean(np.abs(2 * prob[near] - 1))) if np.any(prob > 0.5) else 0.0
        mask = to_film_grid(prob, box) > 0.5
        if probs.shape[0] <= BONE:  # a binary model: no femur to check against
            return Segmentation(mask, confidence, None)
        inside = np.s_[box.top : box.top + box.height, box.left : box.left + box.width]
        muscle, bone = prob[inside] > 0.5, probs[BONE][inside]
        shafts = femur_shafts(muscle, bone)
        width, line = femur_width(shafts), midline(shafts)
        sy, sx = box.height / box.src_shape[0], box.width / box.src_shape[1]  # model px per film px
        if line is not None:  # model grid (pixel centres) to the film's
            c0, slope = line
            line = ((c0 + slope * (0.5 * sy - 0.5) + 0.5) / sx - 0.5, slope * sy / sx)
        return Segmentation(
            mask, confidence, femur_support(muscle, bone > 0.5), None if width is None else width / sx, line
        )

    def screen(self, film: Film, opts: Options) -> Result:
        """Screen a film the caller has read (reading errors are the caller's to report)."""
        return self.result(film, self.segment_full(film), opts)

    def areas(self, film: Film, seg: Segmentation) -> Areas:
        """The segmentation's areas, the thighs split at the femurs' midline where it has one."""
        return thigh_areas(seg.mask, film.spacing_mm, film.pixels, seg.midline)

    def result(self, film: Film, seg: Segmentation, opts: Options) -> Result:
        areas = self.areas(film, seg)
        report = self.report(film, seg.mask, seg.confidence, opts, seg.femur_support, areas, seg.femur_width_px)
        return Result(report, film, seg.mask, areas)

    def report(
        self,
        film: Film,
        mask: np.ndarray,
        confidence: float,
        opts: Options,
        femur: float | None = None,
        areas: Areas | None = None,
        femur_width_px: float | None = None,
    ) -> Report:
        crit = CRITERIA[opts.criteria]
        (sex, sex_src), (height, h_src) = _who(film, opts)
        areas = thigh_areas(mask, film.spacing_mm, film.pixels) if areas is None else areas
        reasons, quality = quality_gate(film, areas, confidence, mask, height, self.gate, femur, femur_width_px)
        if film.spacing_mm is None:
            reasons.append("no pixel spacing (give --spacing-mm): area in pixels only")
        if sex not in ("F", "M"):
            reasons.append("no sex (give --sex F|M)")
        if not height:
            reasons.append("no height (give --height-cm)")
        th = self.thresholds.get(opts.criteria)
        if not reasons and (self.calibration is None or th is None):
            reasons.append(NO_CALIBRATION)
        cm2 = areas.unit == "cm2"
        rep = Report(
            thigh_muscle_area_cm2=round(areas.total, 2) if cm2 else None,
            thigh_muscle_area_px=int(np.count_nonzero(mask)),
            left_cm2=round(areas.left, 2) if areas.left is not None and cm2 else None,
            right_cm2=round(areas.right, 2) if areas.right is not None and cm2 else None,
            sides_seen=areas.sides_seen,
            criteria=opts.criteria,
            cutoff=crit.smi.get(sex) if sex in ("F", "M") else None,
            flag=Flag.NOT_ASSESSABLE.value,
            flag_meaning=MEANING[Flag.NOT_ASSESSABLE],
            reasons=reasons,
            sex=sex,
            sex_source=sex_src,
            height_m=height,
            height_source=h_src,
            pixel_spacing_mm=list(film.spacing_mm) if film.spacing_mm else None,
            pixel_spacing_source=film.spacing_source,
            quality=quality,
            model=self.model_info,
            note=DISCLAIMER,
        )
        if reasons:
            return rep
        self._estimate(rep, areas, crit, opts, th)
        return rep

    def _estimate(self, rep: Report, areas, crit, opts: Options, th) -> None:
        """SMI estimate, its interval, p_low and the flag, into `rep` (an assessable film)."""
        # One thigh seen (common after hip surgery): the estimate rests on that side, doubled,
        # with the interval widened for left/right asymmetry (one_side_sd in the calibration).
        one_side = areas.sides_seen == 1
        area_for_smi = areas.total * 2 if one_side else areas.total
        sex, height = rep.sex, rep.height_m
        est, lo, hi = self.calibration.predict(area_for_smi, sex, height, one_side=one_side)
        p_low = self.calibration.p_low(area_for_smi, sex, height, crit.smi[sex], one_side=one_side)
        flag = decide(p_low, th)
        rep.smi_estimate = round(est, 2)
        rep.smi_interval_95 = [round(lo, 2), round(hi, 2)]
        rep.p_low = round(p_low, 4)
        rep.decision_thresholds = {"clear": th.clear, "refer": th.refer}
        rep.smi_basis = "one thigh, doubled (the other is not on the film)" if one_side else "both thighs"
        rep.flag = flag.value
        rep.flag_meaning = MEANING[flag]
        if opts.grip_kg is not None or opts.gait_mps is not None:
            rep.grading = category(crit, sex, rep.flag, opts.grip_kg, opts.gait_mps)


def _who(film: Film, opts: Options) -> tuple[tuple[str | None, str | None], tuple[float | None, str | None]]:
    """(sex, where it came from), (height in m, where it came from): the options first, then the header."""
    sex = (opts.sex, "option") if opts.sex else ((film.sex, "DICOM PatientSex") if film.sex else (None, None))
    if opts.height_cm:
        return sex, (opts.height_cm / 100.0, "option")
    if film.height_m:
        return sex, (film.height_m, f"DICOM {film.height_source}")
    return sex, (None, None)


def write_overlay(path: Path, film: Film, mask: np.ndarray, report: Report, max_height: int = 1600) -> None:
    """Film with the measured muscle in red and the numbers, written atomically."""
    ok, png = cv2.imencode(".png", overlay_image(film, mask, report, max_height))
    if not ok:
        raise OSError("could not encode the overlay")
    write_bytes_atomic(Path(path), png.tobytes())


def overlay_image(film: Film, mask: np.ndarray, report: Report, max_height: int = 1600) -> np.ndarray:
    """The overlay's pixels (BGR, uint8): `write_overlay`'s picture (the DICOM SC's is edge.dicom_fast.sc_overlay)."""
    img = (np.clip(film.pixels, 0, 1) * 255).astype(np.uint8)
    scale = min(1.0, max_height / img.shape[0])
    size = (max(int(img.shape[1] * scale), 1), max(int(img.shape[0] * scale), 1))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    red = bgr.copy()
    red[m] = (0.5 * red[m] + 0.5 * np.array([40, 40, 255])).astype(np.uint8)
    cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(red, cnts, -1, (0, 0, 255), 1)
    draw_lines(red, report.overlay_lines())
    return red


def draw_lines(img: np.ndarray, lines: list[str], colour: tuple[int, int, int] = (255, 255, 0)) -> None:
    """The report's lines at the top left, each on a dark box (in place; cyan in BGR by default).

    Text on a dark box sized by getTextSize, drawn once: no outline pass whose width could
    differ from the text's (OpenCV 5 draws thick strokes wider, which garbled outlined text).
    """
    for i, t in enumerate(lines):
        (tw, th), base = cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        y = 22 + 22 * i
        cv2.rectangle(img, (4, y - th - 4), (12 + tw, y + base + 2), (0, 0, 0), -1)
        cv2.putText(img, t, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 1, cv2.LINE_AA)
