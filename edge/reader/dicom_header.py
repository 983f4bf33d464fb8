"""DICOM parsing and header validation: every check that can be made before decoding."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from .elements import (
    _CODE_STRING,
    _PIXEL_DATA,
    _ends_inside_last_element,
    _get,
    _get_raw,
    _int,
    _set,
    _sop_class_name,
)
from .film import ReadError

# Elements larger than this stay on disk until the header has been checked.
_DEFER_SIZE = 64 * 1024

_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)

_GREY_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2")

_COLOUR_PHOTOMETRIC = (
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_PARTIAL_422",
    "YBR_PARTIAL_420",
    "YBR_ICT",
    "YBR_RCT",
)

# Tags that make a headerless file believable as DICOM (group 0008 identity / image pixel).
_TYPICAL_TAGS = (
    0x00080016,  # SOPClassUID
    0x00080018,  # SOPInstanceUID
    0x00080060,  # Modality
    0x00080020,  # StudyDate
    0x00080008,  # ImageType
    0x00280010,  # Rows
    0x00280011,  # Columns
    _PIXEL_DATA,
)


class _EofSeen(logging.Handler):
    """Which threads pydicom told "end of file" (it logs and warns, then drops the element).

    A logging handler sees `record.thread`, so parsing in several threads at once cannot mix
    up whose file was cut, unlike `warnings.catch_warnings`, which is process-wide.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.threads: set[int] = set()
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if "end of file" in record.getMessage().lower():
            with self.guard:
                self.threads.add(record.thread or 0)

    def take(self) -> bool:
        """True if this thread was told "end of file" since its last call; resets it."""
        me = threading.get_ident()
        with self.guard:
            seen = me in self.threads
            self.threads.discard(me)
        return seen


_EOF = _EofSeen()

logging.getLogger("pydicom").addHandler(_EOF)


def _parse_dicom(path: Path, has_magic: bool, defer: bool) -> Dataset:
    """Parse the dataset (pixel data left on disk when ``defer``); errors become ReadError.

    pydicom only *warns* (and logs) when a file ends inside an undefined-length element, then
    silently drops it, so its log records are checked here, per thread (see `_EofSeen`).
    """
    truncated = ReadError("truncated", "the DICOM file ends before its header or pixel data is complete")
    _EOF.take()
    try:
        ds = pydicom.dcmread(os.fspath(path), force=True, defer_size=_DEFER_SIZE if defer else None)
    except EOFError as exc:
        raise truncated from exc
    except MemoryError:
        raise
    except Exception as exc:
        if not has_magic:
            raise ReadError("not_an_image", "not an image: not DICOM, PNG, JPEG or TIFF") from exc
        detail = str(exc).lower()
        if "end of file" in detail or "unexpected end" in detail or "truncat" in detail:
            raise truncated from exc
        raise ReadError("bad_header", f"the DICOM header cannot be parsed ({type(exc).__name__})") from exc
    if _EOF.take():
        if not has_magic and not any(t in ds for t in _TYPICAL_TAGS):
            raise ReadError("not_an_image", "not an image: not DICOM, PNG, JPEG or TIFF")
        raise truncated
    return ds


def _transfer_syntax(ds: Dataset, notes: list[str]) -> UID | None:
    """The file meta transfer syntax, or None when absent/unusable (then guessed later)."""
    meta = getattr(ds, "file_meta", None)
    value = _get(meta, "TransferSyntaxUID") if meta is not None else None
    if not value:
        return None
    uid = UID(str(value).strip().rstrip("\x00"))
    if not uid.is_valid:
        notes.append("TransferSyntaxUID malformed, ignored")
        return None
    return uid


