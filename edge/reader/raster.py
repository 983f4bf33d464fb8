"""PNG, JPEG and TIFF: the header's size checked by hand before OpenCV decodes anything."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .film import Film, ReadError
from .photometry import _grey_from_rgb
from .tiff import _tiff_size


def _read_raster(
    path: Path,
    fmt: str,
    size: int,
    user_spacing: tuple[float, float] | None,
    max_pixels: int,
    notes: list[str],
) -> Film:
    """Header size check, then OpenCV decode; grey is taken as displayed (bone bright)."""
    width, height = _raster_size(path, fmt, size, max_pixels, notes)
    img = _imdecode(path, fmt, width, height)
    pixels, photometric, bits = _grey_raster(img, fmt, notes)
    return Film(
        pixels=pixels,
        spacing_mm=user_spacing,
        spacing_source="user" if user_spacing is not None else "none",
        sex=None,
        height_m=None,
        height_source="none",
        age_years=None,
        source_format=fmt,
        photometric=photometric,
        bits_stored=bits,
        transfer_syntax=None,
        modality=None,
        body_part=None,
        notes=tuple(notes),
    )


def _raster_size(path: Path, fmt: str, size: int, max_pixels: int, notes: list[str]) -> tuple[int, int]:
    """(width, height) from the file's own header, refused when empty or over the budget."""
    with open(path, "rb") as fh:
        if fmt == "png":
            width, height = _png_size(fh, size)
        elif fmt == "jpeg":
            width, height = _jpeg_size(fh, size)
        else:
            width, height = _tiff_size(fh, size, notes)
    if width <= 0 or height <= 0:
        raise ReadError("bad_header", f"{fmt.upper()} header declares an empty image ({width} x {height})")
    if width * height > max_pixels:
        raise ReadError(
            "too_large",
            f"image too large: header declares {width} x {height} pixels, limit is {max_pixels:,}",
        )
    return width, height


def _imdecode(path: Path, fmt: str, width: int, height: int) -> np.ndarray:
    """OpenCV's decode with its own logging silenced; it must give the size the header said."""
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        finally:
            cv2.utils.logging.setLogLevel(level)
        del data
    except MemoryError:
        raise
    except Exception as exc:
        raise ReadError("decode_failed", f"{fmt.upper()} data cannot be decoded ({type(exc).__name__})") from exc
    if img is None:
        raise ReadError("decode_failed", f"{fmt.upper()} data cannot be decoded (damaged or unsupported variant)")
    if img.shape[:2] != (height, width):
        raise ReadError(
            "decode_failed", f"{fmt.upper()} decoded to {img.shape[1]} x {img.shape[0]}, header says {width} x {height}"
        )
    return img


def _grey_raster(img: np.ndarray, fmt: str, notes: list[str]) -> tuple[np.ndarray, str, int]:
    """8- or 16-bit samples to [0, 1] grey (alpha dropped, grey stored as colour accepted)."""
    if img.dtype == np.uint8:
        full_scale = 255.0
    elif img.dtype == np.uint16:
        full_scale = 65535.0
    else:
        raise ReadError(
            "unsupported_syntax", f"{fmt.upper()} with {img.dtype} samples is not supported (8 or 16 bit expected)"
        )
    bits = 8 * img.dtype.itemsize
    photometric = "GREY"
    channels = img.shape[2] if img.ndim == 3 else 1
    if channels in (2, 4):
        notes.append("alpha channel dropped")
    if img.ndim == 3 and channels in (1, 2):
        img = img[..., 0]
    elif channels in (3, 4):
        img = _grey_from_rgb(img, full_scale, fmt.upper())
        photometric = "RGB (grey content)"
        notes.append("colour image with grey content (channels agree), read as grey")
    elif img.ndim == 3:
        raise ReadError("colour", f"{fmt.upper()} with {channels} channels is not a greyscale radiograph")
    pixels = np.asarray(img, dtype=np.float32)  # no copy for the float32 grey of a colour film
    pixels *= np.float32(1.0 / full_scale)
    np.clip(pixels, 0.0, 1.0, out=pixels)
    return pixels, photometric, bits


