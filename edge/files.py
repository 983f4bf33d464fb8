"""Atomic writes: a reader never sees half a file, an interrupted write leaves the old one."""
from __future__ import annotations

import csv
import os
from pathlib import Path


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv_atomic(path: Path, rows: list[dict]) -> None:
    """Rows (dicts with the same keys) to CSV, header from the first row."""
    path = Path(path)
    tmp = _tmp(path)
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
