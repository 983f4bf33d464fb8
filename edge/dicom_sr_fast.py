"""The TID 1500 SR of one film packed directly into bytes (edge.dicom_enc): the same content tree as
edge.dicom_sr.build_sr (highdicom's, the reference tests compare with), item for item, in the same
order, but for UIDs and dates. The layout is described in edge/dicom_sr.py.
"""

from __future__ import annotations

from functools import cache

from pydicom.valuerep import format_number_as_ds

from . import __version__
from .dicom_codes import AREA, CM2, SIDES, film_measurements, local
from .dicom_enc import Elements, code_sq, el, file_bytes, item, sq
from .dicom_fast import SEG_CLASS, SR_CLASS, Film, common, new_uid
from .report import Report

REL, VT, NAME, CONCEPT, TEXT, UID, MEASURED, CONTENT = (
    0x0040A010, 0x0040A040, 0x0040A043, 0x0040A168, 0x0040A160, 0x0040A124, 0x0040A300, 0x0040A730)  # fmt: skip
SOP_REFS = 0x00081199
HAS_MOD, HAS_CTX = "HAS CONCEPT MOD", "HAS OBS CONTEXT"


def _item(rel: str, kind: str, name: tuple, **more: bytes) -> Elements:
    out = {REL: el(REL, "CS", rel), VT: el(VT, "CS", kind), NAME: code_sq(NAME, *name)}
    out.update({int(k[1:], 16): v for k, v in more.items()})
    return out


def _code_item(rel: str, name: tuple, value: tuple) -> Elements:
    return _item(rel, "CODE", name, t0040A168=code_sq(CONCEPT, *value))


def _text(rel: str, name: tuple, value: str) -> Elements:
    return _item(rel, "TEXT", name, t0040A160=el(TEXT, "UT", value.encode("ascii", "replace")))


def _container(rel: str, name: tuple, items: list, template: str | None = None) -> Elements:
    out = _item(rel, "CONTAINER", name, t0040A050=el(0x0040A050, "CS", "CONTINUOUS"), t0040A730=sq(CONTENT, items))
    if template:
        out[0x0040A504] = sq(0x0040A504, [{0x00080105: el(0x00080105, "CS", "DCMR"),
                                           0x0040DB00: el(0x0040DB00, "CS", template)}])  # fmt: skip
    return out


def _num(name: tuple, value: float | None, unit, sites: list | None = None) -> list:
    if value is None:
        return []
    value = float(value)
    measured = {0x004008EA: code_sq(0x004008EA, unit.value, unit.scheme_designator, unit.meaning), 0x0040A161: el(0x0040A161, "FD", value),
                0x0040A30A: el(0x0040A30A, "DS", format_number_as_ds(value))}  # fmt: skip
    out = _item("CONTAINS", "NUM", name, t0040A300=sq(MEASURED, [measured]))
    if sites:
        out[CONTENT] = sq(CONTENT, sites)
    return [out]


def _site(laterality=None) -> Elements:
    out = _code_item(HAS_MOD, ("363698007", "SCT", "Finding Site"), ("50092008", "SCT", "Muscle of thigh"))
    if laterality is not None:
        lat = _code_item(HAS_MOD, ("272741003", "SCT", "Laterality"), (laterality.value, "SCT", laterality.meaning))
        out[CONTENT] = sq(CONTENT, [lat])
    return out


def _image(name: tuple, sop_class: str, uid: str, segment: int | None = None) -> Elements:
    ref = {0x00081150: el(0x00081150, "UI", sop_class), 0x00081155: el(0x00081155, "UI", uid)}
    if segment is not None:
        ref[0x0062000B] = el(0x0062000B, "US", segment)
    return _item("CONTAINS", "IMAGE", name, t00081199=sq(SOP_REFS, [ref]))


@cache
def _loc(value: str, meaning: str | None = None) -> tuple:
    c = local(value, meaning)
    return c.value, c.scheme_designator, c.meaning


