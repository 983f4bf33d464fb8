"""DICOM outputs that file with the source study: a SEG of the thigh muscle, a TID 1500 SR, an overlay SC.

A PACS keeps results next to the film only when patient and study identifiers are the source's
own, so they are copied from the source header (never invented) and only series and instance
UIDs are new. A film that is not DICOM gets no DICOM output: it has no study to file with, and a
made-up one would be an orphan in the PACS (see `DicomOutError`).

The SEG has one binary segment per thigh where two are seen (else one), SNOMED 50092008 "Muscle of
thigh". The SR's layout is in edge/dicom_sr.py. A not_assessable film gets the SR only (no SEG, no
SC). Each film's folder is built next to its final place and published with one rename.

What is written is packed directly into bytes (`build_files`: edge.dicom_fast, edge.dicom_sr_fast),
a few ms per film; `build_seg`, `build_sc` here and edge.dicom_sr.build_sr make the same objects
with highdicom and are the reference tests/test_dicom_fast.py compares them with.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from . import __version__
from .dicom_codes import MANUFACTURER, SERIES_NUMBERS
from .files import fsync_dir
from .measure import left_of_line, mask_box, split_sides
from .report import Report

if TYPE_CHECKING:
    import highdicom as hd

FILES = {"seg": "seg.dcm", "sr": "sr.dcm", "sc": "sc.dcm"}
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
         "ReferringPhysicianName", "AccessionNumber")  # fmt: skip


class DicomOutError(Exception):
    """No DICOM output for this film (e.g. the source is not DICOM). str(e) is one line, no identifiers."""


@dataclass(frozen=True)
class Written:
    folder: Path
    files: dict[str, Path]  # "seg" / "sr" / "sc" -> path


def source_header(path: Path) -> Dataset:
    """The source's header (no pixels): what the outputs copy patient and study from."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        raise DicomOutError("source is not DICOM: no DICOM output (there is no study to file it with)") from None
    if not all(k in ds for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")):
        raise DicomOutError("source DICOM lacks study/series/instance UIDs: no DICOM output")
    for keyword in TYPE2:  # present but empty where the source has none: unknown, never made up
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


def side_labels(mask: np.ndarray, pixels: np.ndarray, areas=None, spacing=None) -> np.ndarray | None:
    """The mask as a label map, 1 = the patient's right (image left), 2 = left, exactly as
    measure.thigh_areas split it: by the femurs' midline where `areas` carries one, else as
    measure.split_sides did; None where it sees one thigh.

    split_sides assigns whole 8-connected blobs by their centroid to the side of one x, so the
    image-left side is a prefix of the blobs sorted by centroid x, found by its pixel count: the
    screening's own (`areas`, measure.Areas, with the film's `spacing`), else split_sides runs
    again (on the mask's bounding box: the same blobs, gaps and pixels). Where an empty column has
    exactly that count on its left, the split is that column (no blob straddles an empty column, so
    the blobs left of it are a prefix, and prefixes differ in count): no blobs to label.
    """
    mask = np.asarray(mask, bool)
    if areas is not None and areas.midline is not None and areas.sides_seen == 2:  # split by the femurs
        left = left_of_line(mask, areas.midline)
        return left.view(np.uint8) + (mask & ~left).view(np.uint8) * np.uint8(2)
    box = mask_box(mask)
    if box is None:
        return None
    crop = mask[box]
    right = _right_count(areas, spacing)
    if right is None:
        counts = split_sides(crop, pixels[box])
        if counts is None:
            return None
        right = counts[0]
    out = np.zeros(mask.shape, np.uint8)
    per_column = np.count_nonzero(crop, axis=0)
    at = np.flatnonzero((per_column == 0) & (np.cumsum(per_column) == right))
    if at.size:
        out[box][:, : at[0]] = crop[:, : at[0]]
        out[box][:, at[0] :] = crop[:, at[0] :] * np.uint8(2)
        return out
    n, lab, stats, cent = cv2.connectedComponentsWithStats(crop.view(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: cent[i][0])
    prefix = np.cumsum([int(stats[i, cv2.CC_STAT_AREA]) for i in order]).tolist()
    if right not in prefix:
        raise ValueError("side split could not be reproduced from the mask")
    side = np.full(max(n, 256), 2, np.uint8)  # blob -> side, looked up per pixel
    side[0] = 0
    side[order[: prefix.index(right) + 1]] = 1
    out[box] = cv2.LUT(lab.astype(np.uint8), side[:256]) if n <= 256 else side[lab]
    return out


def _right_count(areas, spacing) -> int | None:
    """The image-left pixel count behind the screening's areas (measure.thigh_areas: count * px),
    where they split two sides and the count reproduces the area exactly; else None."""
    if areas is None or areas.sides_seen != 2 or areas.right is None:
        return None
    px = (spacing[0] * spacing[1] / 100.0) if spacing else 1.0
    count = round(areas.right / px)
    return count if count * px == areas.right else None


def side_masks(mask: np.ndarray, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """{"right": ..., "left": ...} boolean masks (see side_labels); {} for one thigh."""
    labels = side_labels(mask, pixels)
    return {} if labels is None else {"right": labels == 1, "left": labels == 2}


def _segments(
    report: Report, mask: np.ndarray, pixels: np.ndarray, areas=None, spacing=None
) -> tuple[list, np.ndarray]:
    """The sides of the SEG's segments (one per thigh where two are seen, else "both") and the label
    map whose value n marks segment n (segments cannot overlap); `areas`, `spacing`: see side_labels."""
    labels = side_labels(mask, pixels, areas, spacing) if report.sides_seen == 2 else None
    if labels is not None:
        return ["right", "left"], labels
    return ["both"], np.ascontiguousarray(mask, bool).view(np.uint8)  # 1 = the one segment (a view, not a copy)


def _algorithm(model: dict) -> hd.AlgorithmIdentificationSequence:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(
        name=f"sarco-edge {model['name']}",
        family=codes.cid7162.ArtificialIntelligence,
        version=str(model["version"]),
        parameters={"sha256": model["sha256"], "precision": model["precision"]},
    )


def build_seg(
    src: Dataset, report: Report, mask: np.ndarray, pixels: np.ndarray, areas=None, spacing=None
) -> hd.seg.Segmentation:
    """Binary SEG on the source's pixel grid, a segment per thigh seen as two (else one): highdicom's,
    the reference for edge.dicom_fast.seg_bytes (what `--dicom-out` writes); `areas`, `spacing`: the
    screening's split (see side_labels)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .dicom_sr import MUSCLE_OF_THIGH, SIDES

    if mask.shape != (int(src.Rows), int(src.Columns)):
        raise DicomOutError("mask and source image differ in size: no SEG")
    sides, labels = _segments(report, mask, pixels, areas, spacing)
    descriptions = []
    for number, side in enumerate(sides, start=1):
        label = "thigh muscle" if side == "both" else f"thigh muscle, {side}"
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=codes.SCT.AnatomicalStructure,
                segmented_property_type=MUSCLE_OF_THIGH,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=_algorithm(report.model),
                anatomic_regions=[codes.SCT.Thigh],
                primary_anatomic_structures=[SIDES[side]] if side in SIDES else None,
            )
        )
    flat = Dataset(src)  # a shallow copy; a projection film has no patient frame of reference for the SEG
    if "FrameOfReferenceUID" in flat:
        del flat.FrameOfReferenceUID
    seg = hd.seg.Segmentation(
        source_images=[flat],
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBERS["seg"],
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{report.model['name']} {report.model['version']}",
        software_versions=__version__,
        device_serial_number="0",
        series_description="sarco-edge thigh muscle",
        omit_empty_frames=False,
    )
    seg.PatientOrientation = src.get("PatientOrientation")
    return seg


def build_sc(src: Dataset, rgb: np.ndarray) -> Dataset:
    """The overlay as a Secondary Capture in the source's study (patient and study copied, new series)."""
    import highdicom as hd

    orientation = src.get("PatientOrientation")
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=src,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT if orientation else None,
        patient_orientation=tuple(orientation) if orientation else None,
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBERS["sc"],
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="sarco-edge thigh muscle overlay (screening aid, not a diagnosis)",
    )
    sc.Laterality = None  # General Series, type 2C: both thighs, so no single side
    return sc


def _publish(tmp: Path, final: Path) -> None:
    """Swap the finished temp folder in; an older folder of the same film is moved aside, then removed."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name[:80]}.", suffix=".old"))
        os.replace(final, old / "x")
    os.replace(tmp, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_folder(out_dir: Path, name: str, build) -> Written:
    """Build every object into a temp folder next to the final one, then publish it with one rename
    (the files inside need no rename of their own: nothing sees the folder before it is published)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{name[:80]}.", suffix=".tmp"))
    try:
        objs = build(tmp)
        for kind, ds in objs.items():
            if isinstance(ds, Dataset):  # a highdicom/pydicom dataset (the reference builders)
                buf = pydicom.filebase.DicomBytesIO()
                pydicom.dcmwrite(buf, ds, enforce_file_format=True)
                ds = [buf.getvalue()]
            with open(tmp / FILES[kind], "wb") as f:
                f.writelines(ds)  # edge.dicom_enc.file_bytes' chunks
                f.flush()
                os.fsync(f.fileno())
        final = out_dir / name
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Written(final, {k: final / FILES[k] for k in objs})


def build_files(src: Dataset, result) -> dict[str, list]:
    """The SEG, SR and SC files (as chunks of bytes) of one screened film (the SR alone for a not_assessable one), packed
    directly (edge.dicom_fast, edge.dicom_sr_fast): the objects build_seg / build_sr / build_sc make."""
    from .dicom_fast import Film, new_uid, sc_bytes, sc_overlay, seg_bytes
    from .dicom_sr_fast import sr_bytes

    report, film = result.report, Film(src)
    if report.flag == "not_assessable":
        return {"sr": sr_bytes(film, new_uid(), report, None, report.reasons, report.model, report.note)}
    if result.mask.shape != (int(src.Rows), int(src.Columns)):
        raise DicomOutError("mask and source image differ in size: no SEG")
    areas = getattr(result, "areas", None)
    sides, labels = _segments(report, result.mask, result.film.pixels, areas, result.film.spacing_mm)
    seg = (new_uid(), new_uid(), sides)
    files = {"seg": seg_bytes(film, seg[1], seg[0], sides, labels, report.model)}
    files["sr"] = sr_bytes(film, new_uid(), report, seg, report.reasons, report.model, report.note)
    files["sc"] = sc_bytes(film, new_uid(), sc_overlay(result.film.pixels, result.mask, report.overlay_lines()))
    return files


def write_outputs(out_dir: Path, name: str, source: Path, result, src: Dataset | None = None) -> Written:
    """SEG + SR + SC of one screened film (`screen.Result`) into `out_dir/name/`, atomically.

    `src`: the source's header where the caller has it (else it is read from `source`). Raises
    DicomOutError when the source is not DICOM (one line, no identifiers).
    """
    src = source_header(Path(source)) if src is None else src
    return _write_folder(Path(out_dir), name, lambda tmp: build_files(src, result))


def write_unreadable(out_dir: Path, name: str, source: Path, reason: str, model: dict) -> Written:
    """A not_assessable SR for a DICOM file the screener could not read as a film (e.g. a CT slice)."""
    from .dicom_fast import Film, new_uid
    from .dicom_sr_fast import sr_bytes
    from .screen import DISCLAIMER

    src = source_header(Path(source))
    sr = sr_bytes(Film(src), new_uid(), None, None, [reason], model, DISCLAIMER)
    return _write_folder(Path(out_dir), name, lambda tmp: {"sr": sr})


def folder_name(rel: str) -> str:
    """One flat, unique folder name per input (the batch's overlay naming, without '.png')."""
    from .batch import overlay_name

    return overlay_name(rel)[: -len(".png")]


def write_for_cli(out_dir: Path, image: Path, result) -> str | None:
    """`screen --dicom-out`: write the film's folder; the one error line (no identifiers), if any."""
    try:
        write_outputs(out_dir, folder_name(image.name), image, result)
    except DicomOutError as e:
        return f"{image.name}: {e}"
    except OSError as e:
        return f"--dicom-out cannot be written ({e.strerror or type(e).__name__})"
    return None


def source_problem(film, out_dir: Path | None) -> str | None:
    """Why `--dicom-out` cannot be honoured for this film, before any screening (None: it can)."""
    if out_dir is not None and film.source_format != "dicom":
        return (
            f"--dicom-out needs a DICOM film: a {film.source_format} file has no patient or study to file results with"
        )
    return None


def batch_outcomes(out_dir: Path | None, inner, screener, opts, workers: int):
    """The batch's outcomes with `--dicom-out` written alongside (None/inner unchanged without it)."""
    if out_dir is None:
        return inner
    if inner is None:
        import inspect

        from .batch import _local_outcomes  # the batch's own local engine, wrapped

        # The worker pipeline keeps masks only when asked (`masks`); the SEG needs them.
        keep = {"masks": True} if "masks" in inspect.signature(_local_outcomes).parameters else {}
        inner = _local_outcomes(screener, opts, workers, **keep)
    from .dicom_batch import DicomTee  # the folders are written in a writer process

    return DicomTee(out_dir, inner)


def batch_problem(folder: Path, out_dir: Path) -> str | None:
    """`batch --dicom-out` inside the folder being screened would screen its own outputs next time."""
    try:
        inside = Path(out_dir).resolve().is_relative_to(Path(folder).resolve())
    except OSError:
        inside = False
    if inside:
        return "--dicom-out must be outside the folder being screened (its files would be screened next time)"
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        return f"--dicom-out is a file, not a folder: {Path(out_dir).name}"
    return None
