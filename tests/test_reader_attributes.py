"""edge.reader.attributes: pixel spacing in the SPEC's order and patient attributes, with their sources and notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.reader import read_film
from tests.reader_support import (
    _dx,
    _patch,
)

SPACING_CASES = [
    # (tags, user spacing, expected spacing, expected source)
    (
        dict(PixelSpacing=[0.15, 0.16], ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=1.25),
        0.3,
        (0.15, 0.16),
        "PixelSpacing",
    ),
    (
        dict(ImagerPixelSpacing=[0.2, 0.25], EstimatedRadiographicMagnificationFactor=1.25),
        None,
        (0.16, 0.2),
        "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor",
    ),
    (
        dict(ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=1.25),
        0.3,
        (0.16, 0.16),
        "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor",
    ),
    (dict(ImagerPixelSpacing=[0.2, 0.2]), 0.3, (0.3, 0.3), "user"),
    (dict(ImagerPixelSpacing=[0.2, 0.2]), None, (0.2, 0.2), "ImagerPixelSpacing (not corrected for magnification)"),
    (
        dict(ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=3.0),
        None,
        (0.2, 0.2),
        "ImagerPixelSpacing (not corrected for magnification)",
    ),
    (dict(ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=3.0), 0.25, (0.25, 0.25), "user"),
    (dict(), 0.3, (0.3, 0.3), "user"),
    (dict(), None, None, "none"),
    (dict(PixelSpacing=[0.0, 0.0]), None, None, "none"),
    (
        dict(PixelSpacing=[0.0, 0.0], ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=1.1),
        None,
        (0.2 / 1.1, 0.2 / 1.1),
        "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor",
    ),
    (dict(PixelSpacing=[50.0, 50.0]), 0.2, (0.2, 0.2), "user"),
    (dict(PixelSpacing=[0.14]), 0.2, (0.2, 0.2), "user"),
]


@pytest.mark.parametrize("tags,user,spacing,source", SPACING_CASES)
def test_spacing_rules(tmp_path: Path, tags: dict, user: float | None, spacing, source: str) -> None:
    film = read_film(_dx(tmp_path, **tags), spacing_mm=user)
    assert film.spacing_source == source
    if spacing is None:
        assert film.spacing_mm is None
    else:
        assert film.spacing_mm == pytest.approx(spacing)
    if "PixelSpacing" in tags and source != "PixelSpacing":
        assert "PixelSpacing malformed, ignored" in film.notes


def test_malformed_pixel_spacing_text_is_ignored(tmp_path: Path) -> None:
    path = _dx(tmp_path, PixelSpacing="9.75\\9.75", ImagerPixelSpacing=[0.2, 0.2])
    _patch(path, b"9.75\\9.75 ", b"abc\\def   ")
    film = read_film(path, spacing_mm=0.18)
    assert film.spacing_source == "user" and film.spacing_mm == (0.18, 0.18)
    assert "PixelSpacing malformed, ignored" in film.notes


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), float("inf"), 20.0])
def test_invalid_user_spacing_is_ignored_with_a_note(tmp_path: Path, bad: float) -> None:
    film = read_film(_dx(tmp_path), spacing_mm=bad)
    assert film.spacing_mm is None and film.spacing_source == "none"
    assert any("user spacing" in note for note in film.notes)


@pytest.mark.parametrize(
    "tags,sex,height,height_source,age",
    [
        (
            dict(PatientSex="F", PatientSize=1.62, PatientAge="077Y", PatientWeight=58.5),
            "F",
            1.62,
            "PatientSize",
            77.0,
        ),
        (dict(PatientSex="M", PatientSize=175, PatientAge="030M"), "M", 1.75, "PatientSize (cm)", 2.5),
        (
            dict(PatientSex="O", PatientSize=0, PatientAge="010W", PatientWeight=0),
            None,
            None,
            "none",
            70 / 365.25,
        ),
        (dict(PatientAge="005D"), None, None, "none", 5 / 365.25),
        (dict(), None, None, "none", None),
    ],
)
def test_demographics(tmp_path: Path, tags, sex, height, height_source, age) -> None:
    film = read_film(_dx(tmp_path, **tags))
    assert film.sex == sex
    assert film.height_source == height_source
    assert film.height_m == (pytest.approx(height) if height is not None else None)
    assert film.age_years == (pytest.approx(age) if age is not None else None)


def test_malformed_demographics_are_ignored(tmp_path: Path) -> None:
    path = _dx(tmp_path, PatientAge="099Y", PatientSize=9.125, PatientSex="X")
    _patch(path, b"099Y", b"old ")
    _patch(path, b"9.125 ", b"tall  ")
    film = read_film(path)
    assert film.age_years is None and film.height_m is None and film.sex is None
    assert film.height_source == "none"
    assert "PatientAge malformed, ignored" in film.notes
    assert "PatientSize malformed, ignored" in film.notes


def test_film_metadata_fields(tmp_path: Path) -> None:
    film = read_film(_dx(tmp_path, BodyPartExamined="LEG", PixelSpacing=[0.14, 0.14]))
    assert film.source_format == "dicom"
    assert film.modality == "DX" and film.body_part == "LEG"
    assert film.bits_stored == 12
    assert film.transfer_syntax == "Explicit VR Little Endian"
    assert film.photometric == "MONOCHROME2"
    assert film.pixels.shape == (64, 48)