def _syntax_from_encoding(ds: Dataset) -> UID:
    """Native syntax matching how pydicom actually parsed a file without file meta."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit:
        return pydicom.uid.ImplicitVRLittleEndian
    if little is False:
        return pydicom.uid.ExplicitVRBigEndian
    return pydicom.uid.ExplicitVRLittleEndian


def _available_length(raw: Any, file_size: int) -> int:
    """Bytes of native pixel data actually present (declared length capped by the file)."""
    value = getattr(raw, "value", None)
    if value is not None:
        return len(value)
    tell = getattr(raw, "value_tell", None)
    if tell is None:
        return int(raw.length)
    return max(0, min(int(raw.length), file_size - int(tell)))


# --------------------------------------------------------------------------- the header checks, in order


def _parse_checked(path: Path, has_magic: bool, notes: list[str]) -> tuple[Dataset, UID | None]:
    """The dataset (pixel data left on disk) and its transfer syntax, if one is declared."""
    ds = _parse_dicom(path, has_magic, defer=True)
    ts = _transfer_syntax(ds, notes)
    if ts is not None and not ts.is_transfer_syntax:
        raise ReadError("unsupported_syntax", f"unknown transfer syntax {str(ts)[:64]}")
    if ts is not None and ts.is_deflated:
        # Deferred reads point into the inflated stream, not the file: read it whole
        # (deflated files are small by construction, and `limits` counted the inflation).
        ds = _parse_dicom(path, has_magic, defer=False)
        ts = _transfer_syntax(ds, notes)
    if not has_magic and not any(t in ds for t in _TYPICAL_TAGS):
        raise ReadError("not_an_image", "not an image: not DICOM, PNG, JPEG or TIFF")
    return ds, ts


def _check_pixel_element(ds: Dataset, ts: UID | None, size: int) -> Any:
    """The raw Pixel Data element; its absence is told apart: unreadable, cut, float data, no image."""
    raw_pixels = _get_raw(ds, _PIXEL_DATA)
    if raw_pixels is not None:
        return raw_pixels
    if not any(t in ds for t in _TYPICAL_TAGS) and not _get(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID"):
        raise ReadError("bad_header", "the file is marked as DICOM but its header cannot be read")
    if (ts is None or not ts.is_deflated) and _ends_inside_last_element(ds, size):
        raise ReadError("truncated", "the DICOM file ends before its header or pixel data is complete")
    if any(t in ds for t in _FLOAT_PIXEL_DATA):
        raise ReadError("no_pixel_data", "DICOM file holds float pixel data (a parametric map), not a radiograph")
    raise ReadError("no_pixel_data", f"DICOM file has no image ({_sop_class_name(ds)})")


@dataclass(frozen=True)
class Geometry:
    """Image size as the header declares it, checked against the reader's pixel budget."""

    rows: int
    cols: int
    frames: int
    samples: int


def _geometry(ds: Dataset, max_pixels: int, notes: list[str]) -> Geometry:
    """Rows, columns, frames and samples: present, positive, one frame, within the budget."""
    rows = _int(ds, "Rows")
    cols = _int(ds, "Columns")
    if rows is None or cols is None:
        raise ReadError("bad_header", "DICOM header has no valid Rows/Columns")
    if rows <= 0 or cols <= 0:
        raise ReadError("bad_header", f"DICOM header declares an empty image ({rows} x {cols})")
    frames_value = _get(ds, "NumberOfFrames")
    frames = _int(ds, "NumberOfFrames")
    if frames_value not in (None, "") and frames is None:
        raise ReadError("bad_header", "DICOM NumberOfFrames is malformed")
    frames = 1 if frames in (None, 0) else frames
    if frames < 0:
        raise ReadError("bad_header", "DICOM NumberOfFrames is negative")
    samples = _int(ds, "SamplesPerPixel")
    if samples is None:
        samples = 1
        notes.append("SamplesPerPixel missing, 1 assumed")
    if samples not in (1, 3, 4):
        raise ReadError("bad_header", f"DICOM SamplesPerPixel {samples} is not valid")
    if rows * cols * frames * samples > max_pixels:
        raise ReadError(
            "too_large",
            f"image too large: header declares {cols} x {rows} pixels"
            + (f" x {frames} frames" if frames > 1 else "")
            + (f" x {samples} samples" if samples > 1 else "")
            + f", limit is {max_pixels:,} values",
        )
    if frames > 1:
        raise ReadError("multi_frame", f"DICOM file has {frames} frames; a single radiograph is expected")
    return Geometry(rows, cols, frames, samples)


