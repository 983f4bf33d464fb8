"""Decompression-bomb checks made before anything is inflated or decoded.

A deflated dataset is inflated in bounded pieces and counted; a compressed codestream must
declare the size the header does (the decoder allocates what the codestream says).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from .film import ReadError
from .raster import _walk_jpeg


def _inflate_limit(max_pixels: int) -> int:
    """Bytes a deflated dataset may inflate to: the largest image allowed at 16 bits, plus 16 MiB
    of header. Keeps the reader's peak memory bounded (see README, decode budgets)."""
    return 2 * max_pixels + (16 << 20)


def _check_inflated_size(path: Path, max_pixels: int) -> None:
    """A deflated DICOM is inflated in pieces and counted before pydicom inflates it whole.

    pydicom inflates the dataset in one `zlib.decompress` call: 0.5 MB of zeros becomes 1.6 GB
    before any header check could run.
    """
    import zlib

    from pydicom.filereader import _read_file_meta_info, read_preamble

    try:
        with open(path, "rb") as fp:
            read_preamble(fp, force=True)
            meta = _read_file_meta_info(fp)
            if (
                str(meta.get("TransferSyntaxUID", "")).strip().rstrip("\x00")
                != pydicom.uid.DeflatedExplicitVRLittleEndian
            ):
                return
            limit = _inflate_limit(max_pixels)
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            total = 0
            for chunk in iter(lambda: fp.read(1 << 16), b""):
                total += len(inflater.decompress(chunk, limit + 1 - total))
                while inflater.unconsumed_tail and total <= limit:
                    total += len(inflater.decompress(inflater.unconsumed_tail, limit + 1 - total))
                if total > limit:
                    raise ReadError("too_large", f"deflated DICOM inflates past {limit:,} bytes")
    except ReadError:
        raise
    except Exception:
        return  # not readable as meta + deflate here: the normal parse reports what is wrong


_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"

_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}


def _codestream_size(frag: bytes) -> tuple[int, int] | None:
    """(width, height) a JPEG / JPEG-LS / JPEG 2000 codestream declares, or None if not found."""
    at = frag.find(_J2K_SOC_SIZ)
    if at >= 0 and at < 4096 and len(frag) >= at + 24:  # SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz
        xs, ys, xo, yo = struct.unpack(">IIII", frag[at + 8 : at + 24])
        return xs - xo, ys - yo
    if frag[:2] == b"\xff\xd8":
        return _walk_jpeg(frag, _JPEG_FRAME_MARKERS, lenient=True, limit=1 << 20)[2]
    return None


def _check_codestream_size(ds: Dataset, rows: int, cols: int) -> None:
    """The decoder allocates what the codestream declares, not what the DICOM header says: a
    J2K SIZ or JPEG SOF that disagrees with Rows/Columns (844 bytes -> 4.5 GB) is refused first."""
    from pydicom.encaps import generate_fragments

    try:
        items = generate_fragments(ds.PixelData)
        next(items)  # the Basic Offset Table item always comes first
        first = next(items, b"")
    except Exception:
        return  # the decoder reports a malformed encapsulation
    size = _codestream_size(bytes(first[: 1 << 20]))
    if size is not None and size != (cols, rows):
        raise ReadError("bad_header", f"compressed image is {size[0]} x {size[1]} but the header says {cols} x {rows}")
