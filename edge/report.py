"""One typed result for a screened film, and every way it is shown.

`screen --json`, the batch CSV row, the human table and the overlay's lines all render from a
`Report`, so each key is spelled here once. The JSON keys are SPEC's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .criteria import CRITERIA

# The batch CSV: these columns after file, status, error_kind, error.
CSV_FIELDS = (
    "flag", "reasons", "thigh_muscle_area_cm2", "right_cm2", "left_cm2", "thigh_muscle_area_px", "sides_seen",
    "smi_basis", "smi_estimate", "smi_low", "smi_high", "p_low", "criteria", "cutoff", "category", "sex", "sex_source",
    "height_m", "height_source", "pixel_spacing_mm", "pixel_spacing_source", "segmentation_confidence", "model_version",
)  # fmt: skip


@dataclass
class Report:
    thigh_muscle_area_cm2: float | None
    thigh_muscle_area_px: int
    left_cm2: float | None
    right_cm2: float | None
    sides_seen: int
    criteria: str
    cutoff: float | None
    flag: str
    flag_meaning: str
    reasons: list[str]
    sex: str | None
    sex_source: str | None
    height_m: float | None
    height_source: str | None
    pixel_spacing_mm: list[float] | None
    pixel_spacing_source: str
    quality: dict
    model: dict
    note: str
    smi_estimate: float | None = None
    smi_interval_95: list[float] | None = None
    smi_basis: str | None = None
    p_low: float | None = None
    decision_thresholds: dict | None = None
    grading: dict | None = field(default=None)  # category, low_strength, low_performance, used (grip/gait given)

    def to_dict(self) -> dict:
        """The JSON of `screen --json` (the grading's keys at the top level, as SPEC names them)."""
        d = asdict(self)
        grading = d.pop("grading")
        if grading:
            d.update(grading)
        return d

    @property
    def category(self) -> str | None:
        return self.grading["category"] if self.grading else None

    def csv_cells(self) -> dict:
        lo, hi = self.smi_interval_95 or ("", "")
        m = self.model
        return {
            "flag": self.flag, "reasons": "; ".join(self.reasons), "thigh_muscle_area_cm2": self.thigh_muscle_area_cm2,
            "right_cm2": self.right_cm2, "left_cm2": self.left_cm2, "thigh_muscle_area_px": self.thigh_muscle_area_px,
            "sides_seen": self.sides_seen, "smi_basis": self.smi_basis or "", "smi_estimate": self.smi_estimate,
            "smi_low": lo, "smi_high": hi, "p_low": self.p_low, "criteria": self.criteria, "cutoff": self.cutoff,
            "category": self.category or "", "sex": self.sex, "sex_source": self.sex_source,
            "height_m": self.height_m, "height_source": self.height_source,
            "pixel_spacing_mm": (self.pixel_spacing_mm or [""])[0], "pixel_spacing_source": self.pixel_spacing_source,
            "segmentation_confidence": self.quality.get("segmentation_confidence"),
            "model_version": f"{m['name']} {m['version']} {m['precision']}",
        }  # fmt: skip

    def table_rows(self) -> list[tuple[str, str]]:
        """(label, value) rows of the human table."""
        area = self.thigh_muscle_area_cm2
        rows = [
            (
                "thigh muscle area",
                f"{area:.1f} cm2" if area is not None else f"{self.thigh_muscle_area_px} px (no spacing)",
            )
        ]
        if self.right_cm2 is not None:
            rows.append(("  right / left", f"{self.right_cm2:.1f} / {self.left_cm2:.1f} cm2"))
        if self.smi_estimate is not None:
            lo, hi = self.smi_interval_95
            rows.append(
                ("SMI estimate", f"{self.smi_estimate:.2f} kg/m2 (95% interval {lo:.2f} to {hi:.2f}; {self.smi_basis})")
            )
        if self.cutoff:
            who = "women" if self.sex == "F" else "men"
            rows.append(
                ("criteria", f"{CRITERIA[self.criteria].name}: low muscle mass below {self.cutoff} kg/m2 ({who})")
            )
        else:
            rows.append(("criteria", self.criteria))
        if self.p_low is not None:
            th = self.decision_thresholds
            rows.append(
                (
                    "P(DEXA SMI below cut-off)",
                    f"{self.p_low:.2f} (refer at >= {th['refer']:.2f}, normal at <= {th['clear']:.2f})",
                )
            )
        rows.append(("flag", self.flag + ("" if not self.reasons else ": " + "; ".join(self.reasons))))
        rows.append(("what next", self.flag_meaning))
        if self.category:
            rows.append(("category", self.category))
        rows.append(("sex", f"{self.sex or '-'} ({self.sex_source or 'unknown'})"))
        rows.append(("height", f"{self.height_m:.3f} m ({self.height_source})" if self.height_m else "-"))
        rows.append(("pixel spacing", f"{self.pixel_spacing_mm} mm ({self.pixel_spacing_source})"))
        rows.append(("quality", ", ".join(f"{k} {v}" for k, v in self.quality.items())))
        m = self.model
        rows.append(("model", f"{m['name']} {m['version']} {m['architecture']} {m['precision']} on {m['device']}"))
        return rows

    def overlay_lines(self) -> list[str]:
        area = self.thigh_muscle_area_cm2
        smi = f"SMI {self.smi_estimate} [{', '.join(map(str, self.smi_interval_95))}]" if self.smi_estimate else "SMI -"
        return [
            f"thigh muscle {area:.1f} cm2" if area is not None else f"thigh muscle {self.thigh_muscle_area_px} px",
            smi,
            f"{self.criteria}: {self.flag}",
            "screening only, not a diagnosis",
        ]
