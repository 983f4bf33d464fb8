"""Read one film (DICOM, PNG, JPEG or TIFF) into a normalised greyscale array.

The public face is `read_film`, `Film`, `ReadError` and `KINDS`; behind it one module per
concern: `dicom` (the DICOM pipeline), `dicom_header` (parsing and header validation),
`limits` (decompression-bomb checks), `decode` and `isolation` (pixel decoding, the risky
decoders in a child process), `photometry` (LUTs and grey values), `attributes` (spacing and
patient attributes), `elements` (header access that never raises) and `raster` (PNG/JPEG/TIFF).

Why this module is defensive: a clinic feeds it whatever the PACS export, a USB
stick or a phone produced. Every way a file can be wrong must end as a
:class:`ReadError` with one clear line (never a traceback), every check that can
be made from the header is made *before* decoding (decompression bombs, absurd
sizes), and the input file is only ever opened for reading.

Runtime dependencies: numpy, opencv-python-headless, pydicom (+ gdcm / pylibjpeg
decoder plugins). Pydicom's "pillow" and "pyjpegls" plugins are never used, so an install that
happens to have Pillow behaves exactly like the clinic install without it.
python-gdcm decodes run in a child process because gdcm can abort the interpreter
on a corrupted JPEG stream (see ``_ISOLATED_PLUGINS``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from .attributes import _user_spacing
from .dicom import _read_dicom
from .film import KINDS, Film, ReadError
from .raster import _read_raster

__all__ = ["Film", "ReadError", "KINDS", "read_film"]


def read_film(path: str | os.PathLike, spacing_mm: float | None = None, max_pixels: int = 120_000_000) -> Film:
    """Read a DICOM / PNG / JPEG / TIFF film; raise :class:`ReadError` for anything unusable.

    ``spacing_mm`` is the user's isotropic fallback (``--spacing-mm``); ``max_pixels``
    bounds the declared image size so a crafted header cannot exhaust memory.
    """
    try:
        # No warnings.catch_warnings here: it swaps process-wide state, and two batch prefetch
        # threads reading at once saw each other's warnings (good films came back "truncated").
        # The CLI silences library warnings once at start-up instead (edge.cli.main).
        return _read_film(Path(os.fspath(path)), spacing_mm, max_pixels)
    except ReadError:
        raise
    except MemoryError as exc:
        raise ReadError("too_large", "not enough memory to read this image") from exc
    except RecursionError as exc:
        raise ReadError("bad_header", "the file header is malformed (nested too deeply)") from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # last line of defence: never a traceback for the user
        # BaseException: a Rust decoder's panic (pylibjpeg-rle) is a pyo3 PanicException,
        # which derives from BaseException, and would otherwise stop a whole batch.
        raise ReadError("decode_failed", f"the file could not be read ({type(exc).__name__})") from exc


def _read_film(path: Path, spacing_mm: float | None, max_pixels: int) -> Film:
    head, size = _open_head(path)
    notes: list[str] = []
    user_spacing = _user_spacing(spacing_mm, notes)
    # DICM first: some DICOM files carry a TIFF header in their preamble (dual format).
    if len(head) >= 132 and head[128:132] == b"DICM":
        return _read_dicom(path, size, user_spacing, max_pixels, notes, has_magic=True)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _read_raster(path, "png", size, user_spacing, max_pixels, notes)
    if head.startswith(b"\xff\xd8\xff"):
        return _read_raster(path, "jpeg", size, user_spacing, max_pixels, notes)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _read_raster(path, "tiff", size, user_spacing, max_pixels, notes)
    if _looks_like_headerless_dicom(head):
        return _read_dicom(path, size, user_spacing, max_pixels, notes, has_magic=False)
    raise ReadError("not_an_image", "not an image: not DICOM, PNG, JPEG or TIFF")


def _open_head(path: Path) -> tuple[bytes, int]:
    """Return the first bytes and the size, turning OS errors into ReadError."""
    try:
        if not path.exists():
            raise ReadError("not_found", "file not found")
        if path.is_dir():
            raise ReadError("not_an_image", "this is a folder, not an image file")
        if not path.is_file():  # a FIFO or device would block or never end
            raise ReadError("not_an_image", "not a regular file")
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(512)
    except ReadError:
        raise
    except PermissionError as exc:
        raise ReadError("not_found", "file cannot be opened (permission denied)") from exc
    except OSError as exc:
        raise ReadError("not_found", f"file cannot be opened ({exc.strerror or 'OS error'})") from exc
    if size == 0 or not head:
        raise ReadError("empty", "the file is empty (0 bytes)")
    return head, size


def _looks_like_headerless_dicom(head: bytes) -> bool:
    """A DICOM stream without preamble starts with a low group (0000/0002/0008) tag."""
    if len(head) < 8:
        return False
    group_le = struct.unpack("<H", head[:2])[0]
    group_be = struct.unpack(">H", head[:2])[0]
    return group_le in (0x0000, 0x0002, 0x0008) or group_be in (0x0002, 0x0008)
