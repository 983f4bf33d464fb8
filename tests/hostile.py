"""Builders for test inputs: a synthetic DICOM writer and a corpus of hostile files.

Why real files and not mocks: the reader's job is to survive what is on disk, so the
tests write the bytes a broken scanner, a truncated copy or a crafted bomb would
produce, and the batch tests can reuse the very same corpus.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

# A recognisable (fake) identity: tests assert it never appears in error messages.
PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "PID-12345678"


def write_dicom(
    path: str | Path,
    pixels: np.ndarray | None,
    *,
    photometric: str | None = None,
    bits_stored: int | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    sop_class: str = DigitalXRayImageStorageForPresentation,
    pixel_bytes: bytes | None = None,
    **tags: Any,
) -> Path:
    """Write a DICOM file; ``pixels`` (rows, cols[, 3]) or (frames, rows, cols) sets the image module.

    Extra keyword arguments are set as DICOM keywords (they override the defaults),
    so a test can declare absurd or inconsistent headers on purpose.
    """
    path = Path(path)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(transfer_syntax)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    if pixels is not None:
        arr = np.ascontiguousarray(pixels)
        colour = photometric in ("RGB", "YBR_FULL") or (photometric is None and arr.ndim == 3 and arr.shape[-1] == 3)
        if colour:
            rows, cols = arr.shape[:2]
            ds.SamplesPerPixel = 3
            ds.PlanarConfiguration = 0
        elif arr.ndim == 3:
            ds.NumberOfFrames = arr.shape[0]
            rows, cols = arr.shape[1:]
            ds.SamplesPerPixel = 1
        else:
            rows, cols = arr.shape
            ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated = arr.dtype.itemsize * 8
        ds.BitsStored = bits_stored or ds.BitsAllocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
        ds.PixelData = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    if pixel_bytes is not None:
        ds.PixelData = pixel_bytes
    for key, value in tags.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose IHDR declares a huge 8-bit grey image (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # a few rows; the rest would follow
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def tiff_bomb_bytes(width: int = 200_000, height: int = 200_000) -> bytes:
    """A minimal little-endian TIFF whose first IFD declares a huge image."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression none
        (262, 3, 1, 1),  # BlackIsZero
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (279, 4, 1, 16),  # StripByteCounts
    ]
    pixels = b"\x00" * 16
    ifd_offset = 8 + len(pixels)
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        fmt = "<HHIH2x" if typ == 3 else "<HHII"
        ifd += struct.pack(fmt, tag, typ, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + pixels + ifd


def colour_photo(rows: int = 120, cols: int = 160, seed: int = 7) -> np.ndarray:
    """A 'photo': three differently oriented colour gradients plus noise (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    r = 255 * x / cols
    g = 255 * y / rows
    b = 255 * (1 - x / cols) * (y / rows)
    img = np.dstack([r, g, b]) + rng.normal(0, 20, (rows, cols, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def grey_film(rows: int = 64, cols: int = 48, bits: int = 12, seed: int = 3) -> np.ndarray:
    """A smooth grey test image with bone-like bright bands (uint16, ``bits`` stored)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    img = 0.3 + 0.5 * np.exp(-(((x - cols / 2) / (cols / 8)) ** 2)) + 0.1 * y / rows
    img += rng.normal(0, 0.02, img.shape)
    top = 2**bits - 1
    return np.clip(img * top, 0, top).astype(np.uint16)


def gdcm_abort_bytes() -> bytes:
    """pydicom's SC_rgb_jpeg_gdcm.dcm (JPEG Lossless) with one byte changed.

    python-gdcm 3.2 meets an uncaught C++ exception on it and aborts the whole Python
    process (SIGABRT), so it tests that the reader isolates gdcm decoding.
    """
    import pydicom

    src = Path(pydicom.__file__).parent / "data" / "test_files" / "SC_rgb_jpeg_gdcm.dcm"
    data = bytearray(src.read_bytes())
    assert data[1338] == 0xFF  # a marker byte inside the JPEG stream
    data[1338] = 0x92
    return bytes(data)


def make_hostile_corpus(directory: str | Path) -> dict[str, str]:
    """Write hostile inputs into ``directory``; return {file name: expected ReadError kind}."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    expected: dict[str, str] = {}

    def put(name: str, data: bytes, kind: str) -> None:
        (d / name).write_bytes(data)
        expected[name] = kind

    put("zero_bytes.dcm", b"", "empty")
    random_bytes = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    # Make sure no magic number appears by chance (the seed is fixed, this is belt and braces).
    put("random_bytes.bin", b"\xa5\x5a" + random_bytes, "not_an_image")
    put("dicm_then_random.dcm", bytes(128) + b"DICM" + random_bytes, "bad_header")
    put("notes.txt", b"Patient went home.\nThis is a text file, not an X-ray.\n" * 20, "not_an_image")

    film = grey_film(256, 192)
    write_dicom(d / "full.tmp", film, BitsStored=12)
    whole = (d / "full.tmp").read_bytes()
    (d / "full.tmp").unlink()
    put("truncated_pixels.dcm", whole[: len(whole) // 2], "truncated")

    write_dicom(
        d / "absurd_size.dcm",
        None,
        pixel_bytes=b"\x00" * 256,
        Rows=60000,
        Columns=60000,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
        PixelRepresentation=0,
    )
    expected["absurd_size.dcm"] = "too_large"

    write_dicom(
        d / "no_pixel_data.dcm",
        None,
        Rows=64,
        Columns=64,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        BitsAllocated=16,
        BitsStored=12,
    )
    expected["no_pixel_data.dcm"] = "no_pixel_data"

    write_dicom(d / "two_frames.dcm", np.stack([film, film[::-1]]), BitsStored=12)
    expected["two_frames.dcm"] = "multi_frame"

    write_dicom(d / "rgb_colour.dcm", colour_photo(), sop_class=SecondaryCaptureImageStorage, Modality="OT")
    expected["rgb_colour.dcm"] = "colour"

    palette = (film[:64, :64] >> 4).astype(np.uint8)
    write_dicom(d / "palette.dcm", palette, photometric="PALETTE COLOR", sop_class=SecondaryCaptureImageStorage)
    expected["palette.dcm"] = "colour"

    write_dicom(d / "bits_allocated_12.dcm", film[:32, :32], BitsAllocated=12, BitsStored=12, HighBit=11)
    expected["bits_allocated_12.dcm"] = "bad_header"

    # An encapsulated (video) syntax no installed plugin decodes.
    from pydicom.encaps import encapsulate

    write_dicom(
        d / "hevc.dcm",
        None,
        transfer_syntax="1.2.840.10008.1.2.4.107",
        pixel_bytes=encapsulate([b"\x00\x00\x00\x01" + bytes(64)]),
        Rows=64,
        Columns=64,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        BitsAllocated=8,
        BitsStored=8,
        HighBit=7,
        PixelRepresentation=0,
    )
    expected["hevc.dcm"] = "unsupported_syntax"

    ok, png = cv2.imencode(".png", (film >> 4).astype(np.uint8))
    assert ok
    put("truncated.png", png.tobytes()[: len(png) // 2], "truncated")
    ok, jpg = cv2.imencode(".jpg", (film >> 4).astype(np.uint8))
    assert ok
    put("truncated.jpg", jpg.tobytes()[: len(jpg) // 2], "truncated")
    ok, photo = cv2.imencode(".png", colour_photo()[..., ::-1])  # cv2 writes BGR
    assert ok
    put("colour_photo.png", photo.tobytes(), "colour")
    put("gdcm_abort.dcm", gdcm_abort_bytes(), "decode_failed")
    put("bomb.png", png_bomb_bytes(), "too_large")
    put("bomb.tiff", tiff_bomb_bytes(), "too_large")
    return expected