def _group_head(identifier: str, model: dict) -> list:
    """Tracking identifier and UID, the finding, the algorithm (as highdicom's TID 1501 / 1410 start)."""
    return [
        _text(HAS_CTX, ("112039", "DCM", "Tracking Identifier"), identifier),
        _item(HAS_CTX, "UIDREF", ("112040", "DCM", "Tracking Unique Identifier"), t0040A124=el(UID, "UI", new_uid())),
        *_finding_and_algorithm(model["name"], str(model["version"]), model["sha256"], model["precision"]),
    ]


@cache
def _finding_and_algorithm(name: str, version: str, sha256: str, precision: str) -> tuple[bytes, ...]:
    """The same in every group of every film of a bundle: packed once."""
    items = [
        _code_item("CONTAINS", ("121071", "DCM", "Finding"), ("50092008", "SCT", "Muscle of thigh")),
        _text(HAS_MOD, ("111001", "DCM", "Algorithm Name"), f"sarco-edge {name}"),
        _text(HAS_MOD, ("111003", "DCM", "Algorithm Version"), version),
        _text(HAS_MOD, ("111002", "DCM", "Algorithm Parameters"), f"sha256={sha256}"),
        _text(HAS_MOD, ("111002", "DCM", "Algorithm Parameters"), f"precision={precision}"),
    ]
    return tuple(item(i) for i in items)


def _film_measurements(report: Report) -> list:
    """edge.dicom_codes.film_measurements, packed."""
    return [
        m
        for name, value, unit, at_muscle in film_measurements(report)
        for m in _num(name, value, unit, [_site()] if at_muscle else None)
    ]


def _film_evaluations(report: Report | None, flag: str) -> list:
    ev = [_code_item("CONTAINS", _loc("flag", "Screening flag"), _loc(flag))]
    if report is not None:
        ev.append(_code_item("CONTAINS", _loc("criteria", "Criteria"), _loc(report.criteria)))
        for key, value in report.quality.items():
            if isinstance(value, bool):
                yes = ("373066001", "SCT", "Yes") if value else ("373067005", "SCT", "No")
                ev.append(_code_item("CONTAINS", _loc(key), yes))
    return ev


def _film_group(film: Film, report: Report | None, model: dict) -> Elements:
    flag = report.flag if report is not None else "not_assessable"
    items = _group_head("film", model)
    items += _film_measurements(report) if report is not None else []
    items += _film_evaluations(report, flag)
    items.append(_image(("121112", "DCM", "Source of Measurement"), film.src.SOPClassUID, film.src.SOPInstanceUID))
    return _container("CONTAINS", ("125007", "DCM", "Measurement Group"), items, "1501")


def _roi_group(film: Film, report: Report, seg_uid: str, number: int, side: str) -> Elements:
    area = {"right": report.right_cm2, "left": report.left_cm2}.get(side, report.thigh_muscle_area_cm2)
    items = _group_head(side, report.model)
    if side in SIDES:
        items.insert(3, _site(SIDES[side]))
    items += _num(AREA, area, CM2)
    items.append(_image(("121214", "DCM", "Referenced Segmentation Frame"), SEG_CLASS, seg_uid, number))
    items.append(_image(("121233", "DCM", "Source Image for Segmentation"), film.src.SOPClassUID,
                        film.src.SOPInstanceUID))  # fmt: skip
    return _container("CONTAINS", ("125007", "DCM", "Measurement Group"), items, "1410")


@cache
def _device_uid() -> str:
    import pydicom

    return pydicom.uid.generate_uid(entropy_srcs=["sarco-edge device"])  # as edge.dicom_sr._device_context


