"""`--dicom-out`: SEG, SR (TID 1500) and overlay SC that file with the source study, pass dciodvfy, and
read back with the numbers `screen --json` printed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from edge.dicom_sr import sr_values
from tests.helpers import REPO, run_cli

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
AREA = "42798000"  # SNOMED "Area"
LATERALITY = "272741003"


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's Error lines for one file (Debian dicom3tools; .ci/run installs it)."""
    exe = shutil.which("dciodvfy")
    assert exe, "dciodvfy not found: apt-get install dicom3tools (CI installs it)"
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def screened(tmp_path_factory) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("dicom-out")
    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    res = run_cli("edge.cli", "screen", str(SAMPLE), "--json", "--dicom-out", str(out))
    assert res.returncode == 0, res.stderr
    assert hashlib.sha256(SAMPLE.read_bytes()).hexdigest() == digest  # the input is untouched
    (folder,) = [p for p in out.iterdir()]
    return json.loads(res.stdout), folder, res.stdout + res.stderr


def test_three_objects_pass_dciodvfy(screened):
    _, folder, _ = screened
    assert sorted(p.name for p in folder.iterdir()) == ["sc.dcm", "seg.dcm", "sr.dcm"]
    for p in folder.iterdir():
        assert dciodvfy_errors(p) == [], p.name
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_sr_numbers_equal_screen_json(screened):
    rep, folder, _ = screened
    sr = pydicom.dcmread(folder / "sr.dcm")
    hd.sr.Comprehensive3DSR.from_dataset(sr)  # highdicom reads it back
    v = sr_values(sr)
    assert v[f"film/{AREA}"] == pytest.approx(rep["thigh_muscle_area_cm2"], abs=0.01)
    assert v[f"right/{AREA}"] == pytest.approx(rep["right_cm2"], abs=0.01)
    assert v[f"left/{AREA}"] == pytest.approx(rep["left_cm2"], abs=0.01)
    assert v[f"right/{LATERALITY}"] == "24028007" and v[f"left/{LATERALITY}"] == "7771000"
    assert v["film/smi_estimate"] == rep["smi_estimate"]
    assert [v["film/smi_low"], v["film/smi_high"]] == rep["smi_interval_95"]
    assert v["film/p_low"] == rep["p_low"] and v["film/cutoff"] == rep["cutoff"]
    assert v["film/flag"] == rep["flag"] == "normal" and v["film/criteria"] == rep["criteria"]
    assert v["film/segmentation_confidence"] == rep["quality"]["segmentation_confidence"]
    assert v["report/statement"] == [rep["note"]] and "not a diagnosis" in rep["note"]
    assert f"sha256={rep['model']['sha256']}" in v["film/111002"]


def test_seg_per_side_matches_areas(screened):
    rep, folder, _ = screened
    seg = pydicom.dcmread(folder / "seg.dcm")
    assert seg.SegmentationType == "BINARY"
    labels = [s.SegmentLabel for s in seg.SegmentSequence]
    assert labels == ["thigh muscle, right", "thigh muscle, left"]
    for s in seg.SegmentSequence:
        assert s.SegmentedPropertyTypeCodeSequence[0].CodeValue == "50092008"
        alg = s.SegmentationAlgorithmIdentificationSequence
        assert str(rep["model"]["version"]) in str(alg[0].AlgorithmVersion)
    assert (
        rep["model"]["sha256"]
        in seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters
    )
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns).astype(bool)
    px = float(np.prod([float(x) for x in rep["pixel_spacing_mm"]])) / 100.0
    right, left = (int(f.sum()) for f in frames)
    assert right * px == pytest.approx(rep["right_cm2"], abs=0.01)
    assert left * px == pytest.approx(rep["left_cm2"], abs=0.01)
    assert right + left == rep["thigh_muscle_area_px"] and not np.any(frames[0] & frames[1])


def test_files_with_source_study_never_invents_ids(screened):
    _, folder, text = screened
    src = pydicom.dcmread(SAMPLE, stop_before_pixels=True)
    series = {src.SeriesInstanceUID}
    for name in ("seg.dcm", "sr.dcm", "sc.dcm"):
        ds = pydicom.dcmread(folder / name, stop_before_pixels=True)
        assert (ds.PatientName, ds.PatientID, ds.StudyInstanceUID) == (
            src.PatientName, src.PatientID, src.StudyInstanceUID
        )  # fmt: skip
        assert ds.SeriesInstanceUID not in series
        series.add(ds.SeriesInstanceUID)
    sr = pydicom.dcmread(folder / "sr.dcm")
    evidence = {r.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence
                for se in s.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}  # fmt: skip
    assert src.SOPInstanceUID in evidence and pydicom.dcmread(folder / "seg.dcm").SOPInstanceUID in evidence
    assert str(src.PatientName) not in text and str(src.PatientID) not in text


