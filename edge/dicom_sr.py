"""The TID 1500 Structured Report of one screened film, and reading one back.

Layout: one TID 1410 planar ROI group per SEG segment (each side where two thighs are seen) with its
area in cm2 and the side as the finding site's laterality; one TID 1501 group for the film (total
area, SMI estimate and 95 % interval, p_low, cut-off, criteria and flag as qualitative evaluations,
quality findings); TID 1500's "Qualitative Evaluations" container with the screening statement and
any reasons as text. Concepts without a standard code use the local scheme `99SARCOEDGE`
(PS3.16 allows "99"-prefixed private schemes); every key rendered comes from `Report`.
"""

from __future__ import annotations

import highdicom as hd
import pydicom
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from . import __version__
from . import dicom_codes as c
from .dicom_codes import MANUFACTURER, SCHEME, SERIES_NUMBERS
from .report import Report

# highdicom takes pydicom's Code: the shared concepts (edge.dicom_codes) as such
MUSCLE_OF_THIGH, CM2 = (Code(*x) for x in (c.MUSCLE_OF_THIGH, c.CM2))
SIDES = {side: Code(*x) for side, x in c.SIDES.items()}
__all__ = ["MANUFACTURER", "SCHEME", "SERIES_NUMBERS", "build_sr", "local", "sr_values"]


def local(value: str, meaning: str | None = None) -> Code:
    """A concept in this tool's own scheme (no standard code for SMI, p_low, the flag...)."""
    return Code(*c.local(value, meaning))


def _device_context() -> hd.sr.ObservationContext:
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=pydicom.uid.generate_uid(entropy_srcs=["sarco-edge device"]),
            name="sarco-edge",
            manufacturer_name=MANUFACTURER,
            model_name=__version__,
        ),
    )
    return hd.sr.ObservationContext(observer_device_context=device)


def _sr_algorithm(model: dict) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(
        name=f"sarco-edge {model['name']}",
        version=str(model["version"]),
        parameters=[f"sha256={model['sha256']}", f"precision={model['precision']}"],
    )


def _num(name: Code, value: float | None, unit: Code, sites: list | None = None) -> list[hd.sr.Measurement]:
    if value is None:
        return []
    return [hd.sr.Measurement(name=name, value=float(value), unit=unit, finding_sites=sites)]


def _film_measurements(report: Report) -> list[hd.sr.Measurement]:
    """edge.dicom_codes.film_measurements as highdicom measurements."""
    site = [hd.sr.FindingSite(MUSCLE_OF_THIGH)]
    return [
        m
        for name, value, unit, at_muscle in c.film_measurements(report)
        for m in _num(Code(*name), value, Code(*unit), site if at_muscle else None)
    ]


def _film_evaluations(report: Report | None, flag: str) -> list[hd.sr.QualitativeEvaluation]:
    ev = [hd.sr.QualitativeEvaluation(local("flag", "Screening flag"), local(flag))]
    if report is not None:
        ev.append(hd.sr.QualitativeEvaluation(local("criteria", "Criteria"), local(report.criteria)))
        for key, value in report.quality.items():
            if isinstance(value, bool):
                ev.append(hd.sr.QualitativeEvaluation(local(key), codes.SCT.Yes if value else codes.SCT.No))
    return ev


def _film_group(src: Dataset, report: Report | None, model: dict) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """TID 1501: what the film as a whole says (the flag always; numbers where measured)."""
    flag = report.flag if report is not None else "not_assessable"
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="film"),
        finding_type=MUSCLE_OF_THIGH,
        algorithm_id=_sr_algorithm(model),
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(src)],
        measurements=_film_measurements(report) if report is not None else None,
        qualitative_evaluations=_film_evaluations(report, flag),
    )


def _roi_groups(
    src: Dataset, report: Report, seg: Dataset
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """TID 1410 per SEG segment: its area, and its side as the finding site's laterality."""
    groups = []
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        label = str(item.SegmentLabel)
        side = label.rsplit(", ", 1)[1] if ", " in label else "both"
        area = {"right": report.right_cm2, "left": report.left_cm2}.get(side, report.thigh_muscle_area_cm2)
        site = hd.sr.FindingSite(MUSCLE_OF_THIGH, laterality=SIDES[side]) if side in SIDES else None
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=side),
                referenced_segment=hd.sr.ReferencedSegmentationFrame(
                    seg.SOPClassUID,
                    seg.SOPInstanceUID,
                    number,
                    number,  # frame n holds segment n
                    hd.sr.SourceImageForSegmentation(src.SOPClassUID, src.SOPInstanceUID),
                ),
                finding_type=MUSCLE_OF_THIGH,
                finding_sites=[site] if site else None,
                algorithm_id=_sr_algorithm(report.model),
                measurements=_num(Code(*c.AREA), area, CM2),
            )
        )
    return groups


