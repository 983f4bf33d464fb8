"""edge.reader.raster and .tiff: PNG, JPEG and TIFF read with their header sizes checked first."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.reader import ReadError, read_film
from tests.hostile import colour_photo, grey_film
from tests.reader_support import (
    _write,
    assert_clean_error,
)


def test_png_8_and_16_bit_scaled_by_dtype_max(tmp_path: Path) -> None:
    img8 = (grey_film() >> 5).astype(np.uint8)  # max well below 255: not stretched
    film = read_film(_write(tmp_path, "a.png", img8))
    assert film.source_format == "png" and film.photometric == "GREY" and film.bits_stored == 8
    np.testing.assert_allclose(film.pixels, img8 / 255.0, atol=1e-6)
    assert film.spacing_mm is None and film.spacing_source == "none"
    assert film.transfer_syntax is None and film.sex is None and film.height_source == "none"

    img16 = grey_film() * 8
    film = read_film(_write(tmp_path, "b.png", img16), spacing_mm=0.2)
    assert film.bits_stored == 16
    np.testing.assert_allclose(film.pixels, img16 / 65535.0, atol=1e-6)
    assert film.spacing_mm == (0.2, 0.2) and film.spacing_source == "user"


def test_tiff_16_bit_and_jpeg(tmp_path: Path) -> None:
    img16 = grey_film() * 8
    film = read_film(_write(tmp_path, "a.tiff", img16))
    assert film.source_format == "tiff"
    np.testing.assert_allclose(film.pixels, img16 / 65535.0, atol=1e-6)
    img8 = (grey_film() >> 4).astype(np.uint8)
    path = _write(tmp_path, "a.jpg", img8)
    film = read_film(path)
    assert film.source_format == "jpeg" and film.photometric == "GREY"
    decoded = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(film.pixels, decoded / 255.0, atol=1e-6)


def test_grey_content_rgba_png(tmp_path: Path) -> None:
    grey = (grey_film() >> 4).astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    film = read_film(_write(tmp_path, "rgba.png", rgba))
    assert film.photometric == "RGB (grey content)"
    np.testing.assert_allclose(film.pixels, grey / 255.0, atol=1e-6)
    assert "alpha channel dropped" in film.notes


def test_colour_jpeg_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as info:
        read_film(_write(tmp_path, "photo.jpg", colour_photo()))
    assert info.value.kind == "colour"
    assert_clean_error(info.value)
