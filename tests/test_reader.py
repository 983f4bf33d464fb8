"""edge.reader's public face: every file of two DICOM corpora reads or refuses cleanly, named outcomes, the ReadError contract."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from edge.reader import ReadError, read_film
from tests.reader_support import (
    CORPUS,
    DATA_STORE,
    PYDICOM_FILES,
    _corpus_id,
    assert_clean_error,
    assert_good_film,
    read_or_error,
)


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
