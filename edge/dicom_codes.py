"""The concepts and numbers every `--dicom-out` object shares (without importing highdicom, which
only the reference builders need: edge.dicom_out.build_seg / build_sc, edge.dicom_sr.build_sr)."""

from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

SCHEME = "99SARCOEDGE"
MUSCLE_OF_THIGH = Code("50092008", "SCT", "Muscle of thigh")
CM2 = Code("cm2", "UCUM", "square centimeter")
KG_M2 = Code("kg/m2", "UCUM", "kilogram per square meter")
NO_UNIT = Code("1", "UCUM", "no units")
CM = Code("cm", "UCUM", "centimeter")
MANUFACTURER = "sarco-edge"
SERIES_NUMBERS = {"seg": 9901, "sr": 9902, "sc": 9903}
SIDES = {"right": codes.SCT.Right, "left": codes.SCT.Left}


def local(value: str, meaning: str | None = None) -> Code:
    """A concept in this tool's own scheme (no standard code for SMI, p_low, the flag...)."""
    return Code(value, SCHEME, meaning or value.replace("_", " "))
