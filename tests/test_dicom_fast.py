"""The SEG, SR and SC packed directly (edge.dicom_fast, edge.dicom_sr_fast) equal highdicom's own
(edge.dicom_out.build_seg / build_sc, edge.dicom_sr.build_sr) for the same film, element by element:
new UIDs are compared by where they first appear (so references still point at the same object),
dates and times and the processing-equipment item (which names this writer, not highdicom) aside."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from edge import dicom_fast, dicom_out
from edge.dicom_sr import build_sr, sr_values
from edge.dicom_sr_fast import sr_bytes
from edge.reader import read_film
from edge.screen import DISCLAIMER, Options, Screener
from tests.helpers import REPO

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
WHEN = {0x00080012, 0x00080013, 0x00080023, 0x00080033, 0x00181012, 0x00181014}


@pytest.fixture(scope="module")
def screened():
    return Screener().screen(read_film(SAMPLE), Options())


def _read(obj) -> pydicom.Dataset:
    if isinstance(obj, list):  # edge.dicom_enc.file_bytes' chunks
        obj = b"".join(obj)
    elif not isinstance(obj, bytes):
        buf = DicomBytesIO()
        pydicom.dcmwrite(buf, obj, enforce_file_format=True)
        obj = buf.getvalue()
    return pydicom.dcmread(DicomBytesIO(obj))


def _plain(ds: pydicom.Dataset, src: pydicom.Dataset, uids: dict) -> dict:
    """{tag: value} with sequences as lists of such dicts; new UIDs as "uid<n>" in order of appearance."""
    known = {
        str(v) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID") if (v := src.get(k))
    }
    out = {}
    for elem in ds:
        if elem.tag in WHEN or elem.tag == 0x7FE00010:
            continue
        if elem.VR == "SQ":
            items = list(elem.value)
            if elem.tag == 0x0018A001:  # contributing equipment: the source's item, then the writer (its own)
                items = items[:-1]
            out[elem.tag] = [_plain(i, src, uids) for i in items]
        elif (
            elem.VR == "UI"
            and elem.value
            and str(elem.value) not in known
            and not str(elem.value).startswith("1.2.840.10008.")
        ):
            out[elem.tag] = uids.setdefault(str(elem.value), f"uid{len(uids)}")
        else:
            out[elem.tag] = (elem.VR if elem.VR != "OB or OW" else "OB", str(elem.value))
    return out


def _same(fast: bytes, ref, src, extra: tuple[str, ...] = ()) -> tuple[pydicom.Dataset, pydicom.Dataset]:
    a, b = _read(fast), _read(ref)
    pa, pb = _plain(a, src, {}), _plain(b, src, {})
    for tag in set(pa) - set(pb):  # what only the packed object has: from the source's modules listed
        assert pydicom.datadict.keyword_for_tag(tag) in extra, f"{tag} only in the packed object"
        del pa[tag]
    assert pa == pb
    return a, b


def _objects(src, result, one_side: bool = False):
    report = result.report
    if one_side:
        report = dataclasses.replace(report, sides_seen=1, right_cm2=None, left_cm2=None)
        result = dataclasses.replace(result, report=report)
    film = dicom_fast.Film(src)
    sides, labels = dicom_out._segments(report, result.mask, result.film.pixels, result.areas, result.film.spacing_mm)
    seg_uid, series = dicom_fast.new_uid(), dicom_fast.new_uid()
    fast_seg = dicom_fast.seg_bytes(film, seg_uid, series, sides, labels, report.model)
    ref_seg = dicom_out.build_seg(src, report, result.mask, result.film.pixels, result.areas, result.film.spacing_mm)
    fast_sr = sr_bytes(film, dicom_fast.new_uid(), report, (series, seg_uid, sides), report.reasons, report.model,
                       report.note)  # fmt: skip
    ref_sr = build_sr(src, report, ref_seg, report.reasons, report.model)
    return (fast_seg, ref_seg), (fast_sr, ref_sr), sides


@pytest.mark.parametrize("one_side", [False, True])
def test_seg_and_sr_equal_highdicoms(screened, one_side):
    src = dicom_out.source_header(SAMPLE)
    (fast_seg, ref_seg), (fast_sr, ref_sr), sides = _objects(src, screened, one_side)
    assert sides == (["both"] if one_side else ["right", "left"])
    a, b = _same(fast_seg, ref_seg, src)
    n = (len(sides) * screened.mask.size + 7) // 8  # the same bits, packed the same way (padding aside)
    assert a.PixelData[:n] == b.PixelData[:n] and len(a.PixelData) == len(b.PixelData)
    frames = a.pixel_array.reshape(len(sides), *screened.mask.shape).astype(bool)
    assert np.array_equal(frames.any(axis=0), screened.mask.astype(bool)) and frames.sum() == screened.mask.sum()
    _same(fast_sr, ref_sr, src)


def test_sr_of_a_not_assessable_and_an_unreadable_film(screened):
    src = dicom_out.source_header(SAMPLE)
    report = dataclasses.replace(screened.report, flag="not_assessable", reasons=["too dark", "no thigh"])
    film = dicom_fast.Film(src)
    fast = sr_bytes(film, dicom_fast.new_uid(), report, None, report.reasons, report.model, report.note)
    _same(fast, build_sr(src, report, None, report.reasons, report.model), src)
    px = dataclasses.replace(screened.report, thigh_muscle_area_cm2=None, right_cm2=None, left_cm2=None, reasons=[])
    fast = sr_bytes(film, dicom_fast.new_uid(), px, None, [], px.model, px.note)  # no spacing: the area in pixels
    back = sr_values(_same(fast, build_sr(src, px, None, [], px.model), src)[0])
    assert back["film/thigh_muscle_area_px"] == px.thigh_muscle_area_px
    model = screened.report.model
    fast = sr_bytes(film, dicom_fast.new_uid(), None, None, ["a CT slice"], model, DISCLAIMER)
    _same(fast, build_sr(src, None, None, ["a CT slice"], model), src)


def test_sc_equals_highdicoms_and_carries_the_source_modules(screened):
    src = dicom_out.source_header(SAMPLE)
    rgb = dicom_fast.sc_overlay(screened.film.pixels, screened.mask, screened.report.overlay_lines())
    fast = dicom_fast.sc_bytes(dicom_fast.Film(src), dicom_fast.new_uid(), rgb)
    a, _ = _same(fast, dicom_out.build_sc(src, rgb), src, extra=tuple(dicom_fast.PATIENT_STUDY))
    assert np.array_equal(a.pixel_array, rgb)
    assert a.StudyDescription == src.StudyDescription and a.PatientAge == src.PatientAge


def test_source_without_spacing_orientation_or_equipment_and_with_a_character_set(screened):
    """Absent source attributes stay absent (or empty where type 2); a Latin-1 name is copied in its
    own character set, byte for byte as highdicom copies it."""
    src = dicom_out.source_header(SAMPLE)
    for keyword in ("PixelSpacing", "PatientOrientation", "Manufacturer", "PatientAge"):
        delattr(src, keyword)
    src.SpecificCharacterSet = "ISO_IR 100"
    src.PatientName = "Müller^Jürgen"
    (fast_seg, ref_seg), (fast_sr, ref_sr), _ = _objects(src, screened)
    a, _ = _same(fast_seg, ref_seg, src)
    assert a.PatientName == "Müller^Jürgen" and "PixelMeasuresSequence" not in a.SharedFunctionalGroupsSequence[0]
    _same(fast_sr, ref_sr, src)


def test_patient_study_list_is_highdicoms():
    from highdicom.base import get_iod_module_map, get_module_attribute_map, get_sop_class_iod_map

    iods, modules, attributes = get_sop_class_iod_map(), get_iod_module_map(), get_module_attribute_map()
    for sop_class in ("1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1"):
        keys = [str(a["keyword"]) for m in modules[iods[sop_class]] if m["ie"] in ("Patient", "Study")
                for a in attributes[m["key"]] if not a["path"]]  # fmt: skip
        assert keys == list(dicom_fast.PATIENT_STUDY)


def test_written_folder_passes_dciodvfy(tmp_path, screened):
    exe = shutil.which("dciodvfy")
    assert exe, "dciodvfy not found: apt-get install dicom3tools (CI installs it)"
    written = dicom_out.write_outputs(tmp_path, "film", SAMPLE, screened)
    assert sorted(written.files) == ["sc", "seg", "sr"]
    for path in written.files.values():
        out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
        assert [x for x in (out.stdout + out.stderr).splitlines() if x.startswith("Error")] == [], path.name


def test_sc_overlay_blocks_tint_and_size():
    """f = ceil(rows / 1200): each SC pixel the mean of an f x f block; muscle half film, half red."""
    from edge.dicom_fast import sc_overlay

    pixels = np.full((2401, 300), 0.5, np.float32)
    pixels[:, 150:] = 1.0
    mask = np.zeros(pixels.shape, bool)
    mask[1200:2100, 30:120] = True
    rgb = sc_overlay(pixels, mask, ["line"])
    assert rgb.shape == (800, 100, 3) and rgb.dtype == np.uint8  # f = 3
    g = 128  # 0.5 * 255, rounded
    assert tuple(rgb[200, 20]) == (g, g, g) and tuple(rgb[500, 80]) == (255, 255, 255)
    assert tuple(rgb[550, 25]) == ((g + 255) >> 1, (g + 40) >> 1, (g + 40) >> 1)  # inside the muscle
    assert tuple(rgb[400, 25]) == (255, 0, 0)  # its outline
    assert sc_overlay(pixels[:2400], mask[:2400], []).shape == (1200, 150, 3)  # f = 2
    assert sc_overlay(pixels[:1200], mask[:1200], []).shape == (1200, 300, 3)  # f = 1


def test_side_labels_on_the_bounding_box_equal_the_whole_film(screened):
    """side_labels splits the mask's bounding box; the label map is the one the whole film gives."""
    import cv2

    from edge.measure import split_sides

    def whole(mask, pixels):
        counts = split_sides(mask, pixels)
        n, lab, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        order, total = sorted(range(1, n), key=lambda i: cent[i][0]), 0
        for k, i in enumerate(order):
            total += int(stats[i, cv2.CC_STAT_AREA])
            if total == counts[0]:
                side = np.full(n, 2, np.uint8)
                side[0], side[order[: k + 1]] = 0, 1
                return side[lab]

    mask, pixels = screened.mask.astype(bool), screened.film.pixels
    got = dicom_out.side_labels(mask, pixels)
    assert np.array_equal(got, whole(mask, pixels))
    assert np.count_nonzero(got == 1) > 0 and np.count_nonzero(got == 2) > 0
    assert np.array_equal(got > 0, mask)


