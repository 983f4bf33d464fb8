"""The child process that decodes with python-gdcm (and RLE through pylibjpeg).

python-gdcm can abort the whole interpreter on a corrupted JPEG stream (an uncaught C++
exception -> std::terminate, SIGABRT): no Python handler runs, a batch dies, and resuming it
hits the same file again. So those decodes run in a child process: a fork on Linux
(milliseconds, no re-import of __main__), a fresh interpreter elsewhere (Windows, macOS).
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from .elements import _PIXEL_DATA

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
            [sys.executable, "-c", "from edge.reader.isolation import _child_main; _child_main()"],
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
