"""What the reader tests share: the DICOM corpora (pydicom, pydicom-data), the real films, and checks of a film or an error."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from edge.reader import KINDS, Film, ReadError, read_film
from tests.hostile import PATIENT_ID, PATIENT_NAME, grey_film, write_dicom

# Never pydicom.data.get_testdata_files(): it tries to download and hangs offline.
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _data_store_dir() -> Path:
    import data_store  # pydicom-data, a test dependency

    return Path(data_store.__file__).parent / "data"


DATA_STORE = _data_store_dir()


def _corpus() -> list[Path]:
    files = sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())
    files += sorted(p for p in DATA_STORE.rglob("*") if p.is_file())
    return files


CORPUS = _corpus()


def _corpus_id(path: Path) -> str:
    root = PYDICOM_FILES if PYDICOM_FILES in path.parents else DATA_STORE
    return f"{'pydicom' if root == PYDICOM_FILES else 'pydicom-data'}/{path.relative_to(root)}"


def realdata_dir() -> Path:
    """The shared real films; missing means the test environment is broken, so FAIL."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "realdata"]
    if os.environ.get("SARCO_REALDATA"):
        candidates.append(Path(os.environ["SARCO_REALDATA"]))
    for candidate in candidates:
        if (candidate / "RG3_J2KR.dcm").is_file():
            return candidate
    pytest.fail(f"real films not found in {', '.join(map(str, candidates))} (set SARCO_REALDATA)")


def assert_good_film(film: Film) -> None:
    assert isinstance(film, Film)
    assert film.pixels.ndim == 2
    assert film.pixels.dtype == np.float32
    assert film.pixels.size > 0
    assert np.isfinite(film.pixels).all()
    assert float(film.pixels.min()) >= 0.0 and float(film.pixels.max()) <= 1.0
    assert isinstance(film.notes, tuple)
    assert film.spacing_source in (
        "PixelSpacing",
        "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor",
        "user",
        "ImagerPixelSpacing (not corrected for magnification)",
        "none",
    )
    assert (film.spacing_mm is None) == (film.spacing_source == "none")


def assert_clean_error(err: ReadError) -> None:
    msg = str(err)
    assert err.kind in KINDS
    assert msg and msg.strip() == msg
    assert "\n" not in msg and "\r" not in msg
    assert "Traceback" not in msg
    assert PATIENT_NAME not in msg and PATIENT_ID not in msg and "DOE" not in msg


def read_or_error(path: Path, **kwargs) -> Film | ReadError:
    try:
        return read_film(path, **kwargs)
    except ReadError as err:
        return err


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dx(tmp_path: Path, name: str = "dx.dcm", **tags) -> Path:
    return write_dicom(tmp_path / name, grey_film(), BitsStored=12, **tags)


def _patch(path: Path, old: bytes, new: bytes) -> Path:
    """Overwrite a value in place (same length): pydicom will not write malformed DS itself."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))
    return path


def _write(tmp_path: Path, name: str, img: np.ndarray) -> Path:
    ok, buf = cv2.imencode(Path(name).suffix, img)
    assert ok
    path = tmp_path / name
    path.write_bytes(buf.tobytes())
    return path
