"""No patient identifier in any error or reader output, whatever a corrupted header does.

The regression case: pydicom's MR_small_bigendian.dcm with 2 bytes duplicated at offset 191
makes SOPClassUID swallow the header, and the "has no image" error printed it (patient name,
id, birth date) to stderr and into the batch CSV. The fuzz below regenerates that class:
byte duplications and deletions across the header of real files that carry an identity.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pydicom
import pytest

from edge.reader import ReadError, read_film
from tests.helpers import run_cli

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # never get_testdata_files: it downloads
SOURCES = ["MR_small_bigendian.dcm", "MR_small.dcm", "CT_small.dcm", "JPEG2000.dcm", "rtplan.dcm", "ExplVR_BigEnd.dcm"]


def _identity(path: Path) -> list[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    values = []
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "AccessionNumber"):
        v = ds.get(kw)
        if v:
            values += [p for p in str(v).replace("^", " ").split() if len(p) >= 4]
    return values


def _reader_text(path: Path) -> str:
    """Everything read_film lets out as text: the error line, or the film's string fields."""
    try:
        f = read_film(path)
    except ReadError as e:
        return str(e)
    return " ".join(
        str(x)
        for x in (f.notes, f.modality, f.body_part, f.photometric, f.transfer_syntax, f.spacing_source, f.height_source)
    )


def _mutants(data: bytes, stop: int):
    for at in range(132, stop, 5):
        yield f"dup{at}", data[:at] + data[at : at + 2] + data[at:]
        yield f"del{at}", data[:at] + data[at + 3 :]


def test_regression_mr_small_bigendian_dup_191(tmp_path: Path):
    src = TEST_FILES / "MR_small_bigendian.dcm"
    data = src.read_bytes()
    bad = tmp_path / "mr.dcm"
    bad.write_bytes(data[:191] + data[191:193] + data[191:])
    ids = _identity(src)
    assert ids, "the source file must carry an identity for this test to mean anything"
    with pytest.raises(ReadError) as info:
        read_film(bad)
    assert not [i for i in ids if i in str(info.value)], str(info.value)
    for cmd in (["screen", str(bad)], ["inspect", str(bad)]):
        res = run_cli("edge.cli", *cmd)
        assert res.returncode == 3
        assert not [i for i in ids if i in res.stdout + res.stderr], res.stderr
    folder = tmp_path / "in"
    folder.mkdir()
    bad.rename(folder / "mr.dcm")
    res = run_cli("edge.cli", "batch", str(folder), "--out", str(tmp_path / "r.csv"))
    assert res.returncode == 0, res.stderr[-1000:]
    text = (tmp_path / "r.csv").read_text()
    assert list(csv.DictReader(text.splitlines()))[0]["status"] == "error"
    assert not [i for i in ids if i in text + res.stderr]


@pytest.mark.parametrize("name", SOURCES)
def test_header_mutants_never_leak_identity(tmp_path: Path, name: str):
    src = TEST_FILES / name
    data = src.read_bytes()
    ids = _identity(src)
    assert ids
    ds = pydicom.dcmread(src, defer_size=64, force=True)
    stop = min(len(data) - 8, 1400)
    if "PixelData" in ds:
        stop = min(stop, ds.get_item("PixelData", keep_deferred=True).value_tell)
    leaks = []
    for tag, mutated in _mutants(data, stop):
        p = tmp_path / f"{tag}.dcm"
        p.write_bytes(mutated)
        text = _reader_text(p)
        leaks += [(tag, i) for i in ids if i in text]
        p.unlink()
    assert not leaks, leaks[:5]
