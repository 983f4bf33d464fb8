"""`batch --dicom-out`'s writer (edge.dicom_batch): a thread by default, a process pool on request;
films come out in input order, each once its folder is written; a full disk stops the batch; a
writer process that dies does not."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edge.dicom_batch import DicomTee
from tests.helpers import REPO

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"


@dataclass
class Entry:
    rel: str
    path: Path


@dataclass
class Film:
    source_format: str


@dataclass
class Outcome:
    film: Film
    mask: np.ndarray | None
    report: object = None


class DiesInWriter:
    """An outcome that kills the writer process that unpickles it (the batch process is spared)."""

    mask = np.zeros(1)

    @property
    def film(self) -> Film:
        if multiprocessing.parent_process() is not None:
            os._exit(9)
        return Film("png")


def stream(outcomes: list):
    entries = [Entry(f"f{i}.dcm", SAMPLE) for i in range(len(outcomes))]
    return entries, (lambda todo: iter(zip(todo, outcomes)))


def test_order_kept_and_counted(tmp_path):
    outcomes = [Outcome(Film("png"), np.zeros(1)), None, Outcome(Film("jpeg"), np.zeros(1)), ValueError("unread")]
    outcomes += [Outcome(Film("png"), None)] + [Outcome(Film("tiff"), np.zeros(1)) for _ in range(6)]
    entries, inner = stream(outcomes)
    tee = DicomTee(tmp_path / "d", inner, processes=1)
    got = list(tee(entries))
    assert [e.rel for e, _ in got] == [e.rel for e in entries] and [o for _, o in got] == outcomes
    assert tee.counts == {"dicom_folders": 0, "dicom_not_dicom": 8, "dicom_failed": 0}


def test_dead_writer_does_not_stop_the_batch(tmp_path):
    outcomes = [Outcome(Film("png"), np.zeros(1)), DiesInWriter(), Outcome(Film("png"), np.zeros(1))]
    entries, inner = stream(outcomes)
    tee = DicomTee(tmp_path / "d", inner, processes=1)
    assert [e.rel for e, _ in tee(entries)] == ["f0.dcm", "f1.dcm", "f2.dcm"]
    assert tee.counts["dicom_not_dicom"] == 3 and tee.pool is None


def test_unwritable_output_stops_the_batch(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    entries, inner = stream([Outcome(Film("dicom"), np.zeros(1))])
    tee = DicomTee(tmp_path / "file" / "d", inner, processes=1)
    with pytest.raises(OSError):
        list(tee(entries))


class SeenBy:
    """An outcome that notes which process and thread ask for its film (the writer does)."""

    mask = np.zeros(1)

    def __init__(self) -> None:
        self.seen: list[tuple[bool, str]] = []

    @property
    def film(self) -> Film:
        import threading

        self.seen.append((multiprocessing.parent_process() is None, threading.current_thread().name))
        return Film("png")


def test_default_writer_is_a_thread_of_the_batch_process(tmp_path):
    """No process to start and no film to pickle: one thread of this process writes the folders."""
    outcomes = [SeenBy() for _ in range(3)]
    entries, inner = stream(outcomes)
    tee = DicomTee(tmp_path / "d", inner)
    assert [o for _, o in tee(entries)] == outcomes and tee.counts["dicom_not_dicom"] == 3
    assert all(o.seen for o in outcomes)  # asked here (a process would have asked a pickled copy)
    assert all(main and name.startswith("dicom-out") for o in outcomes for main, name in o.seen)
