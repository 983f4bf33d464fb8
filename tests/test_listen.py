"""`sarco-edge listen`: a DICOM node on 127.0.0.1 receives films by C-STORE, screens them and sends
SEG/SR/SC to a storage SCP started here; AE titles are checked; a killed node resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
)

from edge.dicom_sr import sr_values
from tests.helpers import REPO, run_cli

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
AREA = "42798000"
WAIT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A storage SCP standing in for the PACS: keeps every dataset it is sent."""

    def __init__(self, port: int) -> None:
        from pynetdicom.sop_class import Comprehensive3DSRStorage, SecondaryCaptureImageStorage, SegmentationStorage

        self.port, self.got, self.lock = port, [], threading.Lock()
        self.ae = AE(ae_title="PACS")
        for sop in (SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
            self.ae.add_supported_context(sop)

    def _store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self.lock:
            self.got.append(ds)
        return 0x0000

    def __enter__(self) -> Receiver:
        self.server = self.ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()

    def wait_for(self, n: int, timeout: float = WAIT_S) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.2)
        raise AssertionError(f"received {len(self.got)} of {n} datasets in {timeout} s")


def start_node(spool: Path, port: int, dest_port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edge.cli", "listen", "--port", str(port), "--ae-title", "SARCO", "--allow", "MODALITY",
           "--spool", str(spool), "--send-to", f"PACS@127.0.0.1:{dest_port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("node did not start listening")


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)  # Ctrl-C: the node stops cleanly and prints its status
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def send(port: int, path: Path, calling: str = "MODALITY"):
    ae = AE(ae_title=calling)
    for sop in (DigitalXRayImageStorageForPresentation, ComputedRadiographyImageStorage, CTImageStorage):
        ae.add_requested_context(sop, [pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", port, ae_title="SARCO")
    if not assoc.is_established:
        return assoc
    status = assoc.send_c_store(pydicom.dcmread(path))
    assoc.release()
    return status


def by_modality(got: list) -> dict:
    return {ds.Modality: ds for ds in got}


@pytest.fixture(scope="module")
def expected() -> dict:
    res = run_cli("edge.cli", "screen", str(SAMPLE), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_screens_and_sends_back_with_screen_numbers(tmp_path, expected):
    port, dest = free_port(), free_port()
    with Receiver(dest) as pacs:
        node = start_node(tmp_path / "spool", port, dest)
        try:
            status = send(port, SAMPLE)
            assert status.Status == 0x0000
            got = by_modality(pacs.wait_for(3))
            ct = send(port, CT_SMALL)
            assert ct.Status == 0x0000
            extra = pacs.wait_for(4)[3]
        finally:
            log = stop(node)
    src = pydicom.dcmread(SAMPLE, stop_before_pixels=True)
    assert set(got) == {"SEG", "SR", "OT"}
    for ds in got.values():
        assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    v = sr_values(got["SR"])
    assert v[f"film/{AREA}"] == expected["thigh_muscle_area_cm2"]
    assert v[f"right/{AREA}"] == expected["right_cm2"] and v[f"left/{AREA}"] == expected["left_cm2"]
    assert v["film/smi_estimate"] == expected["smi_estimate"] and v["film/p_low"] == expected["p_low"]
    assert v["film/flag"] == expected["flag"]
    assert [s.SegmentLabel for s in got["SEG"].SegmentSequence] == ["thigh muscle, right", "thigh muscle, left"]
    assert extra.Modality == "SR" and sr_values(extra)["film/flag"] == "not_assessable"
    assert "status: received 2, answered 2 (1 not_assessable), sent 4 files" in log, log
    assert str(src.PatientName) not in log and str(src.PatientID) not in log
    assert not [p for d in ("incoming", "outbox") for p in (tmp_path / "spool" / d).iterdir()]
    assert "copy attributes" not in log  # highdicom's chatter stays out


def test_unknown_calling_ae_is_rejected(tmp_path):
    port = free_port()
    node = start_node(tmp_path / "spool", port, free_port())
    try:
        assoc = send(port, SAMPLE, calling="INTRUDER")
        assert assoc.is_rejected
    finally:
        stop(node)
    assert not list((tmp_path / "spool" / "incoming").iterdir())


def test_killed_node_resumes_and_sends_each_once(tmp_path):
    port, dest = free_port(), free_port()
    spool = tmp_path / "spool"
    node = start_node(spool, port, dest)  # the destination is down: results wait in the outbox
    try:
        assert send(port, SAMPLE).Status == 0x0000
        assert list((spool / "incoming").glob("*.dcm")) or list((spool / "outbox").iterdir())  # kept before "stored"
        deadline = time.monotonic() + WAIT_S
        while len(list((spool / "outbox").glob("*/*.dcm"))) < 3:
            assert time.monotonic() < deadline, "not screened in time"
            time.sleep(0.2)
    finally:
        node.kill()  # no clean shutdown
        node.communicate(timeout=30)
    # A film received but never screened (as if killed right after acknowledging it).
    (spool / "incoming" / "waiting.dcm").write_bytes(SAMPLE.read_bytes())
    with Receiver(dest) as pacs:
        node = start_node(spool, port, dest)
        try:
            got = pacs.wait_for(6)
            time.sleep(2.0)  # nothing more arrives: no duplicates
            got = list(pacs.got)
        finally:
            stop(node)
    assert len(got) == 6 and len({ds.SOPInstanceUID for ds in got}) == 6
    assert sorted(ds.Modality for ds in got) == ["OT", "OT", "SEG", "SEG", "SR", "SR"]
    assert not list((spool / "outbox").iterdir()) and not list((spool / "incoming").iterdir())


def test_bad_send_to_is_one_line():
    res = run_cli("edge.cli", "listen", "--port", "11112", "--allow", "X", "--spool", os.devnull, "--send-to", "PACS")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--send-to must be AE@host:port" in res.stderr


def test_unreadable_film_is_answered_not_assessable(tmp_path):
    """A film the reader refuses (a colour image) still gets an SR that says why, and the node goes on."""
    from edge.listen import Destination, Node
    from edge.screen import Options, Screener

    colour = sorted((Path(pydicom.__file__).parent / "data" / "test_files").glob("SC_rgb_dcmtk_*.dcm"))[0]
    node = Node(tmp_path / "spool", "SARCO", ["MODALITY"], Destination.parse("PACS@127.0.0.1:1"), Screener(), Options())
    film = node.spool.store(str(pydicom.dcmread(colour).SOPInstanceUID), colour.read_bytes())
    node._answer(film)
    (sr,) = list((tmp_path / "spool" / "outbox").glob("*/*.dcm"))
    v = sr_values(pydicom.dcmread(sr))
    assert v["film/flag"] == "not_assessable" and any("colour" in r for r in v["report/reason"])
    assert node.stats["answered"] == 1 and not film.exists()
