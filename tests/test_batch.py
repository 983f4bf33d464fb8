"""A batch that cannot be broken: one row per entry whatever the entry, an exclusive CSV, whole
rows or none, and no input that stops it."""

from __future__ import annotations

import csv
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_fragments

from edge import batch as batch_mod
from tests.helpers import REPO, run_cli
from tests.hostile import make_hostile_corpus

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _batch(folder: Path, out: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "batch", str(folder), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        **kw,
    )


def rle_panic_file(path: Path) -> Path:
    """rtdose_rle_1frame.dcm with two bytes of its RLE header changed so that pylibjpeg-rle panics
    (a Rust PanicException, a BaseException) instead of raising."""
    from rle.rle import decode_frame

    ds = pydicom.dcmread(TEST_FILES / "rtdose_rle_1frame.dcm")
    frag = bytes(list(generate_fragments(ds.PixelData))[1])
    rng = np.random.default_rng(0)
    for _ in range(2000):
        m = bytearray(frag)
        for _ in range(2):
            m[int(rng.integers(0, 200))] = int(rng.integers(0, 256))
        try:
            decode_frame(bytes(m), ds.Rows * ds.Columns, ds.BitsAllocated, "<")
        except Exception:
            continue
        except BaseException:
            ds.PixelData = encapsulate([bytes(m)])
            ds.save_as(path)
            return path
    raise AssertionError("no panicking mutant found")


