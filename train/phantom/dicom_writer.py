"""Write a phantom film as a DX "for presentation" DICOM, tagged the way a vendor's would be.

UIDs are derived from the cohort seed and case id, so the same seed gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .film import Acquisition
from .person import Person

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
GENERATOR = "sarco-edge phantom"


def _uid(*parts: object) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def build_dataset(
    stored: np.ndarray, p: Person, a: Acquisition, case_id: str, seed: int, generator_version: str
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = _uid(seed, case_id, "sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _uid("sarco-edge", generator_version)
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(seed, case_id, "study")
    ds.SeriesInstanceUID = _uid(seed, case_id, "series")
    ds.FrameOfReferenceUID = _uid(seed, case_id, "for")
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.Manufacturer = GENERATOR
    ds.ManufacturerModelName = f"long-leg phantom {generator_version}"
    ds.StudyDate = "20260101"
    ds.ContentDate = "20260101"
    ds.StudyDescription = "LOWER LIMB STANDING AP"
    ds.SeriesDescription = "Long leg AP standing" + (f", {a.view} leg" if a.view != "both" else "")
    ds.BodyPartExamined = "LEG"
    ds.ViewPosition = "AP"
    ds.ImageLaterality = "B" if a.view == "both" else a.view
    ds.PatientOrientation = ["L", "F"]
    # Synthetic identifiers, present on purpose: the clinic side must never print them.
    ds.PatientName = f"PHANTOM^{p.person_id}"
    ds.PatientID = f"PH-{p.person_id}"
    ds.PatientSex = p.sex
    ds.PatientAge = f"{int(p.age):03d}Y"
    ds.PatientSize = f"{p.height_m:.3f}"
    ds.PatientWeight = f"{p.weight_kg:.1f}"
    ds.KVP = f"{a.energy_kev * 1.9:.0f}"
    ds.DetectorType = "SCINTILLATOR"
    ds.ImagerPixelSpacing = [f"{a.spacing_mm:.4f}", f"{a.spacing_mm:.4f}"]
    ds.EstimatedRadiographicMagnificationFactor = f"{a.magnification:.4f}"
    ps = a.spacing_mm / a.magnification
    ds.PixelSpacing = [f"{ps:.6f}", f"{ps:.6f}"]
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if a.monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = a.bits
    ds.HighBit = a.bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    top = (1 << a.bits) - 1
    ds.WindowCenter = f"{(top + 1) / 2:.1f}"
    ds.WindowWidth = f"{top + 1}"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    return ds


def write_dicom(path: Path, ds: FileDataset) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    ds.save_as(tmp, enforce_file_format=True)
    tmp.replace(path)
