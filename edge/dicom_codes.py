"""The concepts and numbers every `--dicom-out` object shares (without importing highdicom, which
only the reference builders need: edge.dicom_out.build_seg / build_sc, edge.dicom_sr.build_sr)."""

from __future__ import annotations

from typing import NamedTuple


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