def test_odd_entries_each_get_a_row_and_nothing_stops_the_batch(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "good.dcm")
    rle_panic_file(folder / "panic.dcm")
    (folder / os.fsdecode(b"bad\xffname.dcm")).write_bytes(SAMPLE.read_bytes())
    (folder / "=cmd|' -C calc'!A0.dcm").write_bytes(b"not an image")
    (folder / ".hidden.dcm").write_bytes(SAMPLE.read_bytes())
    (folder / "gone.dcm").symlink_to(folder / "nowhere.dcm")
    os.mkfifo(folder / "pipe.dcm")
    out = tmp_path / "r.csv"
    env = dict(os.environ, RUST_BACKTRACE="1")
    res = _batch(folder, out, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "panicked" not in res.stderr, res.stderr[-2000:]
    rows = {r["file"]: r for r in _rows(out)}
    assert len(rows) == 7, sorted(rows)
    assert rows["good.dcm"]["status"] == "ok"
    assert rows["panic.dcm"]["status"] == "error" and rows["panic.dcm"]["error_kind"] in ("decode_failed", "truncated")
    assert rows["bad\\xffname.dcm"]["status"] == "ok"
    assert rows["'=cmd|' -C calc'!A0.dcm"]["status"] == "error"  # formula neutralised
    assert rows[".hidden.dcm"]["status"] == "skipped" and "hidden" in rows[".hidden.dcm"]["error"]
    assert rows["gone.dcm"]["status"] == "skipped" and "nowhere" in rows["gone.dcm"]["error"]
    assert rows["pipe.dcm"]["status"] == "skipped" and "regular" in rows["pipe.dcm"]["error"]
    again = _batch(folder, out, "--resume", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(_rows(out)) == 7


def test_two_batches_on_one_csv_cannot_interleave(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        shutil.copy(SAMPLE, folder / f"f{i}.dcm")
    out = tmp_path / "r.csv"
    first = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "batch", str(folder), "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not out.exists():
        time.sleep(0.05)
    second = _batch(folder, out, "--resume")
    assert first.wait(timeout=600) == 0
    assert second.returncode == 2 and "another batch" in second.stderr, second.stderr
    rows = _rows(out)
    assert len(rows) == 6 and out.read_text().count("file,status") == 1


def test_a_full_disk_stops_with_one_line_and_resume_completes(tmp_path: Path):
    folder = tmp_path / "in"
    make_hostile_corpus(folder)
    n = sum(1 for _ in folder.iterdir())
    out = tmp_path / "r.csv"

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG, like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    res = _batch(folder, out, preexec_fn=small_disk)
    assert res.returncode == 5, (res.returncode, res.stderr[-2000:])
    assert len(res.stderr.strip().splitlines()[-1:]) == 1 and "Traceback" not in res.stderr
    assert "--resume" in res.stderr
    partial = out.read_bytes()
    assert 0 < len(partial) <= 1500
    res = _batch(folder, out, "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _rows(out)
    assert len(rows) == n == len({r["file"] for r in rows})
    assert all(r["status"] in ("error", "ok", "skipped") and r["error_kind"] for r in rows if r["status"] != "ok")


def test_short_writes_are_completed(tmp_path: Path, monkeypatch):
    real = os.write
    monkeypatch.setattr(batch_mod.os, "write", lambda fd, data: real(fd, bytes(data[:5])))
    path = tmp_path / "x.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        batch_mod._append(fd, b"a,b,c,d,e,f,g,h\n" * 3)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"a,b,c,d,e,f,g,h\n" * 3


def test_resume_refuses_a_csv_that_is_not_ours(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.dcm")
    out = tmp_path / "other.csv"
    out.write_text("name,value\nx,1\n")
    res = _batch(folder, out, "--resume")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert out.read_text() == "name,value\nx,1\n"


@pytest.mark.parametrize("cut", [0, 1, 7])
def test_done_files_cuts_exactly_the_torn_last_line(tmp_path: Path, cut: int):
    out = tmp_path / "r.csv"
    whole = (
        (",".join(batch_mod.COLUMNS) + "\n").encode()
        + batch_mod._line({"file": "a.dcm", "status": "ok"})
        + batch_mod._line({"file": "b.dcm", "status": "ok"})
    )
    torn = batch_mod._line({"file": "c.dcm", "status": "ok"})[:cut]
    out.write_bytes(whole + torn)
    assert batch_mod._done_files(out) == {"a.dcm", "b.dcm"}
    assert out.read_bytes() == whole


def test_overlays_folder_that_is_a_file_gives_one_line(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.dcm")
    blocker = tmp_path / "ov"
    blocker.write_text("x")
    res = _batch(folder, tmp_path / "r.csv", "--overlays", str(blocker))
    assert res.returncode in (2, 5) and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_out_in_a_missing_folder_is_a_usage_error(tmp_path: Path):
    res = run_cli("edge.cli", "batch", str(tmp_path), "--out", str(tmp_path / "no" / "r.csv"))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_a_decoder_child_dies_with_its_parent(tmp_path: Path):
    """A batch killed during an isolated decode leaves no child behind (PR_SET_PDEATHSIG, and the
    child closes its copy of the pipe's read end)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "import edge.reader.isolation as r\n"
        "def slow(mini, plugin):\n"
        "    time.sleep(60)\n"
        "    return ('error', 'late')\n"
        "r._child_decode = slow\n"
        "from pydicom.dataset import Dataset\n"
        "from pydicom.dataset import FileMetaDataset\n"
        "ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.5'\n"
        "print('ready', flush=True)\n"
        "r._run_forked(ds, 'gdcm')\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    deadline = time.time() + 20
    children: list[int] = []
    while time.time() < deadline and not children:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent.pid:
                children.append(int(stat.parent.name))
        time.sleep(0.1)
    assert children, "the decode child was not started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(
        Path(f"/proc/{c}").exists() and "Z" not in Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0]
        for c in children
        if Path(f"/proc/{c}/stat").exists()
    ):
        time.sleep(0.1)
    alive = [
        c
        for c in children
        if Path(f"/proc/{c}/stat").exists() and Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    ]
    assert not alive, f"decoder child {alive} outlived its killed parent"


def test_every_row_is_synced_before_the_next(tmp_path: Path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(batch_mod.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    path = tmp_path / "x.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for i in range(3):
            batch_mod._append(fd, f"row{i}\n".encode())
            assert len(synced) == i + 1, "a row was appended without fsync"
    finally:
        os.close(fd)
