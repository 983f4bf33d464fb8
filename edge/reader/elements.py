"""Header element access that never raises: a garbled element reads as None, never a traceback."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

import pydicom
from pydicom.dataset import Dataset

_PIXEL_DATA = 0x7FE00010


def _get(ds: Any, keyword: str) -> Any:
    """Element value or None; malformed values never raise."""
    try:
        value = ds.get(keyword, None)
    except Exception:
        return None
    return value


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    """Replace an element (dropping a garbled original that pydicom cannot even convert)."""
    with contextlib.suppress(Exception):
        del ds[keyword]
    setattr(ds, keyword, value)


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