def _png_size(fh: Any, size: int) -> tuple[int, int]:
    """IHDR width/height; a PNG without IEND at its end is truncated."""
    head = fh.read(33)
    if len(head) < 33:
        raise ReadError("truncated", "PNG file is truncated (no complete header)")
    length, ctype = struct.unpack(">I4s", head[8:16])
    if ctype != b"IHDR" or length != 13:
        raise ReadError("bad_header", "PNG header is malformed (IHDR missing)")
    width, height = struct.unpack(">II", head[16:24])
    fh.seek(max(0, size - 64))
    tail = fh.read()
    if b"IEND" not in tail:
        raise ReadError("truncated", "PNG file is truncated (no end marker)")
    _png_checksums(fh, size)
    return width, height


def _png_checksums(fh: Any, size: int) -> None:
    """Every chunk's CRC, checked before libpng sees the file: libpng prints its own
    "libpng error:" lines to stderr for a damaged chunk, ahead of the tool's one line."""
    import zlib

    pos = 8
    while pos + 12 <= size:
        fh.seek(pos)
        length, ctype = struct.unpack(">I4s", fh.read(8))
        if pos + 12 + length > size:
            raise ReadError("truncated", "PNG file is truncated (a chunk runs past the end)")
        crc = 0
        left = length
        crc = zlib.crc32(ctype, crc)
        while left:
            block = fh.read(min(left, 1 << 20))
            crc = zlib.crc32(block, crc)
            left -= len(block)
        (stored,) = struct.unpack(">I", fh.read(4))
        if stored != crc & 0xFFFFFFFF:
            raise ReadError("decode_failed", "PNG data is damaged (a chunk checksum does not match)")
        if ctype == b"IEND":
            return
        pos += 12 + length


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _walk_jpeg(data: bytes, frame_markers: set[int], lenient: bool, limit: int | None = None):
    """Walk a JPEG's markers from SOI to the first frame header: (why, pos, (width, height) or
    None), why one of "found", "no_marker", "bad_length" (strict only), "scan" (SOS or EOI came
    first), "end". The raster reader and the DICOM codestream check share it."""
    pos = 2
    while pos + 4 <= len(data) and (limit is None or pos < limit):
        if data[pos] != 0xFF:
            return "no_marker", pos, None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            return "scan", pos, None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 and not lenient:
            return "bad_length", pos, None
        if marker in frame_markers:
            if pos + 9 > len(data):
                return "end", pos, None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return "found", pos, (width, height)
        pos += 2 + max(length, 2)
    return "end", pos, None


def _jpeg_size(fh: Any, size: int) -> tuple[int, int]:
    """Scan markers up to the first SOFn for width/height; no EOI after the scan means truncated."""
    data = fh.read()
    why, pos, found = _walk_jpeg(data, _SOF_MARKERS, lenient=False)
    if why == "no_marker":
        raise ReadError("bad_header", "JPEG header is malformed (marker expected)")
    if why == "bad_length":
        raise ReadError("bad_header", "JPEG header is malformed (bad segment length)")
    if found is None:
        if pos + 4 > len(data):
            raise ReadError("truncated", "JPEG file is truncated (no frame header)")
        raise ReadError("bad_header", "JPEG header is malformed (no frame header)")
    width, height = found
    if height == 0:
        raise ReadError("unsupported_syntax", "JPEG with height defined after the scan (DNL) is not supported")
    last_sos = data.rfind(b"\xff\xda")
    if last_sos < 0 or data.rfind(b"\xff\xd9") < last_sos:
        raise ReadError("truncated", "JPEG file is truncated (no end-of-image marker)")
    return width, height
