"""edge.reader.dicom, .dicom_header and .limits: real films, headerless DICOM, compressed and large films, the pixel budget."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from edge.reader import ReadError, read_film
from tests.hostile import grey_film, write_dicom
from tests.reader_support import (
    DATA_STORE,
    _dx,
    _sha,
    assert_good_film,
    realdata_dir,
)


@pytest.mark.parametrize("name", ["331_DDH_1.dcm", "331_DDH_107.dcm"])
def test_realdata_rgb_pelvis_is_grey_content(name: str) -> None:
    """The RGB J2K pelvis films carry identical channels, so they are read as grey."""
    path = realdata_dir() / name
    before = _sha(path)
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3
    ds.pixel_array_options(decoding_plugin="pylibjpeg")
    rgb = ds.pixel_array.astype(np.int16)
    # The fact that decides the outcome: the three channels are the same grey.
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])

    film = read_film(path)
    assert_good_film(film)
    assert film.photometric == "RGB (grey content)"
    assert film.source_format == "dicom"
    assert film.modality == "DX"
    assert film.transfer_syntax == "JPEG 2000 Image Compression"
    grey = rgb[..., 0].astype(np.float64)
    np.testing.assert_allclose(film.pixels, (grey - grey.min()) / (grey.max() - grey.min()), atol=1e-6)
    # PixelSpacing 1.0 is a placeholder in these files: it is used but flagged.
    assert film.spacing_source == "PixelSpacing" and film.spacing_mm == (1.0, 1.0)
    assert any("placeholder" in note for note in film.notes)
    assert _sha(path) == before


@pytest.mark.parametrize("name", ["RG3_J2KR.dcm", "RG3_J2KI.dcm"])
def test_realdata_rg3_ankle(name: str) -> None:
    path = realdata_dir() / name
    before = _sha(path)
    film = read_film(path)
    assert_good_film(film)
    assert film.pixels.shape == (1760, 1760)
    assert film.spacing_mm is None and film.spacing_source == "none"
    assert film.photometric == "MONOCHROME1"
    assert film.bits_stored == 10
    assert film.body_part == "EXTREMITY"
    ds = pydicom.dcmread(DATA_STORE / name.replace("J2K", "UNC"))
    stored = ds.pixel_array
    assert film.pixels.flat[int(np.argmax(stored))] == pytest.approx(0.0, abs=1e-6)
    assert film.pixels.flat[int(np.argmin(stored))] == pytest.approx(1.0, abs=1e-6)
    assert np.corrcoef(film.pixels.ravel()[::97], stored.ravel()[::97])[0, 1] < -0.9
    assert _sha(path) == before


def test_headerless_dicom_is_read(tmp_path: Path) -> None:
    """A dataset written with no preamble and no file meta (old PACS exports)."""
    data = grey_film()
    path = write_dicom(tmp_path / "full.dcm", data, BitsStored=12, PixelSpacing=[0.2, 0.2])
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    bare = tmp_path / "bare"
    ds.save_as(bare, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    film = read_film(bare)
    assert film.spacing_mm == (0.2, 0.2)
    np.testing.assert_allclose(film.pixels, (data - data.min()) / (data.max() - data.min()), atol=1e-6)
    assert any("transfer syntax missing" in note for note in film.notes)


def test_large_stitched_film(tmp_path: Path) -> None:
    rows, cols = 9000, 3000  # a 3000 x 9000 long-leg film
    column = np.linspace(100, 60000, rows, dtype=np.float64)
    data = np.empty((rows, cols), dtype=np.uint16)
    data[:] = column[:, None].astype(np.uint16)
    data[:, ::7] = 5000
    path = write_dicom(
        tmp_path / "long.dcm",
        data,
        photometric="MONOCHROME1",
        RescaleSlope=1,
        RescaleIntercept=0,
        WindowCenter=30000,
        WindowWidth=60000,
        ImagerPixelSpacing=[0.15, 0.15],
        EstimatedRadiographicMagnificationFactor=1.15,
    )
    del data
    tracemalloc.start()
    try:
        film = read_film(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert film.pixels.shape == (rows, cols) and film.pixels.dtype == np.float32
    assert film.spacing_source == "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
    assert film.spacing_mm == pytest.approx((0.15 / 1.15, 0.15 / 1.15))
    # MONOCHROME1: the bottom (high stored values) is dark, the top bright.
    assert film.pixels[0, 1] > 0.95 and film.pixels[-1, 1] < 0.05
    # uint16 array (54 MB) + float32 result (108 MB) + strips; a whole-film float64
    # copy alone would be 216 MB.
    stored_bytes = rows * cols * 2
    assert peak < 4 * stored_bytes, f"peak {peak / 1e6:.0f} MB"


def test_max_pixels_limit(tmp_path: Path) -> None:
    path = _dx(tmp_path)
    with pytest.raises(ReadError) as info:
        read_film(path, max_pixels=1000)
    assert info.value.kind == "too_large"
    ok, png = cv2.imencode(".png", np.zeros((50, 50), np.uint8))
    (tmp_path / "p.png").write_bytes(png.tobytes())
    with pytest.raises(ReadError) as info:
        read_film(tmp_path / "p.png", max_pixels=1000)
    assert info.value.kind == "too_large"
