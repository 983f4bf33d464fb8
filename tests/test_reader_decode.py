"""edge.reader.decode and .isolation: compressed transfer syntaxes, the plugins used, a crashing decoder contained in its child."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import JPEG2000Lossless, RLELossless

from edge.reader import ReadError, read_film
from tests.hostile import gdcm_abort_bytes, grey_film, write_dicom
from tests.reader_support import (
    DATA_STORE,
    PYDICOM_FILES,
    assert_clean_error,
)


def test_mr_small_syntaxes_give_identical_pixels() -> None:
    ref = read_film(PYDICOM_FILES / "MR_small.dcm")
    assert ref.pixels.shape == (64, 64)
    assert ref.transfer_syntax == "Explicit VR Little Endian"
    for name, syntax in [
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_jp2klossless.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression"),
        ("MR_small_bigendian.dcm", "Explicit VR Big Endian"),
        ("MR_small_implicit.dcm", "Implicit VR Little Endian"),
    ]:
        film = read_film(PYDICOM_FILES / name)
        assert film.transfer_syntax == syntax
        np.testing.assert_array_equal(film.pixels, ref.pixels, err_msg=name)
        assert film.spacing_mm == ref.spacing_mm == (0.3125, 0.3125)


def test_jpeg_lossless_decodes() -> None:
    film = read_film(DATA_STORE / "JPEG-LL.dcm")
    assert film.transfer_syntax.startswith("JPEG Lossless")
    assert film.pixels.shape == (1024, 256)
    assert film.pixels.std() > 0.05  # a real image, not a constant


@pytest.mark.parametrize("film_id", ["RG1", "RG3"])
def test_wg04_cr_monochrome1_j2k(film_id: str) -> None:
    """J2K lossless equals uncompressed, and MONOCHROME1 comes out bone bright."""
    j2kr = read_film(DATA_STORE / f"{film_id}_J2KR.dcm")
    uncr = read_film(DATA_STORE / f"{film_id}_UNCR.dcm")
    assert j2kr.photometric == uncr.photometric == "MONOCHROME1"
    assert j2kr.modality == "CR"
    np.testing.assert_array_equal(j2kr.pixels, uncr.pixels)

    ds = pydicom.dcmread(DATA_STORE / f"{film_id}_UNCR.dcm")
    stored = ds.pixel_array
    expected = apply_voi_lut(apply_modality_lut(stored, ds), ds).astype(np.float64)
    expected = 1.0 - (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(uncr.pixels, expected, atol=1e-5)
    # MONOCHROME1: the highest stored value is the darkest pixel, the lowest the brightest.
    assert uncr.pixels.flat[int(np.argmax(stored))] == pytest.approx(0.0, abs=1e-6)
    assert uncr.pixels.flat[int(np.argmin(stored))] == pytest.approx(1.0, abs=1e-6)
    assert np.corrcoef(uncr.pixels.ravel()[::97], stored.ravel()[::97])[0, 1] < -0.9


def test_wg04_lossy_j2k_matches_reference_decode() -> None:
    np.testing.assert_array_equal(
        read_film(DATA_STORE / "RG3_J2KI.dcm").pixels, read_film(DATA_STORE / "RG3_UNCI.dcm").pixels
    )


def test_pillow_plugin_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if 'pillow' is offered first, it is skipped; so is 'pyjpegls' (both come with highdicom)."""
    from pydicom.pixels.decoders.base import Decoder

    import edge.reader.decode as reader

    original = Decoder.available_plugins
    monkeypatch.setattr(Decoder, "available_plugins", property(lambda self: ("pillow",) + original.fget(self)))
    used: list[str] = []
    real_decode_with = reader._decode_with

    def spy(ds, plugin, ts=None):
        used.append(plugin)
        return real_decode_with(ds, plugin, ts)

    monkeypatch.setattr(reader, "_decode_with", spy)
    film = read_film(PYDICOM_FILES / "SC_jpeg_no_color_transform.dcm")  # JPEG baseline
    assert film.photometric == "RGB (grey content)"
    assert used == ["gdcm"]
    read_film(PYDICOM_FILES / "MR_small_jp2klossless.dcm")
    assert used == ["gdcm", "pylibjpeg"]  # J2K: openjpeg in-process first
    # JPEG-LS: highdicom installs pyjpegls (CharLS, in-process); gdcm in the isolated child decodes it
    read_film(PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm")
    assert used == ["gdcm", "pylibjpeg", "gdcm"]


@pytest.mark.parametrize("mode", ["fork", "subprocess"])
def test_gdcm_abort_is_contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """python-gdcm aborts the interpreter (SIGABRT) on this corrupted JPEG Lossless stream.

    The decode runs in a child process, so it becomes a ReadError and this test process
    lives on; a good JPEG-LS file decodes the same way through either kind of child.
    """
    import edge.reader.isolation as reader

    if mode == "fork" and not hasattr(os, "fork"):
        mode = "subprocess"
    monkeypatch.setattr(reader, "_ISOLATION", mode)
    bad = tmp_path / "gdcm_abort.dcm"
    bad.write_bytes(gdcm_abort_bytes())
    with pytest.raises(ReadError) as info:
        read_film(bad)
    assert info.value.kind == "decode_failed"
    assert "crashed" in str(info.value)
    assert_clean_error(info.value)
    good = read_film(PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm")
    np.testing.assert_array_equal(good.pixels, read_film(PYDICOM_FILES / "MR_small.dcm").pixels)


def test_compressed_12_bit_dx_round_trip(tmp_path: Path) -> None:
    data = grey_film(128, 96, bits=12)
    src = write_dicom(tmp_path / "native.dcm", data, BitsStored=12, PixelSpacing=[0.15, 0.15])
    ref = read_film(src)
    for syntax in (RLELossless, JPEG2000Lossless):
        ds = pydicom.dcmread(src)
        ds.compress(syntax)
        out = tmp_path / f"{syntax.keyword}.dcm"
        ds.save_as(out)
        film = read_film(out)
        assert film.transfer_syntax == syntax.name
        assert film.bits_stored == 12
        np.testing.assert_array_equal(film.pixels, ref.pixels, err_msg=syntax.name)
        assert film.spacing_mm == (0.15, 0.15)