@cache
def _context() -> tuple[bytes, ...]:
    """The language and the observer (this device): the same in every SR, packed once."""
    return tuple(
        item(i)
        for i in [
            _code_item(
                HAS_MOD,
                ("121049", "DCM", "Language of Content Item and Descendants"),
                ("en-US", "RFC5646", "English (United States)"),
            ),
            _code_item(HAS_CTX, ("121005", "DCM", "Observer Type"), ("121007", "DCM", "Device")),
            _item(HAS_CTX, "UIDREF", ("121012", "DCM", "Device Observer UID"), t0040A124=el(UID, "UI", _device_uid())),
            _text(HAS_CTX, ("121013", "DCM", "Device Observer Name"), "sarco-edge"),
            _text(HAS_CTX, ("121014", "DCM", "Device Observer Manufacturer"), "sarco-edge"),
            _text(HAS_CTX, ("121015", "DCM", "Device Observer Model Name"), __version__),
            _code_item(
                HAS_MOD,
                ("121058", "DCM", "Procedure reported"),
                _loc("thigh_muscle_screening", "Thigh muscle screening on a long-leg radiograph"),
            ),
        ]
    )


def _evidence(film: Film, seg: tuple[str, str] | None) -> bytes:
    """Current Requested Procedure Evidence: the source's series, then the SEG's (seg: its series and SOP UIDs)."""
    src = film.src

    def series(series_uid: str, sop_class: str, uid: str) -> Elements:
        ref = {0x00081150: el(0x00081150, "UI", sop_class), 0x00081155: el(0x00081155, "UI", uid)}
        return {SOP_REFS: sq(SOP_REFS, [ref]), 0x0020000E: el(0x0020000E, "UI", series_uid)}

    refs = [series(src.SeriesInstanceUID, src.SOPClassUID, src.SOPInstanceUID)]
    if seg is not None:
        refs.append(series(seg[0], SEG_CLASS, seg[1]))
    study = {0x00081115: sq(0x00081115, refs), 0x0020000D: el(0x0020000D, "UI", src.StudyInstanceUID)}
    return sq(0x0040A375, [study])


def sr_bytes(film: Film, uid: str, report: Report | None, seg: tuple[str, str, list[str]] | None,
             reasons: list[str], model: dict, note: str) -> list:  # fmt: skip
    """The SR file; `seg`: the SEG's (series UID, SOP instance UID, sides), None where no SEG was written."""
    groups = [_film_group(film, report, model)]
    if seg is not None and report is not None:
        groups += [_roi_group(film, report, seg[1], n, side) for n, side in enumerate(seg[2], start=1)]
    rel = "CONTAINS"
    statements = [_text(rel, _loc("statement", "Screening statement"), note)]
    statements += [_text(rel, _loc("reason", "Reason"), r) for r in reasons]
    content = [
        *_context(),
        _container(rel, ("126010", "DCM", "Imaging Measurements"), groups),
        _container(rel, ("C0034375", "UMLS", "Qualitative Evaluations"), statements),
    ]
    out = common(film, SR_CLASS, uid, new_uid(), "sr", "SR", "sarco-edge screening report")
    out.update({
        0x00081111: sq(0x00081111, []), VT: el(VT, "CS", "CONTAINER"),
        NAME: code_sq(NAME, "126000", "DCM", "Imaging Measurement Report"),
        0x0040A050: el(0x0040A050, "CS", "CONTINUOUS"), 0x0040A372: sq(0x0040A372, []),
        0x0040A375: _evidence(film, seg[:2] if seg else None), 0x0040A491: el(0x0040A491, "CS", "COMPLETE"),
        0x0040A493: el(0x0040A493, "CS", "UNVERIFIED"), 0x0040A496: el(0x0040A496, "CS", "PRELIMINARY"),
        0x0040A504: sq(0x0040A504, [{0x00080105: el(0x00080105, "CS", "DCMR"), 0x0040DB00: el(0x0040DB00, "CS", "1500")}]),
        CONTENT: sq(CONTENT, content),
    })  # fmt: skip
    return file_bytes(SR_CLASS, uid, out)