def _statements(note: str, reasons: list[str]) -> hd.sr.ContainerContentItem:
    """TID 1500's "Qualitative Evaluations" container: the screening statement and each reason, as text."""
    rel = hd.sr.RelationshipTypeValues.CONTAINS
    box = hd.sr.ContainerContentItem(name=CodedConcept("C0034375", "UMLS", "Qualitative Evaluations"),
                                     relationship_type=rel)  # fmt: skip
    items = [hd.sr.TextContentItem(name=local("statement", "Screening statement"), value=note, relationship_type=rel)]
    items += [hd.sr.TextContentItem(name=local("reason", "Reason"), value=r, relationship_type=rel) for r in reasons]
    box.ContentSequence = hd.sr.ContentSequence(items)
    return box


def _tidy_refs(item: Dataset, src: Dataset) -> None:
    """A SEG reference names its segment, not also a frame, and a single-frame source has no frame
    number: PS3.3's image reference macro allows neither (dciodvfy errors otherwise)."""
    single = "NumberOfFrames" not in src
    for ref in item.get("ReferencedSOPSequence", []):
        to_src = ref.get("ReferencedSOPInstanceUID") == src.SOPInstanceUID and single
        if "ReferencedFrameNumber" in ref and ("ReferencedSegmentNumber" in ref or to_src):
            del ref.ReferencedFrameNumber
    for child in item.get("ContentSequence", []):
        _tidy_refs(child, src)


def build_sr(src: Dataset, report: Report | None, seg: Dataset | None, reasons: list[str], model: dict) -> Dataset:
    """The TID 1500 measurement report; `report` None: a film that could not even be read."""
    from .screen import DISCLAIMER

    groups: list = [_film_group(src, report, model)]
    if seg is not None and report is not None:
        groups += _roi_groups(src, report, seg)
    content = hd.sr.MeasurementReport(
        observation_context=_device_context(),
        procedure_reported=local("thigh_muscle_screening", "Thigh muscle screening on a long-leg radiograph"),
        imaging_measurements=groups,
    )
    content[0].ContentSequence.append(_statements(report.note if report else DISCLAIMER, reasons))
    _tidy_refs(content[0], src)
    return _document([src] + ([seg] if seg is not None else []), content[0])


def _document(evidence: list[Dataset], root: Dataset) -> hd.sr.Comprehensive3DSR:
    """The SR document around the content tree `root`, whose only references are `evidence`.

    highdicom's constructor deep-copies the whole tree, re-parses the copy and searches it for the
    instances it references (40 % of a film's DICOM writing, `tests/bench_dicom_out.py --profile`).
    The tree is built here and used once, so the document is made around a bare root container
    (the evidence sequences come from `evidence` either way) and the tree is then put in, attribute
    for attribute, as the constructor does itself: the same dataset, without the copy.
    """
    bare = Dataset()
    for keyword in ("ValueType", "ConceptNameCodeSequence", "ContinuityOfContent", "ContentTemplateSequence"):
        if keyword in root:
            setattr(bare, keyword, root[keyword].value)
    bare.ContentSequence = []
    doc = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=bare,
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBERS["sr"],
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description="sarco-edge screening report",
    )
    for tag, element in root.items():
        doc[tag] = element
    return doc


def sr_values(ds: Dataset) -> dict[str, object]:
    """Read an SR back as {"group/concept": value}: numbers, codes (their value) and texts (lists).

    Groups are the tracking identifiers ("film", "right", "left", "both"); concepts are the code
    values (e.g. "42798000" for area, "smi_estimate"). Used by tests and by anyone checking a PACS.
    """
    out: dict[str, object] = {}

    def code(item: Dataset) -> str:
        return str(item.get("CodeValue") or item.get("LongCodeValue"))

    def walk(items, group: str) -> None:
        for it in items:
            name = code(it.ConceptNameCodeSequence[0]) if "ConceptNameCodeSequence" in it else ""
            kind = it.ValueType
            if kind == "TEXT" and name == "112039":  # Tracking Identifier
                group = str(it.TextValue)
            elif kind == "NUM":
                out[f"{group}/{name}"] = float(it.MeasuredValueSequence[0].NumericValue)
            elif kind == "CODE":
                out[f"{group}/{name}"] = code(it.ConceptCodeSequence[0])
            elif kind == "TEXT":
                out.setdefault(f"{group}/{name}", []).append(str(it.TextValue))
            if "ContentSequence" in it:
                walk(it.ContentSequence, group)

    walk(ds.ContentSequence, "report")
    return out
