"""Screen every image under a folder into one CSV, a row per file, errors included.

Rows are appended one whole line at a time (O_APPEND, fsync), so a killed run loses nothing it
had finished; `resume` skips files already in the CSV and drops a half-written last line.
Reading and decoding the next films runs in a thread while the model works on the current one.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .reader import ReadError, read_film
from .report import CSV_FIELDS, Report
from .screen import Options, Screener, write_overlay

COLUMNS = ["file", "status", "error_kind", "error", *CSV_FIELDS]
PREFETCH = 2


@dataclass(frozen=True)
class Entry:
    """One thing found under the folder: a file to screen, or one skipped with its reason."""

    path: Path
    rel: str  # the CSV's `file` cell: relative, '/'-separated, undecodable bytes as \\xNN
    skip: str | None = None  # why it gets a `skipped` row instead of a screen


def display_name(rel_path: str) -> str:
    """A relative path as text that always encodes (names with invalid UTF-8 bytes included)."""
    return os.fsencode(rel_path).decode("utf-8", "backslashreplace")


def find_images(folder: Path, exclude: tuple[Path, ...] = ()) -> list[Entry]:
    """Everything under `folder`, recursively, in a stable order, each with what will happen to it.

    The rule (README): regular files are screened; hidden files and folders (name starting with
    '.'), links that lead nowhere, FIFOs/devices/sockets and folders that cannot be read get a
    `skipped` row saying why; the output CSV and overlays folder are left out silently.
    """
    ex = {p.resolve() for p in exclude}
    entries: list[Entry] = []

    def rel(p: Path) -> str:
        return display_name(p.relative_to(folder).as_posix())

    def unreadable(err: OSError) -> None:
        if err.filename and Path(err.filename) != folder:
            entries.append(Entry(Path(err.filename), rel(Path(err.filename)), "folder cannot be read"))

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        keep = []
        for d in sorted(dirs):
            p = Path(root) / d
            if p.resolve() in ex:
                continue
            if d.startswith("."):
                entries.append(Entry(p, rel(p), "hidden folder"))
            else:
                keep.append(d)
        dirs[:] = keep
        for n in sorted(names):
            p = Path(root) / n
            try:
                if p.resolve() in ex:
                    continue
            except OSError:
                pass
            if n.startswith("."):
                entries.append(Entry(p, rel(p), "hidden file"))
            elif p.is_symlink() and not p.exists():
                entries.append(Entry(p, rel(p), "link that leads nowhere"))
            elif not p.is_file():
                entries.append(Entry(p, rel(p), "not a regular file"))
            else:
                entries.append(Entry(p, rel(p)))
    return sorted(entries, key=lambda e: e.rel)


def overlay_name(rel: str) -> str:
    """A flat, safe, unique file name for a relative input path.

    Readable part: the path with anything outside [A-Za-z0-9._-] replaced (it cannot leave the
    overlays folder, and is cut to 120 characters); unique part: 12 hex digits of the sha256 of
    the exact path bytes, so `x y` / `x_y`, `é` / `è`, `sub/a` / `sub__a` and long names that
    share their first characters never overwrite each other.
    """
    flat = re.sub(r"[^A-Za-z0-9._-]+", "_", rel.replace(os.sep, "__").replace("/", "__")).strip("._") or "film"
    digest = hashlib.sha256(os.fsencode(rel)).hexdigest()[:12]
    return f"{flat[:120]}-{digest}.png"


def default_workers() -> int:
    """Reading threads for a batch: one per CPU core, at most 4 (more only hold more films in
    memory at once)."""
    return max(1, min(4, os.cpu_count() or 1))


class BatchError(Exception):
    """The batch cannot go on (output not writable, CSV locked or not ours). str(e) is one line."""


def _done_files(out_csv: Path) -> set[str]:
    """Files already in the CSV; a torn last line (killed mid-write) is cut off first."""
    if not out_csv.exists():
        return set()
    data = out_csv.read_bytes()
    if data and not data.startswith((",".join(COLUMNS) + "\n").encode()):
        raise BatchError(f"{out_csv.name} is not a sarco-edge batch CSV of this version: choose another --out")
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(out_csv, "r+b") as f:
            f.truncate(keep)
        data = data[:keep]
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8", "replace"))))
    return {r["file"] for r in rows}


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + v if isinstance(v, str) and v.startswith(_FORMULA) else v


def _line(row: dict) -> bytes:
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n").writerow({k: _cell(row.get(k, "")) for k in COLUMNS})
    return buf.getvalue().encode("utf-8")


def _append(fd: int, data: bytes) -> None:
    """Write all of `data` (os.write may write less) and fsync; a full disk raises OSError."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, "no bytes written")
        view = view[n:]
    os.fsync(fd)


def _row(rel: str, rep: Report) -> dict:
    return {"file": rel, "status": "ok", **rep.csv_cells()}


