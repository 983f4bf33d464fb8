"""The SEG and overlay SC of one film, and what every `--dicom-out` object shares, packed directly
into bytes (edge.dicom_enc): the same objects as highdicom's (edge.dicom_out.build_seg / build_sc,
the reference tests compare with) but for UIDs, dates and the equipment item naming this writer.

The SC also carries the source's whole Patient and Study modules (highdicom's SC copies only the
type 2 subset), as the SEG and SR do: the three file with the same patient and study.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydicom.dataset import Dataset

from . import __version__
from .dicom_codes import MANUFACTURER, MUSCLE_OF_THIGH, SERIES_NUMBERS, SIDES
from .dicom_enc import Elements, code_sq, copied, el, file_bytes, sq

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
# Root attributes of the Patient and Study IE modules of DX/CR images (highdicom's
# copy_patient_and_study_information; tests/test_dicom_fast.py checks the list against its tables).
_PATIENT_STUDY = (
    "ReferencedPatientSequence PatientName PatientID IssuerOfPatientID TypeOfPatientID "
    "IssuerOfPatientIDQualifiersSequence SourcePatientGroupIdentificationSequence "
    "GroupOfPatientsIdentificationSequence PatientBirthDate PatientBirthTime "
    "PatientBirthDateInAlternativeCalendar PatientDeathDateInAlternativeCalendar "
    "PatientAlternativeCalendar PatientSex QualityControlSubject StrainDescription StrainNomenclature "
    "StrainStockSequence StrainAdditionalInformation StrainCodeSequence GeneticModificationsSequence "
    "OtherPatientNames OtherPatientIDsSequence ReferencedPatientPhotoSequence EthnicGroupCodeSequence "
    "PatientSpeciesDescription PatientSpeciesCodeSequence PatientBreedDescription "
    "PatientBreedCodeSequence BreedRegistrationSequence ResponsiblePerson ResponsiblePersonRole "
    "ResponsibleOrganization PatientComments PatientIdentityRemoved DeidentificationMethod "
    "DeidentificationMethodCodeSequence ClinicalTrialSponsorName ClinicalTrialProtocolID "
    "ClinicalTrialProtocolName IssuerOfClinicalTrialProtocolID OtherClinicalTrialProtocolIDsSequence "
    "ClinicalTrialSiteID ClinicalTrialSiteName IssuerOfClinicalTrialSiteID ClinicalTrialSubjectID "
    "IssuerOfClinicalTrialSubjectID ClinicalTrialSubjectReadingID IssuerOfClinicalTrialSubjectReadingID "
    "ClinicalTrialProtocolEthicsCommitteeName ClinicalTrialProtocolEthicsCommitteeApprovalNumber "
    "StudyDate StudyTime AccessionNumber IssuerOfAccessionNumberSequence ReferringPhysicianName "
    "ReferringPhysicianIdentificationSequence ConsultingPhysicianName "
    "ConsultingPhysicianIdentificationSequence StudyDescription ProcedureCodeSequence PhysiciansOfRecord "
    "PhysiciansOfRecordIdentificationSequence NameOfPhysiciansReadingStudy "
    "PhysiciansReadingStudyIdentificationSequence ReferencedStudySequence StudyInstanceUID StudyID "
    "RequestingService RequestingServiceCodeSequence ReasonForPerformedProcedureCodeSequence "
    "AdmittingDiagnosesDescription AdmittingDiagnosesCodeSequence PatientAge PatientSize "
    "PatientSizeCodeSequence PatientBodyMassIndex MeasuredAPDimension MeasuredLateralDimension "
    "PatientWeight MedicalAlerts Allergies Occupation SmokingStatus AdditionalPatientHistory "
    "PregnancyStatus LastMenstrualDate PatientSexNeutered ReasonForVisit ReasonForVisitCodeSequence "
    "AdmissionID IssuerOfAdmissionIDSequence ServiceEpisodeID ServiceEpisodeDescription "
    "IssuerOfServiceEpisodeIDSequence PatientState ClinicalTrialTimePointID "
    "ClinicalTrialTimePointDescription LongitudinalTemporalOffsetFromEvent LongitudinalTemporalEventType "
    "ClinicalTrialTimePointTypeCodeSequence IssuerOfClinicalTrialTimePointID "
    "ConsentForClinicalTrialUseSequence"
)
PATIENT_STUDY = tuple(_PATIENT_STUDY.split())
_EQUIPMENT = (
    "Manufacturer InstitutionName InstitutionAddress StationName InstitutionalDepartmentName "
    "ManufacturerModelName DeviceSerialNumber SoftwareVersions"
)
EQUIPMENT = tuple(_EQUIPMENT.split())
PURPOSE = 0x0040A170


def new_uid() -> str:
    """A UUID-derived UID (PS3.5 B.2): unique without a registered root."""
    return f"2.25.{uuid.uuid4().int}"


@dataclass
class Film:
    """What the three objects of one film share: the source header, its copied patient/study
    elements (encoded once) and the moment they were made."""

    src: Dataset
    patient_study: Elements = field(init=False)
    date: str = field(init=False)
    time: str = field(init=False)
    equipment: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.patient_study = copied(self.src, ("SpecificCharacterSet", *PATIENT_STUDY))
        now = time.time()
        self.date = time.strftime("%Y%m%d", time.localtime(now))
        self.time = time.strftime("%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
        self.equipment = _equipment(self)


def _equipment(film: Film) -> bytes:
    """Contributing Equipment: the source's acquisition equipment (where it names a manufacturer), then this tool."""
    items = []
    src = film.src
    if src.get("Manufacturer"):
        acq = {k: v for k, v in copied(src, EQUIPMENT).items() if len(v) > 8}  # empty ones left out
        if "AcquisitionDateTime" in src:
            acq[0x0018A002] = el(0x0018A002, "DT", str(src.AcquisitionDateTime))
        elif src.get("AcquisitionDate") and src.get("AcquisitionTime"):
            acq[0x0018A002] = el(0x0018A002, "DT", f"{src.AcquisitionDate}{src.AcquisitionTime}")
        acq[0x0018A003] = el(0x0018A003, "ST", "Acquisition equipment of the source image(s)")
        acq[PURPOSE] = code_sq(PURPOSE, "109101", "DCM", "Acquisition Equipment")
        items.append(acq)
    items.append({
        0x00080070: el(0x00080070, "LO", MANUFACTURER),
        0x00081090: el(0x00081090, "LO", "sarco-edge DICOM writer"),
        0x00181020: el(0x00181020, "LO", __version__),
        0x0018A002: el(0x0018A002, "DT", film.date + film.time),
        0x0018A003: el(0x0018A003, "ST", "Software used to create this instance"),
        PURPOSE: code_sq(PURPOSE, "109102", "DCM", "Processing Equipment"),
    })  # fmt: skip
    return sq(0x0018A001, items)


