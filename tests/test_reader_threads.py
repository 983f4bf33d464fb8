"""Reading in several threads at once gives each file its own answer (batch prefetch).

Regression: `warnings.catch_warnings` in the DICOM parse is process-wide, so with two prefetch
threads a good film could be told a truncated neighbour's "end of file" and come back
`truncated` (31-36 of 100 good films in a 200-file batch).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
from pydicom.uid import RLELossless

from edge.reader import ReadError, read_film
from tests.hostile import grey_film, write_dicom


def _kind(path: Path) -> str:
    try:
        read_film(path)
        return "ok"
    except ReadError as e:
        return e.kind


def test_truncated_and_good_films_read_in_parallel_keep_their_own_result(tmp_path: Path):
    src = write_dicom(tmp_path / "native.dcm", grey_film(256, 96), BitsStored=12)
    ds = pydicom.dcmread(src)
    ds.compress(RLELossless)
    whole = tmp_path / "whole.dcm"
    ds.save_as(whole)
    data = whole.read_bytes()
    files = []
    for i in range(40):
        p = tmp_path / f"{i:03d}.dcm"
        p.write_bytes(data if i % 2 else data[: len(data) - (len(data) - 1200) // 2])
        files.append(p)
    expected = [_kind(p) for p in files]
    assert expected == ["truncated", "ok"] * 20
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(_kind, files))
        wrong = [(p.name, e, g) for p, e, g in zip(files, expected, got) if e != g]
        assert not wrong, wrong[:5]