def _lock(out_csv: Path):
    from filelock import FileLock, Timeout

    lock = FileLock(str(out_csv.with_name(out_csv.name + ".lock")), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BatchError(f"another batch is writing {out_csv.name}; wait for it or choose another --out") from None
    return lock


def run_batch(
    folder: Path,
    out_csv: Path,
    opts: Options,
    screener: Screener | None,
    overlays: Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 0,
    outcomes: Callable | None = None,
) -> dict:
    """Screen every entry into `out_csv`, one row each; OSError/BatchError stop it (one line).

    `workers` > 0 reads films in that many threads while the model runs (edge.pipeline);
    0 reads them in threads of this process. `outcomes(todo)`, if given, replaces both: an engine
    (edge.engine) that yields (entry, outcome) pairs, each entry once; this process still writes.
    """
    folder, out_csv = Path(folder), Path(out_csv)
    lock = _lock(out_csv)
    try:
        if outcomes is None:
            outcomes = _local_outcomes(screener, opts, workers)
        return _run_locked(folder, out_csv, opts, overlays, resume, progress, outcomes)
    finally:
        lock.release()


def _local_outcomes(screener: Screener, opts: Options, workers: int) -> Callable:
    if workers > 0:
        from .pipeline import screen_stream

        return lambda todo: screen_stream(screener, opts, todo, workers)
    return lambda todo: _serial_outcomes(screener, opts, todo)


def _serial_outcomes(screener: Screener, opts: Options, todo: list[Entry]) -> Iterator[tuple[Entry, object]]:
    """The single-process path: reads in PREFETCH threads, the model here, in input order."""

    def load(e: Entry):
        if e.skip:
            return None
        try:
            return read_film(e.path, spacing_mm=opts.spacing_mm)
        except ReadError as err:
            return err

    with ThreadPoolExecutor(max_workers=PREFETCH) as pool:
        futures = [pool.submit(load, e) for e in todo[:PREFETCH]]
        for i, entry in enumerate(todo):
            if i + PREFETCH < len(todo):
                futures.append(pool.submit(load, todo[i + PREFETCH]))
            film = futures[i].result()
            futures[i] = None
            if film is None or isinstance(film, ReadError):
                yield entry, film
                continue
            try:
                yield entry, screener.screen(film, opts)
            except Exception as exc:  # one film must not stop the batch; the row says so
                yield entry, RuntimeError(f"screening failed ({type(exc).__name__})")


def row_for(entry: Entry, outcome: object) -> dict:
    """The CSV row of one entry's outcome: None (skipped), a ReadError, another exception (the
    screen failed; its text is the row's error) or a Result / Report."""
    rel = entry.rel
    if entry.skip:
        return {"file": rel, "status": "skipped", "error_kind": "skipped", "error": entry.skip}
    if isinstance(outcome, ReadError):
        return {"file": rel, "status": "error", "error_kind": outcome.kind, "error": str(outcome)}
    if isinstance(outcome, BaseException) or outcome is None:
        return {"file": rel, "status": "error", "error_kind": "screen_failed", "error": str(outcome or "no result")}
    return _row(rel, getattr(outcome, "report", outcome))


def _new_counts(files: int, done: int) -> dict:
    names = ("screened", "low_muscle_mass", "borderline", "normal", "not_assessable", "errors", "skipped")
    return {"files": files, "skipped_done": done, **dict.fromkeys(names, 0)}


def _count(counts: dict, row: dict) -> None:
    if row["status"] == "ok":
        counts["screened"] += 1
        counts[row["flag"]] += 1
    else:
        counts["errors" if row["status"] == "error" else "skipped"] += 1


def _run_locked(folder, out_csv, opts, overlays, resume, progress, outcomes) -> dict:
    if out_csv.exists() and not resume:
        raise BatchError(f"{out_csv.name} exists; pass --resume to continue it or choose another --out")
    exclude = tuple(p for p in (out_csv, out_csv.with_name(out_csv.name + ".lock"), overlays) if p)
    entries = find_images(folder, exclude)
    done = _done_files(out_csv) if resume else set()
    todo = [e for e in entries if _cell(e.rel) not in done]  # the CSV holds names as written
    if overlays:
        overlays.mkdir(parents=True, exist_ok=True)
    counts = _new_counts(len(entries), len(entries) - len(todo))
    new = not out_csv.exists() or out_csv.stat().st_size == 0
    fd = os.open(out_csv, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if new:
            _append(fd, (",".join(COLUMNS) + "\n").encode())
        written: set[str] = set()
        for entry, outcome in outcomes(todo):
            if entry.rel in written:  # an engine that ran a film twice (a worker died): one row
                continue
            row = row_for(entry, outcome)
            if overlays and row["status"] == "ok" and getattr(outcome, "mask", None) is not None:
                write_overlay(overlays / overlay_name(entry.rel), outcome.film, outcome.mask, outcome.report)
            _append(fd, _line(row))
            written.add(entry.rel)
            _count(counts, row)
            if progress:
                progress(len(written), len(todo))
    finally:
        os.close(fd)
    return counts