def common(film: Film, sop_class: str, uid: str, series: str, kind: str, modality: str, description: str) -> Elements:
    """SOP Common, General Series / Equipment and the copied patient and study of one object."""
    out = dict(film.patient_study)
    out.update({
        0x00080012: el(0x00080012, "DA", film.date), 0x00080013: el(0x00080013, "TM", film.time),
        0x00080016: el(0x00080016, "UI", sop_class), 0x00080018: el(0x00080018, "UI", uid),
        0x00080023: el(0x00080023, "DA", film.date), 0x00080033: el(0x00080033, "TM", film.time),
        0x00080060: el(0x00080060, "CS", modality), 0x00080070: el(0x00080070, "LO", MANUFACTURER),
        0x0008103E: el(0x0008103E, "LO", description), 0x0018A001: film.equipment,
        0x0020000E: el(0x0020000E, "UI", series), 0x00200011: el(0x00200011, "IS", str(SERIES_NUMBERS[kind])),
        0x00200013: el(0x00200013, "IS", "1"),
    })  # fmt: skip
    for keyword, tag in (("PatientName", 0x00100010), ("PatientID", 0x00100020), ("PatientBirthDate", 0x00100030),
                         ("PatientSex", 0x00100040), ("StudyDate", 0x00080020), ("StudyTime", 0x00080030),
                         ("AccessionNumber", 0x00080050), ("ReferringPhysicianName", 0x00080090),
                         ("StudyID", 0x00200010)):  # fmt: skip
        if tag not in out:  # type 2: present but empty where the source has none, never made up
            out[tag] = el(tag, "PN" if keyword.endswith("Name") else "LO", None)
    return out


def _ref(sop_class: str, uid: str) -> dict:
    return {0x00081150: el(0x00081150, "UI", sop_class), 0x00081155: el(0x00081155, "UI", uid)}


