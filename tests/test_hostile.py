"""Hostile inputs: every one ends as a ReadError of the expected kind with one clean line."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from edge.reader import KINDS, ReadError, read_film
from tests.hostile import PATIENT_ID, PATIENT_NAME, grey_film, make_hostile_corpus, write_dicom

REQUIRED = {
    "zero_bytes.dcm": "empty",
    "random_bytes.bin": "not_an_image",
    "dicm_then_random.dcm": "bad_header",
    "truncated_pixels.dcm": "truncated",
    "absurd_size.dcm": "too_large",
    "no_pixel_data.dcm": "no_pixel_data",
    "notes.txt": "not_an_image",
    "truncated.png": "truncated",
    "colour_photo.png": "colour",
    "bomb.png": "too_large",
    "two_frames.dcm": "multi_frame",
    "rgb_colour.dcm": "colour",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    directory = tmp_path_factory.mktemp("hostile")
    expected = make_hostile_corpus(directory)
    return directory, expected


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_clean_line(err: ReadError) -> None:
    msg = str(err)
    assert err.kind in KINDS
    assert msg.strip(), "empty message"
    assert "\n" not in msg and "\r" not in msg
    assert "Traceback" not in msg
    assert PATIENT_NAME not in msg and PATIENT_ID not in msg
    assert len(msg) < 300


def test_corpus_covers_the_required_cases(corpus: tuple[Path, dict[str, str]]) -> None:
    directory, expected = corpus
    for name, kind in REQUIRED.items():
        assert expected.get(name) == kind, name
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)


def test_each_hostile_file_gives_its_read_error(corpus: tuple[Path, dict[str, str]]) -> None:
    directory, expected = corpus
    wrong = {}
    for name, kind in sorted(expected.items()):
        path = directory / name
        before = _sha(path)
        start = time.perf_counter()
        with pytest.raises(ReadError) as info:
            read_film(path, spacing_mm=0.2)
        elapsed = time.perf_counter() - start
        assert_one_clean_line(info.value)
        if info.value.kind != kind:
            wrong[name] = f"{info.value.kind}: {info.value}"
        assert elapsed < 2.0, f"{name} took {elapsed:.1f} s"  # refused from the header, not decoded
        assert _sha(path) == before, f"{name} was modified"
    assert not wrong, wrong


def test_hostile_files_read_only(corpus: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """Read-only copies behave the same (the reader never opens for writing)."""
    directory, expected = corpus
    for name, kind in expected.items():
        copy = tmp_path / name
        copy.write_bytes((directory / name).read_bytes())
        copy.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        with pytest.raises(ReadError) as info:
            read_film(copy)
        assert info.value.kind == kind, name
        assert not os.access(copy, os.W_OK) or os.geteuid() == 0


def test_readonly_valid_film_reads_and_is_unchanged(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "ok.dcm", grey_film(), BitsStored=12, PixelSpacing=[0.2, 0.2])
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before, mtime = _sha(path), path.stat().st_mtime_ns
    film = read_film(path)
    assert film.pixels.shape == (64, 48)
    assert _sha(path) == before and path.stat().st_mtime_ns == mtime


def test_absurd_declared_size_refused_before_decoding(corpus: tuple[Path, dict[str, str]]) -> None:
    directory, _ = corpus
    start = time.perf_counter()
    with pytest.raises(ReadError) as info:
        read_film(directory / "absurd_size.dcm")
    assert info.value.kind == "too_large"
    assert "60000 x 60000" in str(info.value)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=lambda s: s.keyword)
def test_compressed_dicom_cut_in_half_is_truncated(tmp_path: Path, syntax) -> None:
    src = write_dicom(tmp_path / "native.dcm", grey_film(128, 96), BitsStored=12)
    ds = pydicom.dcmread(src)
    ds.compress(syntax)
    whole = tmp_path / "whole.dcm"
    ds.save_as(whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - (len(data) - 1200) // 2])  # keep the header, lose pixel data
    with pytest.raises(ReadError) as info:
        read_film(cut)
    assert info.value.kind == "truncated"
    assert_one_clean_line(info.value)


@pytest.mark.parametrize("n", range(12))
def test_random_garbage_never_escapes(tmp_path: Path, n: int) -> None:
    """Random bytes behind each magic number: only ReadError may come out."""
    rng = np.random.default_rng(1000 + n)
    magics = [
        b"",
        bytes(128) + b"DICM",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"II*\x00",
        b"MM\x00*",
        b"\x08\x00\x05\x00CS",
        b"\x02\x00\x00\x00UL",
    ]
    magic = magics[n % len(magics)]
    path = tmp_path / f"garbage{n}"
    path.write_bytes(magic + rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
    with pytest.raises(ReadError) as info:
        read_film(path)
    assert_one_clean_line(info.value)


def test_corrupted_header_bytes_never_escape(tmp_path: Path) -> None:
    """Flip bytes across a valid DICOM header: each variant reads or fails with ReadError."""
    path = write_dicom(tmp_path / "ok.dcm", grey_film(32, 32), BitsStored=12, PixelSpacing=[0.2, 0.2])
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(5)
    header_end = len(data) - 32 * 32 * 2
    for i in range(40):
        mutated = bytearray(data)
        for pos in rng.integers(132, header_end, 3):
            mutated[int(pos)] = int(rng.integers(0, 256))
        target = tmp_path / f"m{i}.dcm"
        target.write_bytes(bytes(mutated))
        try:
            film = read_film(target)
        except ReadError as err:
            assert_one_clean_line(err)
        else:
            assert film.pixels.ndim == 2 and film.pixels.dtype == np.float32


def test_the_reader_opens_files_for_reading_only(tmp_path: Path, monkeypatch):
    """Checked on the open calls themselves, so it holds when the tests run as root (where a
    read-only file can still be opened for writing)."""
    import builtins
    import io

    modes: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *a, **k):
        modes.append(mode)
        return real_open(file, mode, *a, **k)

    def spy_os_open(path, flags, *a, **k):
        modes.append("w" if flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC) else "r")
        return real_os_open(path, flags, *a, **k)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    for p in (write_dicom(tmp_path / "ok.dcm", grey_film(), BitsStored=12, PixelSpacing=[0.2, 0.2]),):
        read_film(p)
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), (grey_film() >> 4).astype(np.uint8))
    modes.clear()
    read_film(tmp_path / "x.png", spacing_mm=0.5)
    read_film(tmp_path / "ok.dcm")
    assert modes and not [m for m in modes if any(c in m for c in "wa+")], modes


def _read_as_ordinary_user(paths: list[Path]) -> list[str]:
    """Each path's outcome, read in a forked child that dropped root for `nobody` first, if root (the
    interpreter itself may live where `nobody` cannot go, so no fresh process is started)."""
    import json

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(r)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            out = []
            for p in paths:
                try:
                    open(p, "r+b").close()
                    out.append("writable")
                except PermissionError:
                    f = read_film(p, spacing_mm=0.5)
                    out.append(f"uid {os.geteuid()} {f.pixels.shape}")
            os.write(w, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, "the child failed"
    return json.loads(data)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only (fork, setuid)")
def test_read_only_films_read_as_a_non_root_user(tmp_path: Path):
    """As an ordinary user (`nobody` when the suite runs as root, as CI does): a read-only DICOM
    and a read-only PNG read, a write-open of them is refused (so a reader that opened files for
    writing would fail here), and neither file changes."""
    import cv2

    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:  # pytest's base folders are private to root
        if parent == Path("/tmp") or parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o055)
    dcm = write_dicom(tmp_path / "ok.dcm", grey_film(), BitsStored=12, PixelSpacing=[0.2, 0.2])
    png = tmp_path / "ok.png"
    cv2.imwrite(str(png), (grey_film() >> 4).astype(np.uint8))
    for p in (dcm, png):
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = {p: _sha(p) for p in (dcm, png)}
    assert _read_as_ordinary_user([dcm, png]) == [f"uid {uid} (64, 48)"] * 2
    assert {p: _sha(p) for p in (dcm, png)} == before
