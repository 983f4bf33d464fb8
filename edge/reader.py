"""Read one film (DICOM, PNG, JPEG or TIFF) into a normalised greyscale array.

Why this module is defensive: a clinic feeds it whatever the PACS export, a USB
stick or a phone produced. Every way a file can be wrong must end as a
:class:`ReadError` with one clear line (never a traceback), every check that can
be made from the header is made *before* decoding (decompression bombs, absurd
sizes), and the input file is only ever opened for reading.

Runtime dependencies: numpy, opencv-python-headless, pydicom (+ gdcm / pylibjpeg
decoder plugins). Pydicom's "pillow" plugin is never used, so a dev install that
happens to have Pillow behaves exactly like the clinic install without it.
python-gdcm decodes run in a child process because gdcm can abort the interpreter
on a corrupted JPEG stream (see ``_ISOLATED_PLUGINS``).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
import struct
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import UID

__all__ = ["Film", "ReadError", "KINDS", "read_film"]

KINDS: frozenset[str] = frozenset(
    {
        "not_found",
        "empty",
        "not_an_image",
        "truncated",
        "no_pixel_data",
        "colour",
        "multi_frame",
        "too_large",
        "unsupported_syntax",
        "decode_failed",
        "bad_header",
    }
)

# Spacing outside this range (mm) is a placeholder or garbage, not a detector pitch.
_SPACING_MIN_MM = 0.01
_SPACING_MAX_MM = 10.0
# Channels differing by less than this fraction of the range are "grey stored as RGB".
_GREY_TOLERANCE = 0.02
# Elements larger than this stay on disk until the header has been checked.
_DEFER_SIZE = 64 * 1024
# Rows per strip when applying LUTs, so large films never get a whole float64 copy.
_STRIP_PIXELS = 1_000_000

_PIXEL_DATA = 0x7FE00010
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


class ReadError(Exception):
    """The project's own error for any input that cannot be read as a film.

    ``str(e)`` is ONE clear line for a user (no path, no patient data); ``kind`` is
    a short machine tag (see :data:`KINDS`) so a batch can tabulate failures.
    """

    kind: str

    def __init__(self, kind: str, message: str) -> None:
        # Not validated against KINDS: a constructor that raises while reporting an
        # error would hide the error. read_film only uses the kinds in KINDS.
        message = " ".join(str(message).split()) or kind.replace("_", " ")
        # args carry both so the error survives pickling into/out of worker processes.
        super().__init__(kind, message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is meaningless
class Film:
    """A film ready for the model: grey, bone bright, values in [0, 1], plus what the header said."""

    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None
    spacing_source: str
    sex: str | None
    height_m: float | None
    height_source: str
    age_years: float | None
    weight_kg: float | None
    source_format: str
    photometric: str
    bits_stored: int
    transfer_syntax: str | None
    modality: str | None
    body_part: str | None
    notes: tuple[str, ...]


# --------------------------------------------------------------------------- entry point


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


# --------------------------------------------------------------------------- DICOM


def _read_dicom(
    path: Path,
    size: int,
    user_spacing: tuple[float, float] | None,
    max_pixels: int,
    notes: list[str],
    has_magic: bool,
) -> Film:
    """Check the header first, decode second; see the module docstring for why."""
    if has_magic:
        _check_inflated_size(path, max_pixels)
    ds = _parse_dicom(path, has_magic, defer=True)
    ts = _transfer_syntax(ds, notes)
    if ts is not None and not ts.is_transfer_syntax:
        raise ReadError("unsupported_syntax", f"unknown transfer syntax {str(ts)[:64]}")
    if ts is not None and ts.is_deflated:
        # Deferred reads point into the inflated stream, not the file: read it whole
        # (deflated files are small by construction).
        ds = _parse_dicom(path, has_magic, defer=False)
        ts = _transfer_syntax(ds, notes)

    if not has_magic and not any(t in ds for t in _TYPICAL_TAGS):
        raise ReadError("not_an_image", "not an image: not DICOM, PNG, JPEG or TIFF")

    raw_pixels = _get_raw(ds, _PIXEL_DATA)
    if raw_pixels is None:
        if not any(t in ds for t in _TYPICAL_TAGS) and not _get(
            getattr(ds, "file_meta", None), "MediaStorageSOPClassUID"
        ):
            raise ReadError("bad_header", "the file is marked as DICOM but its header cannot be read")
        if (ts is None or not ts.is_deflated) and _ends_inside_last_element(ds, size):
            raise ReadError("truncated", "the DICOM file ends before its header or pixel data is complete")
        if any(t in ds for t in _FLOAT_PIXEL_DATA):
            raise ReadError("no_pixel_data", "DICOM file holds float pixel data (a parametric map), not a radiograph")
        raise ReadError("no_pixel_data", f"DICOM file has no image ({_sop_class_name(ds)})")

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
    declared = rows * cols * frames * samples
    if declared > max_pixels:
        raise ReadError(
            "too_large",
            f"image too large: header declares {cols} x {rows} pixels"
            + (f" x {frames} frames" if frames > 1 else "")
            + (f" x {samples} samples" if samples > 1 else "")
            + f", limit is {max_pixels:,} values",
        )
    if frames > 1:
        raise ReadError("multi_frame", f"DICOM file has {frames} frames; a single radiograph is expected")

    photometric = str(_get(ds, "PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        if samples == 1:
            photometric = "MONOCHROME2"
            _set(ds, "PhotometricInterpretation", photometric)
            notes.append("PhotometricInterpretation missing, MONOCHROME2 assumed")
        else:
            raise ReadError("bad_header", "DICOM PhotometricInterpretation is missing")
    if photometric == "PALETTE COLOR":
        raise ReadError("colour", "this is a palette colour image, not a radiograph")
    if photometric in _GREY_PHOTOMETRIC:
        if samples != 1:
            raise ReadError("bad_header", f"{photometric} with {samples} samples per pixel is inconsistent")
    elif photometric in _COLOUR_PHOTOMETRIC:
        if samples != 3:
            raise ReadError("bad_header", f"{photometric} with {samples} samples per pixel is inconsistent")
    else:
        shown = photometric if _CODE_STRING.match(photometric) else "(malformed)"
        raise ReadError("colour", f"photometric interpretation {shown} is not a greyscale radiograph")

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

    if not ts.is_encapsulated:
        expected = rows * cols * frames * samples
        if photometric == "YBR_FULL_422":
            expected = expected * 2 // 3  # native 4:2:2 stores 2 values per pixel
        expected = (expected * bits_alloc + 7) // 8
        available = _available_length(raw_pixels, size)
        if available < expected:
            raise ReadError(
                "truncated",
                f"pixel data is truncated: {available:,} of {expected:,} bytes present",
            )

    if ts.is_encapsulated:
        _check_codestream_size(ds, rows, cols)
    arr = _decode_dicom(ds, ts)
    # The decoded array is all we need from the pixel bytes: free them for big films.
    try:
        del ds[_PIXEL_DATA]
    except Exception:  # pragma: no cover - freeing memory is best effort
        pass

    if arr.ndim == 3 and arr.shape[:2] == (rows, cols) and samples == 3:
        grey = _grey_from_rgb(arr, float(2**bits_stored - 1), "DICOM")
        del arr
        pixels = _normalise_minmax(grey)
        photometric_out = "RGB (grey content)"
        notes.append(f"{photometric} image with grey content (channels agree), read as grey")
    elif arr.ndim == 2 and arr.shape == (rows, cols) and samples == 1:
        pixels = _grey_pipeline(arr, ds, notes)
        del arr
        if photometric == "MONOCHROME1":
            np.subtract(np.float32(1.0), pixels, out=pixels)
        elif str(_get(ds, "PresentationLUTShape") or "").strip().upper() == "INVERSE":
            notes.append("PresentationLUTShape INVERSE on MONOCHROME2 ignored: check bone is bright")
        photometric_out = photometric
    else:
        raise ReadError(
            "decode_failed",
            f"decoded pixel data has shape {tuple(arr.shape)}, header says {rows} x {cols} x {samples}",
        )

    spacing, spacing_source = _dicom_spacing(ds, user_spacing, notes)
    sex = _sex(ds)
    height_m, height_source = _height(ds, notes)
    return Film(
        pixels=pixels,
        spacing_mm=spacing,
        spacing_source=spacing_source,
        sex=sex,
        height_m=height_m,
        height_source=height_source,
        age_years=_age(ds, notes),
        weight_kg=_weight(ds, notes),
        source_format="dicom",
        photometric=photometric_out,
        bits_stored=bits_stored,
        transfer_syntax=ts.name,
        modality=_code_string(ds, "Modality"),
        body_part=_code_string(ds, "BodyPartExamined"),
        notes=tuple(notes),
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


def _decode_dicom(ds: Dataset, ts: UID) -> np.ndarray:
    """Decode with pydicom's pixel backend, never through the Pillow plugin."""
    from pydicom.pixels.decoders.base import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise ReadError("unsupported_syntax", f"transfer syntax {ts.name} is not supported") from exc

    if decoder.is_native:
        try:
            return _decode_with(ds, "")
        except MemoryError:
            raise
        except Exception as exc:
            raise _decode_error(exc, ts) from exc

    plugins = [name for name in decoder.available_plugins if name != "pillow"]
    # In-process plugins first (J2K goes to openjpeg before gdcm): gdcm runs isolated.
    plugins.sort(key=lambda name: _isolated(name, ts))
    if not plugins:
        raise ReadError(
            "unsupported_syntax",
            f"no decoder installed for {ts.name} (needs python-gdcm or pylibjpeg plugins)",
        )
    first_exc: BaseException | None = None
    for name in plugins:
        try:
            return _decode_with(ds, name, ts)
        except (MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a Rust plugin's panic too: the next plugin may manage
            first_exc = first_exc or exc
    assert first_exc is not None
    raise _decode_error(first_exc, ts) from first_exc


def _isolated(plugin: str, ts: UID) -> bool:
    """gdcm always; pylibjpeg for RLE, whose Rust decoder panics on some corrupt segments and
    prints a Rust backtrace to stderr before Python sees the PanicException."""
    return plugin in _ISOLATED_PLUGINS or (plugin == "pylibjpeg" and ts == pydicom.uid.RLELossless)


def _decode_with(ds: Dataset, plugin: str, ts: UID | None = None) -> np.ndarray:
    """Decode with one named plugin ("" for native data), isolating the risky ones."""
    if ts is not None and _isolated(plugin, ts):
        return _decode_isolated(ds, plugin)
    ds.pixel_array_options(decoding_plugin=plugin) if plugin else ds.pixel_array_options()
    arr = ds.pixel_array
    ds._pixel_array = None  # keep a single owner of the decoded buffer
    return arr


# python-gdcm can abort the whole interpreter on a corrupted JPEG stream (an uncaught
# C++ exception -> std::terminate, SIGABRT): no Python handler runs, a batch dies, and
# resuming it hits the same file again. So gdcm decodes run in a child process: a fork
# on Linux (milliseconds, no re-import of __main__), a fresh interpreter elsewhere.
_ISOLATED_PLUGINS = frozenset({"gdcm"})
_CHILD_TIMEOUT_S = 300.0
_CHILD_MAGIC = b"SARCO-EDGE-DECODE-1\n"
_ISOLATION = "fork" if sys.platform.startswith("linux") else "subprocess"
_PIXEL_MODULE_TAGS = (
    0x00280002,  # SamplesPerPixel
    0x00280004,  # PhotometricInterpretation
    0x00280006,  # PlanarConfiguration
    0x00280008,  # NumberOfFrames
    0x00280010,  # Rows
    0x00280011,  # Columns
    0x00280100,  # BitsAllocated
    0x00280101,  # BitsStored
    0x00280102,  # HighBit
    0x00280103,  # PixelRepresentation
    0x7FE00001,  # ExtendedOffsetTable
    0x7FE00002,  # ExtendedOffsetTableLengths
    _PIXEL_DATA,
)


def _child_decode(mini: Dataset, plugin: str) -> tuple[str, Any]:
    """Child side: ("ok", array) or ("error", text). Library noise on stderr is dropped."""
    try:
        import faulthandler

        faulthandler.disable()  # an inherited handler would dump a traceback on SIGABRT
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mini.pixel_array_options(decoding_plugin=plugin)
            return ("ok", mini.pixel_array)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        return ("error", str(exc) or type(exc).__name__)


def _pdeathsig() -> None:
    """Linux: the kernel kills this child when its parent dies (a killed batch leaves no decoder
    holding memory and the caller's stdout). Elsewhere the closed pipe ends it (firmware_notes)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except Exception:
            pass


def _die_with_parent() -> None:
    _pdeathsig()
    try:  # never write to the caller's terminal or pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def _fork_target(mini: Dataset, plugin: str, conn: Any, parent_end: Any = None) -> None:
    if parent_end is not None:
        parent_end.close()  # else the child's own copy keeps the pipe open after the parent dies
    _die_with_parent()
    try:
        conn.send(_child_decode(mini, plugin))
    finally:
        conn.close()


def _child_main() -> None:
    """Entry point of the subprocess decoder: pickle in on stdin, pickle out on stdout."""
    mini, plugin = pickle.loads(sys.stdin.buffer.read())
    _pdeathsig()  # (stdout stays: it is the result pipe here)
    result = _child_decode(mini, plugin)
    sys.stdout.buffer.write(_CHILD_MAGIC + pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


def _run_forked(mini: Dataset, plugin: str) -> tuple[str, Any] | None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_fork_target, args=(mini, plugin, sender, receiver), daemon=True)
    proc.start()  # raises inside daemonic workers; the caller falls back
    sender.close()
    message: tuple[str, Any] | None = None
    try:
        if receiver.poll(_CHILD_TIMEOUT_S):
            message = receiver.recv()
    except (EOFError, OSError):
        message = None
    finally:
        receiver.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if message is None:
        raise RuntimeError(_child_failure(plugin, proc.exitcode))
    return message


def _run_subprocess(mini: Dataset, plugin: str) -> tuple[str, Any]:
    import subprocess

    if getattr(sys, "frozen", False) or not sys.executable:
        raise OSError("no Python interpreter to start")
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from edge.reader import _child_main; _child_main()"],
            input=pickle.dumps((mini, plugin), protocol=pickle.HIGHEST_PROTOCOL),
            capture_output=True,
            timeout=_CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{plugin} decoder timed out") from None
    at = done.stdout.find(_CHILD_MAGIC)
    if at < 0:
        raise RuntimeError(_child_failure(plugin, done.returncode))
    return pickle.loads(done.stdout[at + len(_CHILD_MAGIC) :])


def _child_failure(plugin: str, exitcode: int | None) -> str:
    if exitcode is None or exitcode == 0:
        return f"{plugin} decoder timed out or gave no result"
    return f"{plugin} decoder crashed (exit code {exitcode})"


def _decode_isolated(ds: Dataset, plugin: str) -> np.ndarray:
    """Decode in a child process; a crash there becomes an ordinary exception here."""
    from pydicom.dataset import FileMetaDataset

    mini = Dataset()
    mini.file_meta = FileMetaDataset()
    mini.file_meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    for tag in _PIXEL_MODULE_TAGS:
        if tag in ds:
            mini[tag] = ds[tag]
    runners = [_run_forked, _run_subprocess] if _ISOLATION == "fork" else [_run_subprocess]
    message: tuple[str, Any] | None = None
    for runner in runners:
        try:
            message = runner(mini, plugin)
            break
        except RuntimeError:
            raise
        except Exception:
            continue  # this way of starting a child is not available here: try the next
    if message is None:
        # No child process possible at all (frozen app, restricted sandbox): decode here.
        mini.pixel_array_options(decoding_plugin=plugin)
        return mini.pixel_array
    if message[0] == "ok":
        return message[1]
    raise RuntimeError(message[1])


def _decode_error(exc: Exception, ts: UID) -> ReadError:
    """Classify a decoder failure, keeping one short line of the plugin's own reason."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # pydicom: "Unable to decode as exceptions were raised by all available plugins:\n  gdcm: why"
    reasons = lines[1:] if len(lines) > 1 and lines[0].lower().startswith("unable to") else lines
    reason = reasons[0] if reasons else type(exc).__name__
    reason = re.sub(r"[/\\][^\s'\"]+", "<path>", reason)[:160]  # never leak file paths
    text = " ".join(lines).lower()
    if any(w in text for w in ("truncat", "too short", "end of file", "insufficient", "not enough data")):
        return ReadError("truncated", f"{ts.name} pixel data is incomplete: {reason}")
    if any(w in text for w in ("does not support", "not supported", "missing dependencies", "unsupported")):
        return ReadError("unsupported_syntax", f"{ts.name} pixel data of this kind cannot be decoded here: {reason}")
    return ReadError("decode_failed", f"{ts.name} pixel data cannot be decoded: {reason}")


def _grey_pipeline(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """Modality LUT/rescale, then VOI LUT/window, then min/max to [0, 1] float32.

    Applied in strips of rows: both LUT steps are per-pixel, and pydicom's versions
    promote to float64, which for a 3000 x 9000 film would be 216 MB per copy.
    A step that fails on the first strip (malformed LUT, zero window width) is
    skipped with a note rather than refusing an otherwise readable film.
    """
    step = max(1, _STRIP_PIXELS // max(1, arr.shape[1]))
    use_modality = _lut_works(apply_modality_lut, arr[:step], ds)
    if not use_modality:
        notes.append("modality LUT / rescale malformed, ignored")
    first = apply_modality_lut(arr[:step], ds) if use_modality else arr[:step]
    use_voi = _lut_works(apply_voi_lut, first, ds)
    if not use_voi:
        notes.append("VOI LUT / window malformed, ignored")
    del first

    out = np.empty(arr.shape, dtype=np.float32)
    for start in range(0, arr.shape[0], step):
        chunk: np.ndarray = arr[start : start + step]
        if use_modality:
            chunk = apply_modality_lut(chunk, ds)
        if use_voi:
            chunk = apply_voi_lut(chunk, ds, index=0)
        out[start : start + step] = chunk
    return _normalise_minmax(out)


def _lut_works(func: Any, sample: np.ndarray, ds: Dataset) -> bool:
    try:
        result = func(sample, ds)
        return bool(np.asarray(result).shape == sample.shape)
    except MemoryError:
        raise
    except Exception:
        return False


def _normalise_minmax(out: np.ndarray) -> np.ndarray:
    """Map to [0, 1] in place by the image's own range; a constant image becomes zeros."""
    if out.dtype != np.float32:
        out = out.astype(np.float32)
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    lo = float(out.min())
    hi = float(out.max())
    if not hi > lo:
        out[...] = 0.0
        return out
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _grey_from_rgb(arr: np.ndarray, full_scale: float, what: str) -> np.ndarray:
    """Mean of three channels as float32, or a 'colour' ReadError if they really differ."""
    rows = arr.shape[0]
    step = max(1, _STRIP_PIXELS // max(1, arr.shape[1]))
    grey = np.empty(arr.shape[:2], dtype=np.float32)
    diff_sum = 0.0
    for start in range(0, rows, step):
        chunk = arr[start : start + step, :, :3].astype(np.float32)
        d = np.maximum(
            np.abs(chunk[..., 0] - chunk[..., 1]),
            np.maximum(np.abs(chunk[..., 1] - chunk[..., 2]), np.abs(chunk[..., 0] - chunk[..., 2])),
        )
        diff_sum += float(d.sum(dtype=np.float64))
        grey[start : start + step] = chunk.mean(axis=2)
    mean_diff = diff_sum / max(1, arr.shape[0] * arr.shape[1])
    if mean_diff >= _GREY_TOLERANCE * full_scale:
        raise ReadError(
            "colour",
            f"this is a colour image, not a radiograph ({what} colour channels differ by "
            f"{100 * mean_diff / full_scale:.1f}% on average)",
        )
    return grey


# --------------------------------------------------------------------------- header values


def _get(ds: Any, keyword: str) -> Any:
    """Element value or None; malformed values never raise."""
    try:
        value = ds.get(keyword, None)
    except Exception:
        return None
    return value


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    """Replace an element (dropping a garbled original that pydicom cannot even convert)."""
    try:
        del ds[keyword]
    except Exception:
        pass
    setattr(ds, keyword, value)


def _ends_inside_last_element(ds: Dataset, file_size: int) -> bool:
    """True when the last parsed element claims more bytes than the file holds."""
    try:
        last_tag = next(reversed(list(ds.keys())), None)
        if last_tag is None:
            return False
        raw = ds.get_item(last_tag, keep_deferred=True)
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if tell is None or length is None or length == 0xFFFFFFFF:
            return False
        return int(tell) + int(length) > file_size
    except Exception:
        return False


def _get_raw(ds: Dataset, tag: int) -> Any:
    """The raw element (value possibly still on disk), or None."""
    try:
        return ds.get_item(tag, keep_deferred=True)
    except Exception:
        return None


def _int(ds: Any, keyword: str) -> int | None:
    value = _get(ds, keyword)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            value = value[0]
        number = float(str(value).strip()) if isinstance(value, (str, bytes)) else float(value)
    except Exception:
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _floats(ds: Any, keyword: str) -> list[float] | None:
    """All numeric values of a DS element, or None if absent; ValueError if malformed."""
    value = _get(ds, keyword)
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        items: list[Any] = [v for v in value.split("\\")]
    elif isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        items = list(value)
    else:
        items = [value]
    return [float(str(v).strip()) for v in items]


def _text(ds: Dataset, keyword: str) -> str | None:
    value = _get(ds, keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _sop_class_name(ds: Dataset) -> str:
    """The SOP class by its registered name only: a header value never reaches a message.

    A corrupted file can make the SOPClassUID element swallow the rest of the header (patient
    name, id, birth date), and pydicom's `UID.name` returns an unknown UID as its own text.
    """
    from pydicom._uid_dict import UID_dictionary

    uid = _get(ds, "SOPClassUID") or _get(getattr(ds, "file_meta", Dataset()), "MediaStorageSOPClassUID")
    key = str(uid).strip().rstrip("\x00") if isinstance(uid, str) else None
    if key and key in UID_dictionary:
        return UID_dictionary[key][0]
    return "unknown object type"


_CODE_STRING = re.compile(r"^[A-Z0-9 _]{1,16}$")


def _code_string(ds: Dataset, keyword: str) -> str | None:
    """A CS value (Modality, BodyPartExamined) only when it is a valid code string: these reach
    the report and `inspect`, and a garbled header must not carry free text (a name) there."""
    value = _text(ds, keyword)
    if value is None:
        return None
    value = value.upper()
    return value if _CODE_STRING.match(value) else None


def _valid_spacing(values: list[float] | None) -> tuple[float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        values = [values[0], values[0]]
    if len(values) != 2:
        return None
    if not all(math.isfinite(v) and _SPACING_MIN_MM <= v <= _SPACING_MAX_MM for v in values):
        return None
    return (float(values[0]), float(values[1]))


def _user_spacing(spacing_mm: float | None, notes: list[str]) -> tuple[float, float] | None:
    if spacing_mm is None:
        return None
    try:
        value = float(spacing_mm)
    except Exception:
        value = float("nan")
    pair = _valid_spacing([value])
    if pair is None:
        notes.append(f"user spacing {spacing_mm!r} outside {_SPACING_MIN_MM}-{_SPACING_MAX_MM} mm, ignored")
    return pair


def _read_spacing_tag(ds: Dataset, keyword: str, notes: list[str]) -> tuple[float, float] | None:
    """A two-value spacing tag if valid; malformed or implausible values get a note."""
    try:
        values = _floats(ds, keyword)
    except Exception:
        notes.append(f"{keyword} malformed, ignored")
        return None
    if values is None:
        return None
    pair = _valid_spacing(values) if len(values) == 2 else None
    if pair is None:
        notes.append(f"{keyword} malformed, ignored")
    return pair


def _dicom_spacing(
    ds: Dataset, user: tuple[float, float] | None, notes: list[str]
) -> tuple[tuple[float, float] | None, str]:
    """Patient-plane spacing in the order the SPEC sets, saying where it came from."""
    pixel = _read_spacing_tag(ds, "PixelSpacing", notes)
    if pixel is not None:
        if pixel == (1.0, 1.0):
            notes.append("PixelSpacing is exactly 1.0 mm, often a placeholder: check it")
        return pixel, "PixelSpacing"
    imager = _read_spacing_tag(ds, "ImagerPixelSpacing", notes)
    if imager is not None:
        factor: float | None = None
        try:
            factors = _floats(ds, "EstimatedRadiographicMagnificationFactor")
            if factors:
                factor = factors[0]
        except Exception:
            notes.append("EstimatedRadiographicMagnificationFactor malformed, ignored")
        if factor is not None:
            if math.isfinite(factor) and 1.0 <= factor <= 2.0:
                corrected = _valid_spacing([imager[0] / factor, imager[1] / factor])
                if corrected is not None:
                    return corrected, "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
            notes.append("EstimatedRadiographicMagnificationFactor outside 1.0-2.0, ignored")
    if user is not None:
        return user, "user"
    if imager is not None:
        notes.append("spacing is at the detector, not corrected for magnification")
        return imager, "ImagerPixelSpacing (not corrected for magnification)"
    return None, "none"


def _sex(ds: Dataset) -> str | None:
    value = _text(ds, "PatientSex")
    if value is None:
        return None
    value = value.upper()
    return value if value in ("F", "M") else None


def _height(ds: Dataset, notes: list[str]) -> tuple[float | None, str]:
    """PatientSize is metres by the standard; 50-250 is someone typing centimetres."""
    try:
        values = _floats(ds, "PatientSize")
    except Exception:
        notes.append("PatientSize malformed, ignored")
        return None, "none"
    if not values:
        return None, "none"
    value = values[0]
    if math.isfinite(value) and 0.5 <= value <= 2.5:
        return float(value), "PatientSize"
    if math.isfinite(value) and 50.0 <= value <= 250.0:
        notes.append("PatientSize read as centimetres")
        return float(value) / 100.0, "PatientSize (cm)"
    if value != 0:
        notes.append("PatientSize implausible, ignored")
    return None, "none"


_AGE_RE = re.compile(r"^\s*(\d{1,3})\s*([DWMYdwmy]?)\s*$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _age(ds: Dataset, notes: list[str]) -> float | None:
    value = _text(ds, "PatientAge")
    if value is None:
        return None
    match = _AGE_RE.match(value)
    if not match:
        notes.append("PatientAge malformed, ignored")
        return None
    unit = match.group(2).upper()
    if not unit:
        notes.append("PatientAge has no unit, years assumed")
        unit = "Y"
    return int(match.group(1)) * _AGE_UNIT_YEARS[unit]


def _weight(ds: Dataset, notes: list[str]) -> float | None:
    try:
        values = _floats(ds, "PatientWeight")
    except Exception:
        notes.append("PatientWeight malformed, ignored")
        return None
    if not values:
        return None
    value = values[0]
    if math.isfinite(value) and 1.0 <= value <= 500.0:
        return float(value)
    if value != 0:
        notes.append("PatientWeight implausible, ignored")
    return None


# --------------------------------------------------------------------------- PNG / JPEG / TIFF


def _read_raster(
    path: Path,
    fmt: str,
    size: int,
    user_spacing: tuple[float, float] | None,
    max_pixels: int,
    notes: list[str],
) -> Film:
    """Header size check, then OpenCV decode; grey is taken as displayed (bone bright)."""
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
    if img.ndim == 3:
        channels = img.shape[2]
        if channels == 1:
            img = img[..., 0]
        elif channels == 2:  # grey + alpha
            img = img[..., 0]
            notes.append("alpha channel dropped")
        elif channels in (3, 4):
            if channels == 4:
                notes.append("alpha channel dropped")
            img = _grey_from_rgb(img, full_scale, fmt.upper())
            photometric = "RGB (grey content)"
            notes.append("colour image with grey content (channels agree), read as grey")
        else:
            raise ReadError("colour", f"{fmt.upper()} with {channels} channels is not a greyscale radiograph")
    pixels = img.astype(np.float32, copy=False) if img.dtype == np.float32 else img.astype(np.float32)
    del img
    pixels *= np.float32(1.0 / full_scale)
    np.clip(pixels, 0.0, 1.0, out=pixels)

    return Film(
        pixels=pixels,
        spacing_mm=user_spacing,
        spacing_source="user" if user_spacing is not None else "none",
        sex=None,
        height_m=None,
        height_source="none",
        age_years=None,
        weight_kg=None,
        source_format=fmt,
        photometric=photometric,
        bits_stored=bits,
        transfer_syntax=None,
        modality=None,
        body_part=None,
        notes=tuple(notes),
    )


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


_TIFF_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8), 6: ("b", 1), 8: ("h", 2), 9: ("i", 4)}


def _tiff_size(fh: Any, size: int, notes: list[str]) -> tuple[int, int]:
    """Width/length of the first IFD; image data pointing past the end means truncated."""
    head = fh.read(16)
    endian = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(endian + "H", head[2:4])[0] == 43
    try:
        if big:
            (offset,) = struct.unpack(endian + "Q", head[8:16])
            count_fmt, entry_size, value_size = "Q", 20, 8
        else:
            (offset,) = struct.unpack(endian + "I", head[4:8])
            count_fmt, entry_size, value_size = "H", 12, 4
        if offset < 8 or offset >= size:
            raise ReadError("truncated", "TIFF file is truncated (first directory missing)")
        fh.seek(offset)
        count_size = struct.calcsize(count_fmt)
        (count,) = struct.unpack(endian + count_fmt, fh.read(count_size))
        if count == 0 or count > 4096:
            raise ReadError("bad_header", "TIFF header is malformed (bad directory)")
        block = fh.read(count * entry_size + value_size)
        if len(block) < count * entry_size:
            raise ReadError("truncated", "TIFF file is truncated (directory incomplete)")
        tags: dict[int, list[int]] = {}
        for i in range(count):
            entry = block[i * entry_size : (i + 1) * entry_size]
            if big:
                tag, typ, n = struct.unpack(endian + "HHQ", entry[:12])
                raw_value = entry[12:20]
            else:
                tag, typ, n = struct.unpack(endian + "HHI", entry[:8])
                raw_value = entry[8:12]
            if tag not in (256, 257, 273, 279, 324, 325) or typ not in _TIFF_TYPES:
                continue
            code, item = _TIFF_TYPES[typ]
            if n == 0 or n > 1_000_000:
                continue
            if n * item <= value_size:
                payload = raw_value[: n * item]
            else:
                (value_offset,) = struct.unpack(endian + ("Q" if big else "I"), raw_value)
                if value_offset + n * item > size:
                    raise ReadError("truncated", "TIFF file is truncated (tag data missing)")
                here = fh.tell()
                fh.seek(value_offset)
                payload = fh.read(n * item)
                fh.seek(here)
            if tag in tags:  # libtiff keeps the first, a naive parser the last: a size-check bypass
                raise ReadError("bad_header", "TIFF directory repeats a size or strip tag")
            tags[tag] = list(struct.unpack(endian + code * n, payload))
        next_ifd = block[count * entry_size : count * entry_size + value_size]
        if len(next_ifd) == value_size and any(next_ifd):
            notes.append("multi-page TIFF: first page used")
    except ReadError:
        raise
    except (struct.error, OverflowError, ValueError) as exc:
        raise ReadError("bad_header", "TIFF header is malformed") from exc
    if 256 not in tags or 257 not in tags:
        raise ReadError("bad_header", "TIFF header has no image width/length")
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets and counts and len(offsets) == len(counts):
            if max(o + c for o, c in zip(offsets, counts)) > size:
                raise ReadError("truncated", "TIFF file is truncated (image data missing)")
    return int(tags[256][0]), int(tags[257][0])
