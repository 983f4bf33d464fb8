"""The DICOM node's spool on disk: nothing received, screened or not yet sent lives only in memory.

Layout under the spool folder:
- `incoming/<key>.dcm`: a film as received, written atomically and fsynced before the sender is
  told "stored" (so a PACS never deletes a film the node has not kept);
- `outbox/<key>/`: the SEG/SR/SC made for it (published by one rename, edge.dicom_out); each file
  is deleted once the destination has stored it, the folder once it is empty;
- `failed/<key>.dcm`: a file that could not even be answered (no study UIDs), kept for a person.
A film is `incoming` until its outbox exists, then `outbox` until sent: a node killed at any
point redoes, after a restart, only what has not been done. `<key>` is a hash of the SOP Instance
UID, so a file name never carries anything from the header.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .files import fsync_dir, write_bytes_atomic


def key_of(sop_instance_uid: str) -> str:
    """A file-name-safe key for an instance (the same film sent twice gets the same key)."""
    return hashlib.sha256(sop_instance_uid.encode("ascii", "replace")).hexdigest()[:24]


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incoming, self.outbox, self.failed = (self.root / n for n in ("incoming", "outbox", "failed"))
        for d in (self.incoming, self.outbox, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        self._clean_temps()

    def _clean_temps(self) -> None:
        """Half-written files and folders of a killed node (hidden names) are dropped at start."""
        for d in (self.incoming, self.outbox):
            for p in d.iterdir():
                if p.name.startswith("."):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def store(self, sop_instance_uid: str, encoded: bytes) -> Path:
        """Keep a received file on disk (atomic, fsynced) before it is acknowledged."""
        path = self.incoming / f"{key_of(sop_instance_uid)}.dcm"
        write_bytes_atomic(path, encoded)
        fsync_dir(self.incoming)
        return path

    def to_screen(self) -> list[Path]:
        """Received films not yet answered, oldest first."""
        files = [p for p in self.incoming.glob("*.dcm") if not p.name.startswith(".")]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def answered(self, film: Path) -> bool:
        """True once the film's outputs are in the outbox (it needs no second screening)."""
        return (self.outbox / film.stem).is_dir()

    def done_with(self, film: Path) -> None:
        film.unlink(missing_ok=True)
        fsync_dir(self.incoming)

    def give_up(self, film: Path) -> None:
        os.replace(film, self.failed / film.name)
        fsync_dir(self.incoming)

    def to_send(self) -> list[Path]:
        """Output files not yet stored at the destination, by folder (oldest first)."""
        folders = sorted((p for p in self.outbox.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: (p.stat().st_mtime_ns, p.name))  # fmt: skip
        out = []
        for folder in folders:
            files = sorted(folder.glob("*.dcm"))
            if not files:
                shutil.rmtree(folder, ignore_errors=True)
            out += files
        return out

    def sent(self, path: Path) -> None:
        """The destination stored it: forget it (a second send would be a duplicate)."""
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        if not any(path.parent.iterdir()):
            path.parent.rmdir()

    def counts(self) -> dict[str, int]:
        return {
            "to_screen": len(self.to_screen()),
            "to_send": sum(1 for _ in self.outbox.glob("*/*.dcm")),
            "failed": sum(1 for _ in self.failed.glob("*.dcm")),
        }
