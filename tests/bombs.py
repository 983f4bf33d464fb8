"""Decompression bombs of every kind the reader meets: small files that declare or inflate to
gigabytes. Generated here (no binary fixtures), small enough for CI."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, generate_uid

from tests.hostile import grey_film, write_dicom


def deflate_bomb(path: Path, inflated_bytes: int = 1_700_000_000) -> Path:
    """Deflated explicit-VR DICOM whose dataset inflates to `inflated_bytes` (zeros in PixelData)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = 64, 64
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 16, 12, 11, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    small = path.with_suffix(".small")
    ds.save_as(small, enforce_file_format=True)
    # Re-deflate: the small file's dataset followed by an OW PixelData of zeros.
    raw = pydicom.dcmread(small)
    meta_end = len(small.read_bytes()) - len(zlib.compress(b"", 9))  # placeholder, recomputed below
    del meta_end
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, raw)
    n = inflated_bytes - len(body.getvalue()) - 12
    n -= n % 2
    element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, n)
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    head.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(head, raw.file_meta, enforce_standard=True)
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(1 << 24)
    with open(path, "wb") as f:
        f.write(head.getvalue())
        f.write(comp.compress(body.getvalue() + element))
        left = n
        while left:
            k = min(left, len(zeros))
            f.write(comp.compress(zeros[:k]))
            left -= k
        f.write(comp.flush())
    small.unlink()
    return path


def j2k_siz_bomb(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A valid small J2K DICOM whose codestream SIZ is rewritten to a huge size."""
    src = write_dicom(path.with_suffix(".native"), grey_film(128, 96), BitsStored=12)
    ds = pydicom.dcmread(src)
    ds.compress(JPEG2000Lossless)
    src.unlink()
    data = bytearray(ds.PixelData)
    at = data.find(b"\xff\x4f\xff\x51")
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    ds.PixelData = bytes(data)
    ds.save_as(path, enforce_file_format=True)
    return path


def jpegls_header_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A JPEG-LS DICOM (64 x 64 in the header) whose SOF55 declares a huge frame."""
    sof = struct.pack(">BHHB", 12, height, width, 1) + bytes([1, 0x11, 0])
    stream = (
        b"\xff\xd8"
        + b"\xff\xf7"
        + struct.pack(">H", len(sof) + 2)
        + sof
        + b"\xff\xda"
        + struct.pack(">HB", 8, 1)
        + bytes([1, 0, 0, 0, 0])
        + bytes(64)
        + b"\xff\xd9"
    )
    from pydicom.encaps import encapsulate

    return write_dicom(
        path,
        None,
        transfer_syntax=JPEGLSLossless,
        pixel_bytes=encapsulate([stream]),
        Rows=64,
        Columns=64,
        SamplesPerPixel=1,
        BitsAllocated=16,
        BitsStored=12,
        HighBit=11,
        PixelRepresentation=0,
        PhotometricInterpretation="MONOCHROME2",
    )


def tiff_duplicate_size_bomb(path: Path) -> Path:
    """A TIFF whose directory declares the size twice: huge first (what libtiff uses), small last."""
    pixels = b"\x00" * 64
    entries = [
        (256, 4, 1, 100_000),
        (256, 4, 1, 8),
        (257, 4, 1, 100_000),
        (257, 4, 1, 8),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 4, 1, 8),
        (279, 4, 1, 64),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHI", tag, typ, count) + (
            struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        )
    ifd += b"\x00\x00\x00\x00"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels + ifd)
    return path


def all_bombs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "deflate": deflate_bomb(folder / "deflate.dcm"),
        "j2k_siz": j2k_siz_bomb(folder / "j2k.dcm"),
        "jpegls_sof": jpegls_header_bomb(folder / "jls.dcm"),
        "tiff_dup": tiff_duplicate_size_bomb(folder / "dup.tiff"),
    }


if __name__ == "__main__":
    import sys

    for k, p in all_bombs(Path(sys.argv[1])).items():
        print(k, p, p.stat().st_size)
