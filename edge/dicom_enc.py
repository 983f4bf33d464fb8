"""A small DICOM encoder (Explicit VR Little Endian) for the objects `--dicom-out` writes per film.

highdicom builds the same objects (edge.dicom_out's `build_seg`/`build_sc`, edge.dicom_sr's `build_sr`,
kept as the reference that tests compare with), but its constructors validate, copy and re-parse
every content item, and pydicom then walks every element to write it: about 90 ms of CPU per film,
where the screening itself takes about 40 ms. Here each element is packed once into bytes, a
dataset is its elements' bytes joined in tag order, and a sequence its items' bytes: about 2 ms.

Elements copied from the source (patient, study, acquisition equipment) are encoded by pydicom's own
element writer with the source's character set, so their values are byte for byte what highdicom
would copy; everything this tool writes itself is ASCII.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

LONG = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
INTS = {"US": "<H", "UL": "<I", "SS": "<h", "SL": "<i", "FD": "<d", "FL": "<f"}
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1.99.1"  # under pydicom's root, as the reader's outputs
IMPLEMENTATION_NAME = "SARCO_EDGE"
Elements = dict[int, bytes]


def _head(tag: int, vr: str, length: int) -> bytes:
    if vr in LONG:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def raw(tag: int, vr: str, value: bytes) -> bytes:
    """One element of already encoded value bytes (padded to even length)."""
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return _head(tag, vr, len(value)) + value


def el(tag: int, vr: str, value: object) -> bytes:
    """One element: text (str, or a list of values joined by backslash), numbers, or an AT tag."""
    if value is None:
        return _head(tag, vr, 0)
    if vr in INTS:
        values = value if isinstance(value, (list, tuple)) else [value]
        return raw(tag, vr, b"".join(struct.pack(INTS[vr], v) for v in values))
    if vr == "AT":
        return raw(tag, vr, struct.pack("<HH", value >> 16, value & 0xFFFF))
    if isinstance(value, bytes):
        return raw(tag, vr, value)
    text = "\\".join(value) if isinstance(value, (list, tuple)) else str(value)
    return raw(tag, vr, text.encode("ascii"))


def item(elements: Elements) -> bytes:
    """One sequence item: its elements in tag order."""
    body = b"".join(elements[t] for t in sorted(elements))
    return struct.pack("<HHI", ITEM >> 16, ITEM & 0xFFFF, len(body)) + body


def sq(tag: int, items: Iterable[Elements | bytes]) -> bytes:
    """A sequence of items (dicts of elements, or items already packed)."""
    body = b"".join(i if isinstance(i, bytes) else item(i) for i in items)
    return _head(tag, "SQ", len(body)) + body


def code(value: str, scheme: str, meaning: str) -> Elements:
    """A code sequence item (as highdicom's CodedConcept: a value over 16 characters is a Long Code Value)."""
    key = (0x00080119, "UC") if len(value) > 16 else (0x00080100, "SH")
    return {key[0]: el(key[0], key[1], value), 0x00080102: el(0x00080102, "SH", scheme),
            0x00080104: el(0x00080104, "LO", meaning)}  # fmt: skip


@lru_cache(maxsize=4096)
def code_sq(tag: int, value: str, scheme: str, meaning: str) -> bytes:
    """A sequence of one code item, packed once (the same concepts recur in every film's objects)."""
    return sq(tag, [code(value, scheme, meaning)])


def code_of(c) -> Elements:
    """`code()` of a pydicom Code."""
    return code(c.value, c.scheme_designator, c.meaning)


@lru_cache(maxsize=64)
def _tags(keywords: tuple[str, ...]) -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    return frozenset(t for k in keywords if (t := tag_for_keyword(k)) is not None)


def copied(src: Dataset, keywords: tuple[str, ...]) -> Elements:
    """The source's elements of these keywords, where present: an Explicit VR Little Endian source's
    own bytes where pydicom left them unparsed, else encoded by pydicom with the source's character set."""
    from pydicom.charset import convert_encodings

    encodings = None
    out: Elements = {}
    for tag in _tags(keywords).intersection(map(int, src.keys())):  # ints: pydicom's tags compare in Python
        elem = src.get_item(tag)
        as_read = getattr(elem, "is_raw", False) and elem.VR not in (None, "SQ") and elem.length != 0xFFFFFFFF
        if as_read and not elem.is_implicit_VR and elem.is_little_endian:  # the source's own bytes, as they are
            out[tag] = raw(tag, elem.VR, elem.value or b"")
            continue
        if encodings is None:
            encodings = convert_encodings(src.get("SpecificCharacterSet") or "ISO_IR 6")
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_data_element(fp, src[tag], encodings)
        out[tag] = fp.getvalue()
    return out


def dataset(elements: Elements) -> bytes:
    return b"".join(elements[t] for t in sorted(elements))


def file_bytes(sop_class: str, sop_instance: str, elements: Elements, pixels: np.ndarray | None = None) -> list:
    """The file as chunks to write in turn (joined, its bytes): preamble, file meta (Explicit VR
    Little Endian), the dataset, then Pixel Data (OB) from `pixels`' memory, not copied."""
    meta = (
        el(0x00020001, "OB", b"\0\1")
        + el(0x00020002, "UI", sop_class)
        + el(0x00020003, "UI", sop_instance)
        + el(0x00020010, "UI", EXPLICIT_LE)
        + el(0x00020012, "UI", IMPLEMENTATION_UID)
        + el(0x00020013, "SH", IMPLEMENTATION_NAME)
    )
    chunks = [b"\0" * 128 + b"DICM" + el(0x00020000, "UL", len(meta)) + meta, dataset(elements)]
    if pixels is not None:  # Pixel Data is the last element of every object written here
        data = memoryview(np.ascontiguousarray(pixels)).cast("B")
        chunks += [_head(0x7FE00010, "OB", len(data) + len(data) % 2), data, b"\0" * (len(data) % 2)]
    return chunks
