"""Tests for edge.reader: real corpora (pydicom, pydicom-data, /work/shared/realdata) and synthetic films."""

from __future__ import annotations

import hashlib
import os
import pickle
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import JPEG2000Lossless, RLELossless

from edge.reader import KINDS, Film, ReadError, read_film
from tests.hostile import PATIENT_ID, PATIENT_NAME, colour_photo, gdcm_abort_bytes, grey_film, write_dicom

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


# --------------------------------------------------------------------------- whole corpora


def test_corpora_present() -> None:
    # If these shrink the parametrised test below silently tests nothing.
    assert len([p for p in CORPUS if PYDICOM_FILES in p.parents]) > 150
    assert len([p for p in CORPUS if DATA_STORE in p.parents]) > 60


@pytest.mark.parametrize("path", CORPUS, ids=_corpus_id)
def test_corpus_file_reads_or_refuses_cleanly(path: Path) -> None:
    """Every bundled file is a 2-D [0,1] float32 film or a ReadError - nothing else escapes."""
    result = read_or_error(path)
    if isinstance(result, ReadError):
        assert_clean_error(result)
    else:
        assert_good_film(result)
        assert result.source_format in ("dicom", "tiff", "png", "jpeg")


# Outcomes in this install (python-gdcm, pylibjpeg-openjpeg, pylibjpeg-rle, no Pillow,
# no pylibjpeg-libjpeg). "ok" means a Film.
EXPECTED = {
    "pydicom/CT_small.dcm": "ok",
    "pydicom/MR_small.dcm": "ok",
    "pydicom/MR_small_RLE.dcm": "ok",
    "pydicom/MR_small_jp2klossless.dcm": "ok",
    "pydicom/MR_small_jpeg_ls_lossless.dcm": "ok",
    "pydicom/MR_small_bigendian.dcm": "ok",
    "pydicom/MR_small_padded.dcm": "ok",
    "pydicom/JPEG2000.dcm": "ok",
    "pydicom/J2K_pixelrep_mismatch.dcm": "ok",
    "pydicom/JPEGLSNearLossless_16.dcm": "ok",
    "pydicom/image_dfl.dcm": "ok",  # deflated syntax
    "pydicom/liver_1frame.dcm": "ok",
    "pydicom/dicomdirtests/77654033/CR1/6154": "ok",
    "pydicom/SC_jpeg_no_color_transform.dcm": "ok",  # RGB JPEG with grey content
    "pydicom-data/JPEG-LL.dcm": "ok",
    "pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm": "ok",
    "pydicom-data/RG1_J2KR.dcm": "ok",
    "pydicom-data/RG3_J2KI.dcm": "ok",
    "pydicom-data/MR2_J2KR.dcm": "ok",
    "pydicom-data/mlut_18.dcm": "ok",
    "pydicom-data/vlut_04.dcm": "ok",
    "pydicom-data/bad_sequence.dcm": "ok",
    "pydicom-data/explicit_VR-UN.dcm": "ok",
    # refused
    "pydicom/SC_rgb_rle.dcm": "colour",
    "pydicom/SC_rgb_jpeg_gdcm.dcm": "colour",
    "pydicom/SC_ybr_full_422_uncompressed.dcm": "colour",
    "pydicom/examples_palette.dcm": "colour",
    "pydicom/examples_rgb_color.dcm": "colour",
    "pydicom-data/SC_rgb.dcm": "colour",
    "pydicom-data/OT-PAL-8-face.dcm": "colour",
    "pydicom-data/US1_J2KR.dcm": "colour",
    "pydicom-data/color-px.dcm": "colour",
    "pydicom/SC_rgb_rle_2frame.dcm": "multi_frame",
    "pydicom/rtdose.dcm": "multi_frame",
    "pydicom/examples_ybr_color.dcm": "multi_frame",
    "pydicom-data/emri_small.dcm": "multi_frame",
    "pydicom-data/color3d_jpeg_baseline.dcm": "multi_frame",
    "pydicom-data/SC_rgb_2frame.dcm": "multi_frame",
    "pydicom/rtplan.dcm": "no_pixel_data",
    "pydicom/rtstruct.dcm": "no_pixel_data",
    "pydicom/waveform_ecg.dcm": "no_pixel_data",
    "pydicom/dicomdirtests/DICOMDIR": "no_pixel_data",
    "pydicom/ExplVR_LitEndNoMeta.dcm": "no_pixel_data",  # headerless DICOM, RT Ion Plan
    "pydicom/MR_truncated.dcm": "truncated",
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",
    # 12-bit JPEG Extended: GDCM refuses 12-bit precision and pylibjpeg-libjpeg (GPL)
    # is deliberately not installed.
    "pydicom/JPEG-lossy.dcm": "unsupported_syntax",
    "pydicom/JPGExtended.dcm": "unsupported_syntax",
    # A parser test file: its 250-byte J2K codestream is not a decodable image.
    "pydicom/JPEG2000-embedded-sequence-delimiter.dcm": "bad_header",  # its codestream SIZ disagrees with Rows/Columns: refused before decoding
    "pydicom/badVR.dcm": "bad_header",  # NumberOfFrames '1A'
    "pydicom/meta_missing_tsyntax.dcm": "bad_header",
    "pydicom/README.txt": "not_an_image",
    "pydicom/zipMR.gz": "not_an_image",
    "pydicom/crayons.icc": "not_an_image",
    "pydicom/test1.json": "not_an_image",
    "pydicom/no_meta.dcm": "not_an_image",  # starts with a stray byte: no recognisable tag
}