def test_not_assessable_film_gets_sr_only(tmp_path):
    res = run_cli("edge.cli", "screen", str(CT_SMALL), "--dicom-out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    (folder,) = list(tmp_path.iterdir())
    assert [p.name for p in folder.iterdir()] == ["sr.dcm"]
    assert dciodvfy_errors(folder / "sr.dcm") == []
    v = sr_values(pydicom.dcmread(folder / "sr.dcm"))
    assert v["film/flag"] == "not_assessable"
    assert "image is not a long-leg (lower-extremity) film" in v["report/reason"]


def test_non_dicom_source_one_line_and_nothing_written(tmp_path):
    import cv2

    png = tmp_path / "film.png"
    cv2.imwrite(str(png), np.zeros((64, 32), np.uint8))
    out = tmp_path / "out"
    res = run_cli("edge.cli", "screen", str(png), "--spacing-mm", "0.4", "--dicom-out", str(out))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "--dicom-out needs a DICOM film" in res.stderr
    assert not out.exists()


def test_batch_writes_a_folder_per_dicom_film(tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    shutil.copy(SAMPLE, films / "a.dcm")
    shutil.copy(CT_SMALL, films / "ct.dcm")
    out = tmp_path / "dicom"
    csv = str(tmp_path / "r.csv")
    res = run_cli("edge.cli", "batch", str(films), "--out", csv, "--dicom-out", str(out), "--workers", "0")
    assert res.returncode == 0, res.stderr
    names = sorted(sorted(p.name for p in d.iterdir()) for d in out.iterdir())
    assert names == [["sc.dcm", "seg.dcm", "sr.dcm"], ["sr.dcm"]]
    inside = run_cli(
        "edge.cli", "batch", str(films), "--out", str(tmp_path / "r2.csv"), "--dicom-out", str(films / "d")
    )
    assert inside.returncode == 2 and "outside the folder" in inside.stderr


def test_failed_build_leaves_no_folder_and_keeps_the_old_one(tmp_path, monkeypatch):
    from edge import dicom_out

    def boom(tmp):
        (tmp / "sr.dcm").write_bytes(b"half")
        raise RuntimeError("killed mid-way")

    (tmp_path / "film").mkdir()
    (tmp_path / "film" / "sr.dcm").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        dicom_out._write_folder(tmp_path, "film", boom)
    assert [p.name for p in tmp_path.iterdir()] == ["film"]
    assert (tmp_path / "film" / "sr.dcm").read_bytes() == b"old"


def test_one_thigh_film_one_segment(tmp_path):
    """A film with one thigh (the other half blanked, written as a new copy): one segment, one ROI group."""
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.dcmread(SAMPLE)
    pixels = ds.pixel_array.copy()
    pixels[:, pixels.shape[1] // 2 :] = pixels.min()
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    film = tmp_path / "one_thigh.dcm"
    ds.save_as(film, enforce_file_format=True)
    out = tmp_path / "out"
    res = run_cli("edge.cli", "screen", str(film), "--json", "--dicom-out", str(out))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["sides_seen"] == 1 and rep["flag"] != "not_assessable"
    (folder,) = list(out.iterdir())
    seg = pydicom.dcmread(folder / "seg.dcm")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["thigh muscle"]
    assert int(seg.pixel_array.astype(bool).sum()) == rep["thigh_muscle_area_px"]
    v = sr_values(pydicom.dcmread(folder / "sr.dcm"))
    assert v[f"both/{AREA}"] == v[f"film/{AREA}"] == rep["thigh_muscle_area_cm2"]
    assert v["film/smi_estimate"] == rep["smi_estimate"]
    for p in folder.iterdir():
        assert dciodvfy_errors(p) == [], p.name


def test_sr_document_equals_highdicoms_own_constructor(monkeypatch):
    """build_sr hands highdicom a bare root and puts the content tree in itself (no deep copy): the
    dataset is the one highdicom's constructor makes from the whole tree, timestamps aside."""
    import itertools

    from pydicom.filebase import DicomBytesIO

    from edge import dicom_out, dicom_sr
    from edge.reader import read_film
    from edge.screen import Options, Screener

    res = Screener().screen(read_film(SAMPLE), Options())
    src = dicom_out.source_header(SAMPLE)
    seg = dicom_out.build_seg(src, res.report, res.mask, res.film.pixels)

    def whole(evidence, root):
        return hd.sr.Comprehensive3DSR(evidence=evidence, content=root, series_instance_uid=hd.UID(),
                                       series_number=9902, sop_instance_uid=hd.UID(), instance_number=1,
                                       manufacturer="sarco-edge", is_complete=True,
                                       series_description="sarco-edge screening report")  # fmt: skip

    def made(document, report, segmentation) -> dict:
        uids = itertools.count(1)
        monkeypatch.setattr(hd, "UID", lambda: pydicom.uid.UID(f"1.2.3.{next(uids)}"))
        monkeypatch.setattr(dicom_sr, "_document", document)
        buf = DicomBytesIO()
        reasons = report.reasons if report else ["unreadable"]
        pydicom.dcmwrite(buf, dicom_sr.build_sr(src, report, segmentation, reasons, res.report.model))
        back = pydicom.dcmread(DicomBytesIO(buf.getvalue())).to_json_dict()
        when = {"00080012", "00080013", "00080023", "00080033", "0018A001"}  # creation/content times, equipment
        return {k: v for k, v in back.items() if k not in when}

    fast = dicom_sr._document
    for report, segmentation in ((res.report, seg), (None, None)):
        assert made(fast, report, segmentation) == made(whole, report, segmentation)
