"""The concepts and numbers every `--dicom-out` object shares (without importing highdicom, which
only the reference builders need: edge.dicom_out.build_seg / build_sc, edge.dicom_sr.build_sr)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .report import Report


class Code(NamedTuple):
    """A coded concept (pydicom's Code has the same fields; importing pydicom.sr costs 40 ms)."""

    value: str
    scheme_designator: str
    meaning: str


SCHEME = "99SARCOEDGE"
MUSCLE_OF_THIGH = Code("50092008", "SCT", "Muscle of thigh")
CM2 = Code("cm2", "UCUM", "square centimeter")
KG_M2 = Code("kg/m2", "UCUM", "kilogram per square meter")
NO_UNIT = Code("1", "UCUM", "no units")
CM = Code("cm", "UCUM", "centimeter")
MANUFACTURER = "sarco-edge"
SERIES_NUMBERS = {"seg": 9901, "sr": 9902, "sc": 9903}
SIDES = {"right": Code("24028007", "SCT", "Right"), "left": Code("7771000", "SCT", "Left")}  # codes.SCT.Right/Left


def local(value: str, meaning: str | None = None) -> Code:
    """A concept in this tool's own scheme (no standard code for SMI, p_low, the flag...)."""
    return Code(value, SCHEME, meaning or value.replace("_", " "))


AREA = Code("42798000", "SCT", "Area")  # codes.SCT.Area
PIXELS = Code("{pixels}", "UCUM", "pixels")


def film_measurements(report: Report) -> list[tuple[Code, float | None, Code, bool]]:
    """The SR's film-level numbers, in order, as (concept, value, unit, at the thigh muscle): total
    area (in pixels without spacing), SMI with its interval, p_low, cut-off, then the numeric
    quality findings. Both SR builders (highdicom's and the packed one) write exactly these;
    a None value is left out."""
    out = [(AREA, report.thigh_muscle_area_cm2, CM2, True)]
    if report.thigh_muscle_area_cm2 is None:
        out.append(
            (local("thigh_muscle_area_px", "Thigh muscle area in pixels"), report.thigh_muscle_area_px, PIXELS, True)
        )
    lo, hi = report.smi_interval_95 or (None, None)
    out += [
        (local("smi_estimate", "SMI estimate"), report.smi_estimate, KG_M2, False),
        (local("smi_low", "SMI estimate, 95% interval lower limit"), lo, KG_M2, False),
        (local("smi_high", "SMI estimate, 95% interval upper limit"), hi, KG_M2, False),
        (local("p_low", "Probability that DEXA SMI is below the cut-off"), report.p_low, NO_UNIT, False),
        (local("cutoff", "SMI cut-off for low muscle mass"), report.cutoff, KG_M2, False),
    ]
    for key, value in report.quality.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((local(key), value, CM if key.endswith("_cm") else NO_UNIT, False))
    return out
