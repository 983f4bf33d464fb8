"""Pixel decoding through pydicom's plugins: never Pillow, the risky ones isolated."""

from __future__ import annotations

import re

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from .film import ReadError
from .isolation import _ISOLATED_PLUGINS, _decode_isolated

# Decoder plugins the reader never uses, though highdicom installs both: Pillow (it would decode
# JPEG in-process, and only a development install had it before) and pyjpegls (CharLS in-process;
# JPEG-LS goes to gdcm in the isolated child, as it always did).
_NEVER = frozenset({"pillow", "pyjpegls"})


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

    plugins = [name for name in decoder.available_plugins if name not in _NEVER]
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