def _photometric(ds: Dataset, samples: int, notes: list[str]) -> str:
    """A grey photometric interpretation consistent with the samples (grey stored as RGB too)."""
    photometric = str(_get(ds, "PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        if samples != 1:
            raise ReadError("bad_header", "DICOM PhotometricInterpretation is missing")
        photometric = "MONOCHROME2"
        _set(ds, "PhotometricInterpretation", photometric)
        notes.append("PhotometricInterpretation missing, MONOCHROME2 assumed")
    if photometric == "PALETTE COLOR":
        raise ReadError("colour", "this is a palette colour image, not a radiograph")
    if photometric in _GREY_PHOTOMETRIC or photometric in _COLOUR_PHOTOMETRIC:
        needed = 1 if photometric in _GREY_PHOTOMETRIC else 3
        if samples != needed:
            raise ReadError("bad_header", f"{photometric} with {samples} samples per pixel is inconsistent")
        return photometric
    shown = photometric if _CODE_STRING.match(photometric) else "(malformed)"
    raise ReadError("colour", f"photometric interpretation {shown} is not a greyscale radiograph")


def _check_bits(ds: Dataset, samples: int, notes: list[str]) -> int:
    """BitsAllocated/BitsStored/PixelRepresentation valid (missing ones assumed, with a note);
    returns BitsStored."""
    bits_alloc = _int(ds, "BitsAllocated")
    if bits_alloc not in (1, 8, 16, 32):
        raise ReadError("bad_header", f"DICOM BitsAllocated {bits_alloc} is not supported")
    bits_stored = _int(ds, "BitsStored")
    if bits_stored is None:
        bits_stored = bits_alloc
        _set(ds, "BitsStored", bits_alloc)
        notes.append("BitsStored missing, BitsAllocated assumed")
    if not 1 <= bits_stored <= bits_alloc:
        raise ReadError("bad_header", f"DICOM BitsStored {bits_stored} does not fit BitsAllocated {bits_alloc}")
    if _int(ds, "PixelRepresentation") not in (0, 1):
        if "PixelRepresentation" in ds:
            raise ReadError("bad_header", "DICOM PixelRepresentation is malformed")
        _set(ds, "PixelRepresentation", 0)
        notes.append("PixelRepresentation missing, unsigned assumed")
    if samples > 1 and _int(ds, "PlanarConfiguration") not in (0, 1):
        _set(ds, "PlanarConfiguration", 0)
        notes.append("PlanarConfiguration missing or malformed, 0 assumed")
    return bits_stored


def _check_syntax(ds: Dataset, ts: UID | None, raw_pixels: Any, notes: list[str]) -> UID:
    """The transfer syntax agrees with how the pixel data is stored (guessed when missing)."""
    encapsulated = raw_pixels.length == 0xFFFFFFFF
    if ts is None:
        if encapsulated:
            raise ReadError("unsupported_syntax", "compressed pixel data but the file declares no transfer syntax")
        ts = _syntax_from_encoding(ds)
        ds.file_meta.TransferSyntaxUID = ts
        notes.append(f"transfer syntax missing, {ts.name} assumed from the encoding")
    if encapsulated != ts.is_encapsulated:
        raise ReadError(
            "bad_header",
            f"pixel data is {'compressed' if encapsulated else 'uncompressed'} but the transfer syntax is {ts.name}",
        )
    return ts


def _check_native_length(ds: Dataset, raw_pixels: Any, geo: Geometry, photometric: str, size: int) -> None:
    """Native pixel data holds every byte the header promises (else the film is truncated)."""
    expected = geo.rows * geo.cols * geo.frames * geo.samples
    if photometric == "YBR_FULL_422":
        expected = expected * 2 // 3  # native 4:2:2 stores 2 values per pixel
    expected = (expected * int(_int(ds, "BitsAllocated") or 0) + 7) // 8
    available = _available_length(raw_pixels, size)
    if available < expected:
        raise ReadError("truncated", f"pixel data is truncated: {available:,} of {expected:,} bytes present")
