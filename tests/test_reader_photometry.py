"""edge.reader.photometry: modality and VOI LUTs, MONOCHROME1/2, rescale and window, grey stored as RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from edge.reader import read_film
from tests.hostile import grey_film, write_dicom
from tests.reader_support import (
    DATA_STORE,
    PYDICOM_FILES,
)


def test_lut_pipeline_matches_pydicom_on_mlut_and_vlut() -> None:
    for name in ("mlut_18.dcm", "vlut_04.dcm"):
        ds = pydicom.dcmread(DATA_STORE / name)
        out = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
        out = (out - out.min()) / (out.max() - out.min())
        if ds.PhotometricInterpretation == "MONOCHROME1":
            out = 1 - out
        np.testing.assert_allclose(read_film(DATA_STORE / name).pixels, out, atol=1e-5, err_msg=name)


def test_monochrome1_and_2_are_inverse(tmp_path: Path) -> None:
    data = grey_film()
    m2 = read_film(write_dicom(tmp_path / "m2.dcm", data, BitsStored=12))
    m1 = read_film(write_dicom(tmp_path / "m1.dcm", data, photometric="MONOCHROME1", BitsStored=12))
    assert m1.photometric == "MONOCHROME1" and m2.photometric == "MONOCHROME2"
    np.testing.assert_allclose(m1.pixels + m2.pixels, 1.0, atol=1e-6)
    expected = (data - data.min()) / (data.max() - data.min())
    np.testing.assert_allclose(m2.pixels, expected, atol=1e-6)


def test_rescale_slope_intercept_applied(tmp_path: Path) -> None:
    data = grey_film()
    plain = read_film(write_dicom(tmp_path / "plain.dcm", data, BitsStored=12)).pixels
    flipped = read_film(
        write_dicom(tmp_path / "neg.dcm", data, BitsStored=12, RescaleSlope=-1, RescaleIntercept=4095)
    ).pixels
    np.testing.assert_allclose(flipped, 1.0 - plain, atol=1e-6)
    scaled = read_film(
        write_dicom(tmp_path / "pos.dcm", data, BitsStored=12, RescaleSlope=2.5, RescaleIntercept=-1024)
    ).pixels
    np.testing.assert_allclose(scaled, plain, atol=1e-6)


def test_window_is_applied(tmp_path: Path) -> None:
    data = grey_film()
    centre, width = 2000.0, 800.0
    film = read_film(write_dicom(tmp_path / "w.dcm", data, BitsStored=12, WindowCenter=centre, WindowWidth=width))
    # DICOM LINEAR window, then min/max (the window saturates at both ends here).
    expected = np.clip((data - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    assert expected.min() == 0.0 and expected.max() == 1.0
    np.testing.assert_allclose(film.pixels, expected, atol=1e-5)


def test_rescale_then_window(tmp_path: Path) -> None:
    data = grey_film()
    film = read_film(
        write_dicom(
            tmp_path / "rw.dcm",
            data,
            BitsStored=12,
            RescaleSlope=2,
            RescaleIntercept=-1000,
            WindowCenter=3000,
            WindowWidth=2000,
        )
    )
    hu = data * 2.0 - 1000
    expected = np.clip((hu - 2999.5) / 1999 + 0.5, 0.0, 1.0)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(film.pixels, expected, atol=1e-5)


def test_zero_window_width_is_ignored_with_note(tmp_path: Path) -> None:
    data = grey_film()
    film = read_film(write_dicom(tmp_path / "w0.dcm", data, BitsStored=12, WindowCenter=100, WindowWidth=0))
    np.testing.assert_allclose(film.pixels, (data - data.min()) / (data.max() - data.min()), atol=1e-6)
    assert "VOI LUT / window malformed, ignored" in film.notes


def test_constant_image_gives_zeros(tmp_path: Path) -> None:
    film = read_film(write_dicom(tmp_path / "c.dcm", np.full((16, 16), 700, np.uint16), BitsStored=12))
    assert not film.pixels.any()


def test_signed_8_bit_and_16_bit_stored(tmp_path: Path) -> None:
    signed = (grey_film().astype(np.int32) - 2048).astype(np.int16)
    film = read_film(write_dicom(tmp_path / "s.dcm", signed, BitsStored=12))
    np.testing.assert_allclose(film.pixels, (signed - signed.min()) / float(signed.max() - signed.min()), atol=1e-6)
    eight = (grey_film() >> 4).astype(np.uint8)
    film8 = read_film(write_dicom(tmp_path / "e.dcm", eight))
    assert film8.bits_stored == 8
    np.testing.assert_allclose(film8.pixels, (eight - eight.min()) / float(eight.max() - eight.min()), atol=1e-6)


def test_rgb_dicom_with_grey_content_is_read_as_grey(tmp_path: Path) -> None:
    grey = (grey_film() >> 4).astype(np.uint8)
    film = read_film(write_dicom(tmp_path / "g.dcm", np.dstack([grey, grey, grey])))
    assert film.photometric == "RGB (grey content)"
    np.testing.assert_allclose(film.pixels, (grey - grey.min()) / float(grey.max() - grey.min()), atol=1e-6)
    assert any("read as grey" in note for note in film.notes)


def _strip_path(path: Path, monkeypatch) -> np.ndarray:
    """Pixels as read with the per-value table switched off (pydicom on every pixel)."""
    from edge.reader import photometry

    with monkeypatch.context() as m:
        m.setattr(photometry, "_value_table", lambda arr, ds: None)
        return read_film(path).pixels


def test_value_table_gives_the_same_pixels_as_pydicom_on_every_pixel(tmp_path: Path, monkeypatch) -> None:
    from edge.reader import photometry

    rng = np.random.default_rng(3)
    signed = rng.integers(-900, 2500, size=(64, 48)).astype(np.int16)
    files = [DATA_STORE / n for n in ("mlut_18.dcm", "vlut_04.dcm")]
    files += [PYDICOM_FILES / n for n in ("CT_small.dcm", "MR_small.dcm")]
    files.append(
        write_dicom(
            tmp_path / "signed_window.dcm",
            signed,
            BitsStored=16,
            PixelRepresentation=1,
            RescaleSlope="0.5",
            RescaleIntercept="-100",
            WindowCenter="300",
            WindowWidth="900",
        )
    )
    files.append(
        write_dicom(
            tmp_path / "u12.dcm",
            (grey_film() * 4000).astype(np.uint16),
            BitsStored=12,
            WindowCenter="1500",
            WindowWidth="1200",
        )
    )
    used = []
    real = photometry._value_table
    monkeypatch.setattr(photometry, "_value_table", lambda arr, ds: used.append(real(arr, ds)) or used[-1])
    for path in files:
        table_pixels = read_film(path).pixels
        assert used[-1] is not None, f"{path.name}: the table was not used"
        assert np.array_equal(table_pixels, _strip_path(path, monkeypatch)), path.name


def test_value_table_steps_aside_for_float_and_very_wide_ranges() -> None:
    from pydicom.dataset import Dataset

    from edge.reader.photometry import _value_table

    ds = Dataset()
    assert _value_table(np.zeros((4, 4), np.float32), ds) is None
    assert _value_table(np.array([[0, 1 << 20]], np.uint32), ds) is None
    values, lo, film_lo, film_hi = _value_table(np.array([[-5, 7]], np.int16), ds)
    assert (lo, film_lo, film_hi) == (-5, -5, 7) and values.shape == (13,) and values.dtype == np.float32
    values, lo, film_lo, film_hi = _value_table(np.array([[300, 900]], np.uint16), ds)
    assert (lo, film_lo, film_hi) == (0, 300, 900) and values.shape == (901,)


def test_normalised_table_only_where_the_film_range_is_monotone() -> None:
    from edge.reader.photometry import _normalise_minmax, _normalised_table

    rising = np.linspace(-3, 7, 50, dtype=np.float32)
    film = np.array([[10, 12], [40, 25]])
    scaled = _normalised_table(rising, 10, 40)
    assert np.array_equal(scaled[film], _normalise_minmax(rising[film].copy()))
    falling = rising[::-1].copy()
    assert np.array_equal(_normalised_table(falling, 10, 40)[film], _normalise_minmax(falling[film].copy()))
    bump = np.concatenate([rising[:30], rising[30:][::-1]])  # up, then down inside the film's range
    assert _normalised_table(bump, 10, 40) is None
    assert _normalised_table(bump, 0, 29) is not None  # monotone where the film's values lie