def test_side_split_from_the_screenings_areas_is_split_sides(screened, monkeypatch):
    """The screening's own image-left count (Result.areas) picks the same split as split_sides,
    which then need not run: by an empty column where one has that count on its left, else by
    labelled blobs; without it (or where the count does not reproduce the area) split_sides runs."""
    import dataclasses as dc

    from edge import measure

    mask, pixels, spacing = screened.mask.astype(bool), screened.film.pixels, screened.film.spacing_mm
    assert screened.areas.midline is not None  # this film's femurs split it; here the blobs do
    blobs = measure.thigh_areas(mask, spacing, pixels)
    calls = []
    monkeypatch.setattr(dicom_out, "split_sides", lambda *a: calls.append(1) or measure.split_sides(*a))
    whole = dicom_out.side_labels(mask, pixels)
    assert len(calls) == 1 and set(np.unique(whole)) == {0, 1, 2}
    assert np.array_equal(dicom_out.side_labels(mask, pixels, blobs, spacing), whole)
    assert len(calls) == 1  # the screening's count was used
    wrong = dc.replace(blobs, right=blobs.right + 1e-9)
    assert np.array_equal(dicom_out.side_labels(mask, pixels, wrong, spacing), whole) and len(calls) == 2

    # two thighs that touch in x (no empty column between them): the blobs are labelled
    touching = np.zeros((40, 40), bool)
    touching[5:20, 2:22], touching[22:38, 18:38] = True, True  # rows apart, columns overlapping
    right = int(touching[5:20].sum())
    areas = measure.Areas(right + 0.0, right + 0.0, int(touching.sum()) - right + 0.0, "px", 2)
    got = dicom_out.side_labels(touching, np.zeros((40, 40), np.float32), areas, None)
    assert (got == 1).sum() == right and np.array_equal(got[5:20] > 0, touching[5:20]) and (got[22:] == 2).any()
    # and with an empty column between them: split there
    apart = np.zeros((40, 40), bool)
    apart[5:30, 2:15], apart[5:30, 20:38] = True, True
    areas = measure.Areas(0.0, float(apart[:, :15].sum()), float(apart[:, 20:].sum()), "px", 2)
    got = dicom_out.side_labels(apart, np.zeros((40, 40), np.float32), areas, None)
    assert np.array_equal(got == 1, apart & (np.arange(40) < 17)) and np.array_equal(
        got == 2, apart & (np.arange(40) > 17)
    )