def _segment(number: int, side: str, model: dict) -> dict:
    label = "thigh muscle" if side == "both" else f"thigh muscle, {side}"
    name = f"sarco-edge {model['name']}"
    params = f"sha256={model['sha256']},precision={model['precision']}"
    algorithm = {
        0x0066002F: code_sq(0x0066002F, "123110", "DCM", "Artificial Intelligence"),
        0x00660031: el(0x00660031, "LO", str(model["version"])),
        0x00660032: el(0x00660032, "LT", params),
        0x00660036: el(0x00660036, "LO", name),
    }
    out = {
        0x00082218: code_sq(0x00082218, "68367000", "SCT", "Thigh"),
        0x00620003: code_sq(0x00620003, "91723000", "SCT", "Anatomical Structure"),
        0x00620004: el(0x00620004, "US", number), 0x00620005: el(0x00620005, "LO", label),
        0x00620007: sq(0x00620007, [algorithm]), 0x00620008: el(0x00620008, "CS", "AUTOMATIC"),
        0x00620009: el(0x00620009, "LO", name),
        0x0062000F: code_sq(0x0062000F, MUSCLE_OF_THIGH.value, "SCT", MUSCLE_OF_THIGH.meaning),
    }  # fmt: skip
    if side in SIDES:
        out[0x00082228] = code_sq(0x00082228, SIDES[side].value, "SCT", SIDES[side].meaning)
    return out


def _segment_id(number: int) -> bytes:
    return sq(0x0062000A, [{0x0062000B: el(0x0062000B, "US", number)}])


def _frame(src: Dataset, number: int, shared: bool) -> dict:
    source = _ref(src.SOPClassUID, src.SOPInstanceUID)
    source[0x0028135A] = el(0x0028135A, "CS", "YES")
    source[PURPOSE] = code_sq(PURPOSE, "121322", "DCM", "Source image for image processing operation")
    derivation = {0x00082112: sq(0x00082112, [source]),
                  0x00089215: code_sq(0x00089215, "113076", "DCM", "Segmentation")}  # fmt: skip
    out = {0x00089124: sq(0x00089124, [derivation]),
           0x00209111: sq(0x00209111, [{0x00209157: el(0x00209157, "UL", number)}])}  # fmt: skip
    if not shared:
        out[0x0062000A] = _segment_id(number)
    return out


