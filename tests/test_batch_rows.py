"""edge.batch's bookkeeping with known answers, in this process and without a model: what is
found under a folder, the CSV's rows and cells, the torn-line cut on resume, whole-row appends
with fsync, the counts, and a batch driven by a stand-in engine."""

from __future__ import annotations

import csv
import errno
import io
import os
from pathlib import Path

import pytest

from edge import batch as bm
from edge.batch import COLUMNS, BatchError, Entry
from edge.reader import ReadError
from edge.report import Report

HEADER = (",".join(COLUMNS) + "\n").encode()


def report(flag: str = "normal", **kw) -> Report:
    d = dict(
        thigh_muscle_area_cm2=250.5,
        thigh_muscle_area_px=1000,
        left_cm2=125.0,
        right_cm2=125.5,
        sides_seen=2,
        criteria="ewgsop2",
        cutoff=7.0,
        flag=flag,
        flag_meaning="",
        reasons=[],
        sex="F",
        sex_source="header",
        height_m=1.6,
        height_source="header",
        pixel_spacing_mm=[0.5, 0.5],
        pixel_spacing_source="header",
        quality={"segmentation_confidence": 0.9},
        model={"name": "m", "version": "1", "precision": "INT8"},
        note="",
    )
    d.update(kw)
    return Report(**d)


