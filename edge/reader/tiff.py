"""TIFF's first image directory, read by hand for the size check (and its truncation and
duplicate-tag tricks) before OpenCV's libtiff sees the file."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .film import ReadError

_TIFF_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8), 6: ("b", 1), 8: ("h", 2), 9: ("i", 4)}


_SIZE_TAGS = (256, 257, 273, 279, 324, 325)  # width, length, strip and tile offsets/counts


@dataclass(frozen=True)
class _Layout:
    """Classic TIFF (32-bit offsets) or BigTIFF (64-bit), in the file's byte order."""

    endian: str
    big: bool

    @property
    def entry_size(self) -> int:
        return 20 if self.big else 12

    @property
    def value_size(self) -> int:
        return 8 if self.big else 4

    @property
    def offset_code(self) -> str:
        return "Q" if self.big else "I"


def _tiff_size(fh: Any, size: int, notes: list[str]) -> tuple[int, int]:
    """Width/length of the first IFD; image data pointing past the end means truncated."""
    head = fh.read(16)
    endian = "<" if head[:2] == b"II" else ">"
    try:
        layout = _Layout(endian, struct.unpack(endian + "H", head[2:4])[0] == 43)
        offset_at = head[8:16] if layout.big else head[4:8]
        (offset,) = struct.unpack(endian + layout.offset_code, offset_at)
        if offset < 8 or offset >= size:
            raise ReadError("truncated", "TIFF file is truncated (first directory missing)")
        tags = _first_directory(fh, size, offset, layout, notes)
    except ReadError:
        raise
    except (struct.error, OverflowError, ValueError) as exc:
        raise ReadError("bad_header", "TIFF header is malformed") from exc
    if 256 not in tags or 257 not in tags:
        raise ReadError("bad_header", "TIFF header has no image width/length")
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets and counts and len(offsets) == len(counts) and max(o + c for o, c in zip(offsets, counts)) > size:
            raise ReadError("truncated", "TIFF file is truncated (image data missing)")
    return int(tags[256][0]), int(tags[257][0])


def _first_directory(fh: Any, size: int, offset: int, layout: _Layout, notes: list[str]) -> dict[int, list[int]]:
    """The size and strip/tile tags of the first directory; a repeated one is refused."""
    fh.seek(offset)
    count_code = "Q" if layout.big else "H"
    (count,) = struct.unpack(layout.endian + count_code, fh.read(struct.calcsize(count_code)))
    if count == 0 or count > 4096:
        raise ReadError("bad_header", "TIFF header is malformed (bad directory)")
    block = fh.read(count * layout.entry_size + layout.value_size)
    if len(block) < count * layout.entry_size:
        raise ReadError("truncated", "TIFF file is truncated (directory incomplete)")
    tags: dict[int, list[int]] = {}
    for i in range(count):
        found = _entry(fh, size, block[i * layout.entry_size : (i + 1) * layout.entry_size], layout)
        if found is None:
            continue
        if found[0] in tags:  # libtiff keeps the first, a naive parser the last: a size-check bypass
            raise ReadError("bad_header", "TIFF directory repeats a size or strip tag")
        tags[found[0]] = found[1]
    next_ifd = block[count * layout.entry_size : count * layout.entry_size + layout.value_size]
    if len(next_ifd) == layout.value_size and any(next_ifd):
        notes.append("multi-page TIFF: first page used")
    return tags


def _entry(fh: Any, size: int, entry: bytes, layout: _Layout) -> tuple[int, list[int]] | None:
    """(tag, values) of one directory entry if it is a size or strip tag, else None."""
    head_code = "HHQ" if layout.big else "HHI"
    head_len = 12 if layout.big else 8
    tag, typ, n = struct.unpack(layout.endian + head_code, entry[:head_len])
    raw_value = entry[head_len : head_len + layout.value_size]
    if tag not in _SIZE_TAGS or typ not in _TIFF_TYPES:
        return None
    code, item = _TIFF_TYPES[typ]
    if n == 0 or n > 1_000_000:
        return None
    if n * item <= layout.value_size:
        payload = raw_value[: n * item]
    else:
        (value_offset,) = struct.unpack(layout.endian + layout.offset_code, raw_value)
        if value_offset + n * item > size:
            raise ReadError("truncated", "TIFF file is truncated (tag data missing)")
        here = fh.tell()
        fh.seek(value_offset)
        payload = fh.read(n * item)
        fh.seek(here)
    return tag, list(struct.unpack(layout.endian + code * n, payload))