def packed_frames(labels: np.ndarray, segments: int) -> np.ndarray:
    """np.packbits of the frames `labels == n` (n = 1..segments) one after another, little bit
    order (the SEG's Pixel Data), packing only the rows where `labels` is not 0: every other bit is 0."""
    rows, size = labels.shape[1], labels.size
    total = segments * size
    out = np.zeros((total + 7) // 8, np.uint8)
    _, y, _, h = cv2.boundingRect(labels)
    if not h:
        return out
    band = labels[y : y + h].ravel()
    for n in range(segments):
        start = n * size + y * rows  # the band's first bit in the whole
        a = start - start % 8
        bits = np.zeros(min(-(-(start + band.size) // 8) * 8, len(out) * 8) - a, bool)
        np.equal(band, n + 1, out=bits[start - a : start - a + band.size])
        out[a // 8 : a // 8 + len(bits) // 8] |= np.packbits(bits, bitorder="little")
    return out


def seg_bytes(film: Film, uid: str, series: str, sides: list[str], labels: np.ndarray, model: dict) -> list:
    """The binary SEG: one frame per segment (`labels` == its number) on the source's grid."""
    src = film.src
    out = common(film, SEG_CLASS, uid, series, "seg", "SEG", "sarco-edge thigh muscle")
    dim = new_uid()
    out.update({
        0x00080008: el(0x00080008, "CS", ["DERIVED", "PRIMARY"]),
        0x00081090: el(0x00081090, "LO", f"{model['name']} {model['version']}"),
        0x00081115: sq(0x00081115, [{0x0020000E: el(0x0020000E, "UI", src.SeriesInstanceUID),
                                     0x0008114A: sq(0x0008114A, [_ref(src.SOPClassUID, src.SOPInstanceUID)])}]),
        0x00082112: sq(0x00082112, [_ref(src.SOPClassUID, src.SOPInstanceUID)]),
        0x00181000: el(0x00181000, "LO", "0"), 0x00181020: el(0x00181020, "LO", __version__),
        0x00200020: el(0x00200020, "CS", list(src.get("PatientOrientation") or []) or None),
        0x00209221: sq(0x00209221, [{0x00209164: el(0x00209164, "UI", dim)}]),
        0x00209222: sq(0x00209222, [{0x00209164: el(0x00209164, "UI", dim), 0x00209165: el(0x00209165, "AT", 0x0062000B),
                                     0x00209167: el(0x00209167, "AT", 0x0062000A),
                                     0x00209421: el(0x00209421, "LO", "Referenced Segment Number")}]),
        0x00280002: el(0x00280002, "US", 1), 0x00280004: el(0x00280004, "CS", "MONOCHROME2"),
        0x00280008: el(0x00280008, "IS", str(len(sides))), 0x00280010: el(0x00280010, "US", labels.shape[0]),
        0x00280011: el(0x00280011, "US", labels.shape[1]), 0x00280100: el(0x00280100, "US", 1),
        0x00280101: el(0x00280101, "US", 1), 0x00280102: el(0x00280102, "US", 0), 0x00280103: el(0x00280103, "US", 0),
        0x00282110: el(0x00282110, "CS", "00"), 0x00620001: el(0x00620001, "CS", "BINARY"),
        0x00620002: sq(0x00620002, [_segment(n, s, model) for n, s in enumerate(sides, start=1)]),
        0x00620013: el(0x00620013, "CS", "NO"), 0x00700080: el(0x00700080, "CS", f"{src.Modality}_SEG"),
        0x00700081: el(0x00700081, "LO", None), 0x20500020: el(0x20500020, "CS", "IDENTITY"),
        0x52009230: sq(0x52009230, [_frame(src, n, len(sides) == 1) for n in range(1, len(sides) + 1)]),
    })  # fmt: skip
    shared = {0x0062000A: _segment_id(1)} if len(sides) == 1 else {}  # one segment: shared by every frame
    if "PixelSpacing" in src:
        shared[0x00289110] = sq(0x00289110, [copied(src, ("PixelSpacing",))])
    out[0x52009229] = sq(0x52009229, [shared])  # an empty item where there is neither (as highdicom)
    return file_bytes(SEG_CLASS, uid, out, packed_frames(labels, len(sides)))


_TINT = ((np.arange(256)[:, None] + np.array([255, 40, 40])) >> 1).astype(np.uint8).reshape(256, 1, 3)  # RGB
SC_MAX_ROWS = 1200  # the SC is the film on a grid of f x f blocks, f the least integer giving at most this


def sc_overlay(pixels: np.ndarray, mask: np.ndarray, lines: list[str]) -> np.ndarray:
    """The SC's picture (RGB, uint8): the film on a grid of f x f blocks (each SC pixel the mean of
    one block, f = ceil(rows / SC_MAX_ROWS)), the muscle half film, half red, with its outline in
    red, the report's lines as on `--overlay` (which redraws the film at up to 1600 rows, about 8
    times the CPU).

    A whole-number f keeps the geometry plain for a reader (an SC pixel is f x f film pixels) and
    lets OpenCV average blocks on its fast path; the full-resolution result is the SEG.
    """
    from .screen import draw_lines

    f = max(1, -(-pixels.shape[0] // SC_MAX_ROWS))
    h, w = max(pixels.shape[0] // f, 1), max(pixels.shape[1] // f, 1)
    small = cv2.resize(pixels[: h * f, : w * f], (w, h), interpolation=cv2.INTER_AREA) if f > 1 else pixels
    rgb = cv2.cvtColor(cv2.convertScaleAbs(small, alpha=255.0), cv2.COLOR_GRAY2RGB)  # [0, 1] -> 0..255, rounded
    m = cv2.resize(mask.view(np.uint8)[: h * f, : w * f], (w, h), interpolation=cv2.INTER_NEAREST)  # block's first
    x, y, bw, bh = cv2.boundingRect(m)
    if bw and bh:
        box = rgb[y : y + bh, x : x + bw]
        cv2.copyTo(cv2.LUT(box, _TINT), m[y : y + bh, x : x + bw], box)
        cnts, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(rgb, cnts, -1, (255, 0, 0), 1)
    draw_lines(rgb, lines, colour=(0, 255, 255))
    return rgb


def sc_bytes(film: Film, uid: str, rgb: np.ndarray) -> list:
    """The overlay (RGB, 8 bits) as a Secondary Capture in the source's study, a new series."""
    src = film.src
    out = common(
        film, SC_CLASS, uid, new_uid(), "sc", "OT", "sarco-edge thigh muscle overlay (screening aid, not a diagnosis)"
    )
    orientation = list(src.get("PatientOrientation") or [])
    out.update({
        0x00080008: el(0x00080008, "CS", ["DERIVED", "SECONDARY", "OTHER"]),
        0x00080064: el(0x00080064, "CS", "DI"),
        0x00181012: el(0x00181012, "DA", film.date), 0x00181014: el(0x00181014, "TM", film.time),
        0x00200020: el(0x00200020, "CS", orientation or None), 0x00200060: el(0x00200060, "CS", None),
        0x00280002: el(0x00280002, "US", 3), 0x00280004: el(0x00280004, "CS", "RGB"),
        0x00280006: el(0x00280006, "US", 0), 0x00280010: el(0x00280010, "US", rgb.shape[0]),
        0x00280011: el(0x00280011, "US", rgb.shape[1]), 0x00280100: el(0x00280100, "US", 8),
        0x00280101: el(0x00280101, "US", 8), 0x00280102: el(0x00280102, "US", 7), 0x00280103: el(0x00280103, "US", 0),
    })  # fmt: skip
    return file_bytes(SC_CLASS, uid, out, rgb.astype(np.uint8, copy=False))
