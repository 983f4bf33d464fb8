"""Atomic writes: a reader never sees half a file, an interrupted write leaves the old one.

The temporary file gets a fresh random name created with O_EXCL (tempfile.mkstemp), so a
symlink planted where a predictable temporary name would be cannot redirect the write; the
final `os.replace` replaces a link at the destination instead of following it. Nothing is ever
written through a path the caller did not name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:80]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_csv_atomic(path: Path, rows: list[dict]) -> None:
    """Rows (dicts with the same keys) to CSV, header from the first row."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def fsync_dir(path: Path) -> None:
    """Make a create, rename or unlink in `path` durable (POSIX); Windows has no directory
    handles to fsync, so there it does nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