def test_copied_as_read_equals_pydicoms_encoding():
    """Elements pydicom left unparsed are copied as the source's bytes: the same bytes pydicom's writer
    gives once they are parsed."""
    from edge.dicom_enc import copied

    keywords = ("SpecificCharacterSet", *dicom_fast.PATIENT_STUDY, *dicom_fast.EQUIPMENT, "PixelSpacing")
    as_read = dicom_out.source_header(SAMPLE)
    parsed = dicom_out.source_header(SAMPLE)
    tags = list(parsed.keys())  # tags (iterating a Dataset would parse its elements)
    for tag in tags:
        parsed[tag]  # noqa: B018 - parses the element
    assert any(getattr(as_read.get_item(t), "is_raw", False) for t in tags)
    assert not any(getattr(parsed.get_item(t), "is_raw", False) for t in tags)
    a, b = copied(as_read, keywords), copied(parsed, keywords)
    assert len(a) >= 8 and a == b


@pytest.mark.parametrize("shape,band", [((7, 13), (2, 5)), ((9, 10), (0, 9)), ((5, 3), (4, 5)), ((6, 11), (0, 1))])
def test_packed_frames_equal_packbits_of_the_whole_frames(shape, band):
    """Packing only the rows with labels gives the bits of the whole frames (odd widths: frames and
    rows not byte-aligned; bands at the first and last rows)."""
    rng = np.random.default_rng(sum(shape) + band[0])
    labels = np.zeros(shape, np.uint8)
    labels[band[0] : band[1]] = rng.integers(0, 3, (band[1] - band[0], shape[1]))
    for segments in (1, 2):
        lab = np.minimum(labels, segments)
        whole = np.stack([lab == n for n in range(1, segments + 1)])
        expected = np.packbits(whole.ravel(), bitorder="little")
        assert np.array_equal(dicom_fast.packed_frames(lab, segments), expected), segments
    assert not dicom_fast.packed_frames(np.zeros(shape, np.uint8), 2).any()