@pytest.mark.parametrize("name,outcome", sorted(EXPECTED.items()))
def test_corpus_expected_outcome(name: str, outcome: str) -> None:
    source, rel = name.split("/", 1)
    path = (PYDICOM_FILES if source == "pydicom" else DATA_STORE) / rel
    assert path.is_file(), name
    result = read_or_error(path)
    if outcome == "ok":
        assert not isinstance(result, ReadError), f"{name}: {result.kind}: {result}"
        assert_good_film(result)
    else:
        assert isinstance(result, ReadError), f"{name} was read, expected {outcome}"
        assert result.kind == outcome, f"{name}: {result.kind}: {result}"


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


def test_lut_pipeline_matches_pydicom_on_mlut_and_vlut() -> None:
    for name in ("mlut_18.dcm", "vlut_04.dcm"):
        ds = pydicom.dcmread(DATA_STORE / name)
        out = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
        out = (out - out.min()) / (out.max() - out.min())
        if ds.PhotometricInterpretation == "MONOCHROME1":
            out = 1 - out
        np.testing.assert_allclose(read_film(DATA_STORE / name).pixels, out, atol=1e-5, err_msg=name)


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


# --------------------------------------------------------------------------- real films


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


# --------------------------------------------------------------------------- spacing, demographics


def _dx(tmp_path: Path, name: str = "dx.dcm", **tags) -> Path:
    return write_dicom(tmp_path / name, grey_film(), BitsStored=12, **tags)


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


def _patch(path: Path, old: bytes, new: bytes) -> Path:
    """Overwrite a value in place (same length): pydicom will not write malformed DS itself."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))
    return path


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


# --------------------------------------------------------------------------- grey pipeline


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


# --------------------------------------------------------------------------- compressed, large


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


# --------------------------------------------------------------------------- PNG / JPEG / TIFF


def _write(tmp_path: Path, name: str, img: np.ndarray) -> Path:
    ok, buf = cv2.imencode(Path(name).suffix, img)
    assert ok
    path = tmp_path / name
    path.write_bytes(buf.tobytes())
    return path


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


# --------------------------------------------------------------------------- ReadError itself


def test_read_error_contract() -> None:
    err = ReadError("truncated", "pixel data is truncated\nsecond line")
    assert str(err) == "pixel data is truncated second line"
    assert err.kind == "truncated"
    clone = pickle.loads(pickle.dumps(err))
    assert clone.kind == "truncated" and str(clone) == str(err)
    assert ReadError("empty", "   ").message == "empty"  # never an empty line


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as info:
        read_film(tmp_path / "nope.dcm")
    assert info.value.kind == "not_found"
    with pytest.raises(ReadError) as info:
        read_film(tmp_path)
    assert info.value.kind == "not_an_image"