def rows_of(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# --- names -----------------------------------------------------------------------------------


def test_display_name_and_overlay_name():
    assert bm.display_name("a/b.dcm") == "a/b.dcm"
    assert bm.display_name(os.fsdecode(b"bad\xffname")) == "bad\\xffname"
    import hashlib

    def h(s: str) -> str:
        return hashlib.sha256(os.fsencode(s)).hexdigest()[:12]

    assert bm.overlay_name("sub/a b.dcm") == f"sub__a_b.dcm-{h('sub/a b.dcm')}.png"
    assert bm.overlay_name("..") == f"film-{h('..')}.png"
    assert bm.overlay_name("._x_.") == f"x-{h('._x_.')}.png"
    long = "x" * 200
    assert bm.overlay_name(long) == f"{'x' * 120}-{h(long)}.png"
    assert bm.overlay_name("x y") != bm.overlay_name("x_y")
    assert bm.overlay_name("Sub/XRAY.X") == f"Sub__XRAY.X-{h('Sub/XRAY.X')}.png"


def test_default_workers(monkeypatch):
    for cores, workers in ((None, 1), (1, 1), (2, 2), (4, 4), (16, 4)):
        monkeypatch.setattr(bm.os, "cpu_count", lambda c=cores: c)
        assert bm.default_workers() == workers


def test_find_images_says_what_happens_to_each_entry(tmp_path):
    f = tmp_path / "in"
    (f / "sub").mkdir(parents=True)
    (f / ".hid").mkdir()
    (f / ".hid" / "x.dcm").write_bytes(b"x")
    (f / "b.dcm").write_bytes(b"x")
    (f / "sub" / "a.png").write_bytes(b"x")
    (f / ".hidden.dcm").write_bytes(b"x")
    (f / "dead").symlink_to(f / "nowhere")
    (f / "link.dcm").symlink_to(f / "b.dcm")
    os.mkfifo(f / "fifo")
    (f / "a_out.csv").write_bytes(b"x")  # excluded, and sorted before the other names
    (f / "ov").mkdir()
    (f / "ov" / "o.png").write_bytes(b"x")
    found = bm.find_images(f, (f / "a_out.csv", f / "ov"))
    got = [(e.rel, e.skip) for e in found]
    assert got == [
        (".hid", "hidden folder"),
        (".hidden.dcm", "hidden file"),
        ("b.dcm", None),
        ("dead", "link that leads nowhere"),
        ("fifo", "not a regular file"),
        ("link.dcm", None),
        ("sub/a.png", None),
    ]
    assert [e.path for e in found] == [f / e.rel for e in found]
    assert [e.rel for e in bm.find_images(f) if not e.skip] == [
        "a_out.csv",
        "b.dcm",
        "link.dcm",
        "ov/o.png",
        "sub/a.png",
    ]


def test_find_images_reports_an_unreadable_folder(tmp_path, monkeypatch):
    f = tmp_path / "in"
    (f / "locked").mkdir(parents=True)
    real_walk = os.walk

    def walk(top, onerror=None):
        onerror(PermissionError(13, "denied", str(f / "locked")))
        onerror(PermissionError(13, "denied", str(f)))  # the top itself: not a row
        onerror(PermissionError(13, "denied", None))
        yield from real_walk(top, onerror=onerror)

    monkeypatch.setattr(bm.os, "walk", walk)
    found = bm.find_images(f)
    assert [(e.path, e.rel, e.skip) for e in found] == [(f / "locked", "locked", "folder cannot be read")]


# --- the CSV -------------------------------------------------------------------------------


def test_cells_that_a_spreadsheet_would_run_get_an_apostrophe():
    for s in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert bm._cell(s) == "'" + s
    assert bm._cell("a=1") == "a=1" and bm._cell(-1) == -1 and bm._cell(None) is None


def test_line_is_one_csv_row_in_column_order():
    line = bm._line({"file": "=a,b.dcm", "status": "ok", "flag": "normal", "sides_seen": 2, "extra": "dropped"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line
    cells = next(csv.reader(io.StringIO(line.decode())))
    assert len(cells) == len(COLUMNS)
    row = dict(zip(COLUMNS, cells))
    assert row["file"] == "'=a,b.dcm" and row["status"] == "ok" and row["flag"] == "normal"
    assert row["sides_seen"] == "2" and row["error"] == "" and row["model_version"] == ""
    assert bm._line({"file": "é"}).startswith("é,".encode())


def test_done_files(tmp_path):
    out = tmp_path / "r.csv"
    assert bm._done_files(out) == set()
    out.write_bytes(b"")
    assert bm._done_files(out) == set()
    whole = HEADER + bm._line({"file": "a.dcm"}) + bm._line({"file": "'=b.dcm"})
    out.write_bytes(whole)
    assert bm._done_files(out) == {"a.dcm", "'=b.dcm"}
    assert out.read_bytes() == whole
    out.write_bytes(whole + b"c.dcm,ok,,,norm")  # killed mid-row: the half row goes
    assert bm._done_files(out) == {"a.dcm", "'=b.dcm"}
    assert out.read_bytes() == whole
    out.write_bytes(HEADER[:-1])  # torn header: nothing left
    with pytest.raises(BatchError):  # a header cut short is not ours either
        bm._done_files(out)


def test_done_files_cuts_a_torn_line_whatever_its_bytes(tmp_path):
    out = tmp_path / "r.csv"
    whole = HEADER + bm._line({"file": "a.dcm", "model_version": "vXX"})
    out.write_bytes(whole + b"XX")  # the start of a row for "XXray.dcm", after a row ending in XX
    assert bm._done_files(out) == {"a.dcm"}
    assert out.read_bytes() == whole


def test_done_files_refuses_a_csv_that_is_not_ours(tmp_path):
    out = tmp_path / "other.csv"
    out.write_bytes(b"name,value\nx,1\n")
    with pytest.raises(BatchError, match="^other.csv is not a sarco-edge batch CSV of this version: choose another"):
        bm._done_files(out)
    assert out.read_bytes() == b"name,value\nx,1\n"


def test_done_files_reads_undecodable_bytes(tmp_path):
    out = tmp_path / "r.csv"
    out.write_bytes(HEADER + b"a\xff.dcm,ok\n")
    assert bm._done_files(out) == {"a\ufffd.dcm"}


def test_append_writes_everything_and_syncs(tmp_path, monkeypatch):
    real_write, synced, sizes = os.write, [], []
    monkeypatch.setattr(bm.os, "fsync", lambda fd: synced.append(os.fstat(fd).st_size))

    def short(fd, data):
        sizes.append(len(data))
        return real_write(fd, bytes(data[:4]))

    monkeypatch.setattr(bm.os, "write", short)
    path = tmp_path / "x"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        bm._append(fd, b"0123456789")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"0123456789" and sizes == [10, 6, 2] and synced == [10]
    monkeypatch.setattr(bm.os, "write", lambda fd, data: real_write(fd, bytes(data[:1])))  # one byte at a time
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        bm._append(fd, b"abc")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"0123456789abc"


def test_append_raises_on_a_write_that_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(bm.os, "write", lambda fd, data: 0)
    monkeypatch.setattr(bm.os, "fsync", lambda fd: pytest.fail("synced after a failed write"))
    with pytest.raises(OSError) as e:
        bm._append(0, b"x")
    assert e.value.errno == errno.ENOSPC and str(e.value) == "[Errno 28] no bytes written"


# --- rows and counts -------------------------------------------------------------------------


def test_row_for_each_kind_of_outcome():
    e = Entry(Path("/x/a.dcm"), "a.dcm")
    assert bm.row_for(Entry(Path("/x/.h"), ".h", "hidden file"), report()) == {
        "file": ".h",
        "status": "skipped",
        "error_kind": "skipped",
        "error": "hidden file",
    }
    assert bm.row_for(e, ReadError("truncated", "file ends early")) == {
        "file": "a.dcm",
        "status": "error",
        "error_kind": "truncated",
        "error": "file ends early",
    }
    assert bm.row_for(e, RuntimeError("screening failed (ValueError)")) == {
        "file": "a.dcm",
        "status": "error",
        "error_kind": "screen_failed",
        "error": "screening failed (ValueError)",
    }
    assert bm.row_for(e, None)["error"] == "no result"
    rep = report("borderline")
    assert bm.row_for(e, rep) == {"file": "a.dcm", "status": "ok", **rep.csv_cells()}

    class Result:
        report = rep

    assert bm.row_for(e, Result()) == bm.row_for(e, rep)


def test_counts():
    c = bm._new_counts(7, 2)
    assert c == {
        "files": 7,
        "skipped_done": 2,
        "screened": 0,
        "low_muscle_mass": 0,
        "borderline": 0,
        "normal": 0,
        "not_assessable": 0,
        "errors": 0,
        "skipped": 0,
    }
    for row in (
        {"status": "ok", "flag": "normal"},
        {"status": "ok", "flag": "low_muscle_mass"},
        {"status": "ok", "flag": "low_muscle_mass"},
        {"status": "error"},
        {"status": "skipped"},
        {"status": "skipped"},
    ):
        bm._count(c, row)
    assert (c["screened"], c["normal"], c["low_muscle_mass"], c["errors"], c["skipped"]) == (3, 1, 2, 1, 2)


# --- a batch with a stand-in engine ---------------------------------------------------------


def folder_with(tmp_path: Path, *names: str) -> Path:
    f = tmp_path / "in"
    f.mkdir()
    for n in names:
        (f / n).write_bytes(b"x")
    return f


def engine(outcomes: dict, seen: list | None = None):
    def run(todo):
        if seen is not None:
            seen.append([e.rel for e in todo])
        for e in todo:
            yield e, outcomes.get(e.rel)

    return run


def test_a_batch_writes_one_row_per_entry_and_counts(tmp_path):
    f = folder_with(tmp_path, "a.dcm", "b.dcm", "c.dcm", ".h")
    out = tmp_path / "out.csv"
    progress = []
    counts = bm.run_batch(
        f,
        out,
        None,
        None,
        progress=lambda i, n: progress.append((i, n)),
        outcomes=engine({"a.dcm": report("low_muscle_mass"), "b.dcm": ReadError("empty", "empty file")}),
    )
    data = out.read_bytes()
    assert data.startswith(HEADER)
    rows = rows_of(data)
    assert [(r["file"], r["status"], r["error_kind"], r["flag"]) for r in rows] == [
        (".h", "skipped", "skipped", ""),
        ("a.dcm", "ok", "", "low_muscle_mass"),
        ("b.dcm", "error", "empty", ""),
        ("c.dcm", "error", "screen_failed", ""),
    ]
    assert counts == {**bm._new_counts(4, 0), "screened": 1, "low_muscle_mass": 1, "errors": 2, "skipped": 1}
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    bm._lock(out).release()  # the batch released its lock


def test_an_existing_csv_needs_resume_and_resume_skips_what_is_done(tmp_path):
    f = folder_with(tmp_path, "a.dcm", "b.dcm", "=c.dcm")
    out = tmp_path / "out.csv"
    out.write_bytes(HEADER + bm._line({"file": "a.dcm", "status": "ok", "flag": "normal"}) + b"b.dcm,o")
    with pytest.raises(BatchError, match="^out.csv exists; pass --resume"):
        bm.run_batch(f, out, None, None, outcomes=engine({}))
    seen: list = []
    counts = bm.run_batch(f, out, None, None, resume=True, outcomes=engine({"b.dcm": report()}, seen))
    assert seen == [["=c.dcm", "b.dcm"]]
    assert [r["file"] for r in rows_of(out.read_bytes())] == ["a.dcm", "'=c.dcm", "b.dcm"]
    assert counts["files"] == 3 and counts["skipped_done"] == 1 and counts["normal"] == 1
    seen.clear()
    counts = bm.run_batch(f, out, None, None, resume=True, outcomes=engine({}, seen))  # '=c.dcm is done too
    assert seen == [[]] and counts["skipped_done"] == 3
    assert out.read_bytes().count(HEADER) == 1


def test_a_new_csv_is_created_rw_r__r__(tmp_path):
    old = os.umask(0)
    try:
        bm.run_batch(folder_with(tmp_path, "a.dcm"), tmp_path / "out.csv", None, None, outcomes=engine({}))
    finally:
        os.umask(old)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644


def test_resume_of_an_empty_csv_writes_the_header(tmp_path):
    f = folder_with(tmp_path, "a.dcm")
    out = tmp_path / "out.csv"
    out.write_bytes(b"")
    bm.run_batch(f, out, None, None, resume=True, outcomes=engine({}))
    assert out.read_bytes().startswith(HEADER) and len(rows_of(out.read_bytes())) == 1


def test_a_film_run_twice_gets_one_row(tmp_path):
    f = folder_with(tmp_path, "a.dcm", "b.dcm")
    out = tmp_path / "out.csv"

    def twice(todo):
        for e in todo:
            yield e, report()
            yield e, report("low_muscle_mass")

    counts = bm.run_batch(f, out, None, None, outcomes=twice)
    assert [(r["file"], r["flag"]) for r in rows_of(out.read_bytes())] == [("a.dcm", "normal"), ("b.dcm", "normal")]
    assert counts["screened"] == 2


def test_overlays_only_for_screened_films_with_a_mask(tmp_path, monkeypatch):
    f = folder_with(tmp_path, "a.dcm", "b.dcm", "c.dcm")
    out, ov = tmp_path / "out.csv", tmp_path / "ov" / "deep"
    written = []
    monkeypatch.setattr(bm, "write_overlay", lambda path, film, mask, rep: written.append((path, film, mask, rep)))

    class Result:
        def __init__(self, mask):
            self.report, self.film, self.mask = report(), "film", mask

    res = {"a.dcm": Result("mask"), "b.dcm": Result(None), "c.dcm": ReadError("empty", "x"), "d.dcm": report()}
    (f / "d.dcm").write_bytes(b"x")  # a bare Report: no mask attribute at all
    ov.mkdir(parents=True)  # an existing overlays folder is used as it is
    bm.run_batch(f, out, None, None, overlays=ov, outcomes=engine(res))
    assert ov.is_dir()
    assert written == [(ov / bm.overlay_name("a.dcm"), "film", "mask", res["a.dcm"].report)]


def test_a_new_overlays_folder_is_made_with_its_parents(tmp_path):
    f = folder_with(tmp_path, "a.dcm")
    bm.run_batch(f, tmp_path / "out.csv", None, None, overlays=tmp_path / "x" / "y" / "ov", outcomes=engine({}))
    assert (tmp_path / "x" / "y" / "ov").is_dir()


def test_the_csv_and_the_overlays_inside_the_folder_get_no_row(tmp_path):
    f = folder_with(tmp_path, "a.dcm")
    bm.run_batch(f, f / "out.csv", None, None, overlays=f / "ov", outcomes=engine({}))
    assert [r["file"] for r in rows_of((f / "out.csv").read_bytes())] == ["a.dcm"]


def test_a_second_batch_on_the_same_csv_is_refused_at_once(tmp_path):
    import time

    out = tmp_path / "out.csv"
    lock = bm._lock(out)
    assert (tmp_path / "out.csv.lock").exists()
    try:
        t0 = time.monotonic()
        with pytest.raises(BatchError, match="^another batch is writing out.csv"):
            bm.run_batch(folder_with(tmp_path, "a.dcm"), out, None, None, outcomes=engine({}))
        assert time.monotonic() - t0 < 0.5  # no waiting for the other batch
    finally:
        lock.release()
    assert not out.exists()


def test_the_lock_is_released_when_the_batch_fails(tmp_path):
    f = folder_with(tmp_path, "a.dcm")

    def broken(todo):
        raise OSError(errno.ENOSPC, "full")
        yield

    with pytest.raises(OSError):
        bm.run_batch(f, tmp_path / "out.csv", None, None, outcomes=broken)
    bm._lock(tmp_path / "out.csv").release()  # free again


# --- the single-process path with stand-ins for the reader and the model --------------------


class Screener:
    def __init__(self):
        self.seen = []

    def screen(self, film, opts):
        assert isinstance(opts, Opts)
        self.seen.append(film)
        if film == "bad":
            raise ValueError("boom")
        return report()


class Opts:
    spacing_mm = (0.5, 0.5)


def test_serial_outcomes_in_order_with_errors_in_their_rows(tmp_path, monkeypatch):
    calls = []

    def read_film(path, spacing_mm=None):
        calls.append((path.name, spacing_mm))
        if path.name.startswith("r"):
            raise ReadError("empty", "empty file")
        return "bad" if path.name.startswith("b") else path.name

    monkeypatch.setattr(bm, "read_film", read_film)
    todo = [
        Entry(tmp_path / "a1", "a1"),
        Entry(tmp_path / ".h", ".h", "hidden file"),
        Entry(tmp_path / "r1", "r1"),
        Entry(tmp_path / "b1", "b1"),
        Entry(tmp_path / "a2", "a2"),
    ]
    s = Screener()
    got = list(bm._serial_outcomes(s, Opts(), todo))
    assert [e.rel for e, _ in got] == ["a1", ".h", "r1", "b1", "a2"]
    assert isinstance(got[0][1], Report) and got[1][1] is None
    assert isinstance(got[2][1], ReadError) and got[2][1].kind == "empty"
    assert isinstance(got[3][1], RuntimeError) and str(got[3][1]) == "screening failed (ValueError)"
    assert isinstance(got[4][1], Report)
    assert sorted(calls) == [(n, (0.5, 0.5)) for n in ("a1", "a2", "b1", "r1")]
    assert s.seen == ["a1", "bad", "a2"]
    one = list(bm._local_outcomes(s, Opts(), 0)(todo[:2]))  # workers 0: this path
    assert [(e.rel, type(o)) for e, o in one] == [("a1", Report), (".h", type(None))]


def test_run_batch_without_an_engine_reads_in_this_process(tmp_path, monkeypatch):
    import edge.pipeline

    monkeypatch.setattr(edge.pipeline, "screen_stream", lambda *a: pytest.fail("worker processes by default"))
    monkeypatch.setattr(bm, "read_film", lambda path, spacing_mm=None: path.name)
    f = folder_with(tmp_path, "a.dcm", "b.dcm")
    counts = bm.run_batch(f, tmp_path / "out.csv", Opts(), Screener())
    assert counts["normal"] == 2
    assert [r["flag"] for r in rows_of((tmp_path / "out.csv").read_bytes())] == ["normal", "normal"]


def test_local_outcomes_with_workers_uses_the_pipeline(monkeypatch):
    import edge.pipeline

    monkeypatch.setattr(edge.pipeline, "screen_stream", lambda s, o, todo, w: ("stream", s, o, todo, w))
    assert bm._local_outcomes("S", "O", 3)(["t"]) == ("stream", "S", "O", ["t"], 3)
    assert bm._local_outcomes("S", "O", 1)(["t"]) == ("stream", "S", "O", ["t"], 1)
