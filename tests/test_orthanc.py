"""`sarco-edge listen` against a real PACS: Orthanc (Debian package `orthanc`) on 127.0.0.1 with its
own configuration and storage in a temp folder receives the SEG/SR/SC of films that dcmtk's
`storescu` sent to the node. Checked through Orthanc's REST API: every result is filed under the
source film's study and patient, the SR's numbers are `screen --json`'s, and a node killed after
acknowledging films and restarted loses none and stores none twice (instances per SOP class).

Orthanc and dcmtk are system packages (.ci/run installs them); a missing one fails this test with
the command that installs it, never a skip. All traffic is to 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from edge.dicom_sr import sr_values
from tests.helpers import REPO, run_cli

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
AREA = "42798000"
WAIT_S = 120
SEG, SR, SC = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"
INSTALL = "apt-get install -y orthanc dcmtk (.ci/run installs them)"


def tool(name: str) -> str:
    exe = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if exe is None:
        pytest.fail(f"{name} is not installed: this test needs a real PACS and dcmtk; {INSTALL}")
    return exe


def dcmtk_storescu() -> str:
    """dcmtk's storescu (pynetdicom installs a `storescu` of its own, first on a venv's PATH)."""
    import os

    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]
    for d in dirs:
        exe = shutil.which("storescu", path=d)
        if exe is None:
            continue
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        if "dcmtk" in (out.stdout + out.stderr).lower():
            return exe
    pytest.fail(f"dcmtk's storescu is not installed: {INSTALL}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """One Orthanc process with its own config, index and storage under `root`, HTTP and DICOM on free ports."""

    def __init__(self, root: Path, modalities: dict | None = None) -> None:
        self.root, self.http, self.dicom, self.aet = root, free_port(), free_port(), "ORTHANC"
        config = {
            "Name": "sarco-edge-test",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "index"),
            "HttpPort": self.http,
            "DicomPort": self.dicom,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,  # HTTP from localhost only
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": modalities or {},
            "Plugins": [],
            "HttpsCaCertificates": "",
            "ConcurrentJobs": 1,
        }
        self.config = root / "orthanc.json"
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps(config, indent=1))
        self.proc: subprocess.Popen | None = None

    def start(self) -> Orthanc:
        self.log = open(self.root / "orthanc.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([tool("Orthanc"), str(self.config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Orthanc exited at start:\n{self.tail()}"
            try:
                if "Version" in self.get("/system"):
                    return self
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"Orthanc did not answer on 127.0.0.1:{self.http} in 60 s:\n{self.tail()}")

    def tail(self) -> str:
        return (self.root / "orthanc.log").read_text(errors="replace")[-3000:]

    def raw(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=30) as r:
            return r.read()

    def get(self, path: str):
        return json.loads(self.raw(path))

    def post(self, path: str, body: bytes):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.proc is not None:
            self.log.close()


def start_node(spool: Path, port: int, pacs: Orthanc, allow: str = "MODALITY") -> subprocess.Popen:
    """The node as a user starts it; its log is appended to `spool`.log (read by `node_log`)."""
    cmd = [sys.executable, "-m", "edge.cli", "listen", "--port", str(port), "--ae-title", "SARCO",
           "--allow", allow, "--spool", str(spool), "--send-to", f"{pacs.aet}@127.0.0.1:{pacs.dicom}"]  # fmt: skip
    with open(f"{spool}.log", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, node_log(spool)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the node did not start listening in 60 s")


def node_log(spool: Path) -> str:
    path = Path(f"{spool}.log")
    return path.read_text(errors="replace") if path.exists() else ""


def end(proc: subprocess.Popen | None, how: int = signal.SIGINT) -> None:
    """Ctrl-C (a clean stop) or SIGKILL (no goodbye); bounded."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(how)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def storescu(port: int, films: list[Path]) -> None:
    res = subprocess.run([dcmtk_storescu(), "-xv", "-aet", "MODALITY", "-aec", "SARCO", "127.0.0.1", str(port),
                          *map(str, films)], capture_output=True, text=True, timeout=WAIT_S)  # fmt: skip
    assert res.returncode == 0, f"storescu failed: {res.stdout}{res.stderr}"


def instances(pacs: Orthanc) -> list[tuple[dict, pydicom.Dataset]]:
    """(the Orthanc study the instance is filed under, the instance as stored) for every instance."""
    out = []
    for oid in pacs.get("/instances"):
        ds = pydicom.dcmread(io.BytesIO(pacs.raw(f"/instances/{oid}/file")))
        out.append((pacs.get(f"/instances/{oid}/study"), ds))
    return out


def wait_count(pacs: Orthanc, n: int, spool: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if int(pacs.get("/statistics")["CountInstances"]) >= n:
            return
        time.sleep(0.5)
    held = pacs.get("/statistics")["CountInstances"]
    raise AssertionError(f"Orthanc holds {held} of {n} instances after {WAIT_S} s; node log:\n{node_log(spool)}")


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> list[Path]:
    """The sample film and three phantom films (copies: the inputs stay untouched)."""
    root = tmp_path_factory.mktemp("films")
    res = run_cli("train.cli", "phantom", str(root / "ph"), "--n", "3", "--seed", "5", "--no-preview")
    assert res.returncode == 0, res.stderr
    paths = [root / "sample.dcm"] + sorted((root / "ph" / "images").glob("*.dcm"))
    shutil.copyfile(SAMPLE, paths[0])
    assert len(paths) == 4
    return paths


def expected_of(film: Path) -> dict:
    res = run_cli("edge.cli", "screen", str(film), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_results_filed_in_orthanc_across_a_kill(tmp_path, films):
    tool("Orthanc"), dcmtk_storescu()
    expected = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: expected_of(f) for f in films}
    per_film = {uid: 1 if e["flag"] == "not_assessable" else 3 for uid, e in expected.items()}
    spool, pacs, port, node = tmp_path / "spool", Orthanc(tmp_path / "orthanc"), free_port(), None
    try:
        pacs.start()
        node = start_node(spool, port, pacs)
        storescu(port, films[:2])
        wait_count(pacs, sum(per_film[u] for u in list(per_film)[:2]), spool)
        storescu(port, films[2:])  # acknowledged = kept in the spool; then the node dies unannounced
        end(node, signal.SIGKILL)
        left = list((spool / "incoming").glob("*.dcm")) + list((spool / "outbox").glob("*/*.dcm"))
        assert left, "the node had finished before it was killed: the restart would prove nothing"
        node = start_node(spool, port, pacs)
        wait_count(pacs, sum(per_film.values()), spool)
        time.sleep(3.0)  # anything sent twice would arrive now
        got = instances(pacs)
    finally:
        end(node)
        pacs.stop()
    check_filed(got, films, expected, per_film)
    log = node_log(spool)
    assert "status: received" in log and not list((spool / "incoming").glob("*.dcm")), log
    src = pydicom.dcmread(films[0], stop_before_pixels=True)
    assert str(src.PatientName) not in log and str(src.PatientID) not in log


def check_filed(got: list, films: list[Path], expected: dict, per_film: dict) -> None:
    """Every result once, under its source's study and patient (in Orthanc), with screen's numbers."""
    assert len({ds.SOPInstanceUID for _, ds in got}) == len(got) == sum(per_film.values())
    counts = Counter(str(ds.SOPClassUID) for _, ds in got)
    assessable = sum(1 for n in per_film.values() if n == 3)
    assert counts == Counter({SR: len(per_film), SEG: assessable, SC: assessable}), counts
    sources = {}
    for f in films:
        s = pydicom.dcmread(f, stop_before_pixels=True)
        sources[s.SOPInstanceUID] = s
    by_study = {s.StudyInstanceUID: {uid} for uid, s in sources.items()}
    assert len(by_study) == len(sources)  # one film per study here, so the study names the film
    seen = Counter()
    for study, ds in got:
        (uid,) = referenced(ds) & sources.keys() or by_study[ds.StudyInstanceUID]  # the SC references none
        src = sources[uid]
        seen[uid] += 1
        assert study["MainDicomTags"]["StudyInstanceUID"] == src.StudyInstanceUID == ds.StudyInstanceUID
        assert study["PatientMainDicomTags"]["PatientID"] == src.PatientID == ds.PatientID
        if ds.SOPClassUID == SR:
            check_numbers(sr_values(ds), expected[uid])
    assert seen == Counter(per_film)


def referenced(ds: pydicom.Dataset) -> set[str]:
    """Every SOP Instance UID the dataset references (any sequence, any depth)."""
    out = set()
    for elem in ds.iterall():
        if elem.keyword == "ReferencedSOPInstanceUID":
            out.add(str(elem.value))
    return out


def check_numbers(v: dict, e: dict) -> None:
    assert v["film/flag"] == e["flag"]
    if e["flag"] == "not_assessable":
        return
    assert v[f"film/{AREA}"] == e["thigh_muscle_area_cm2"]
    assert v["film/smi_estimate"] == e["smi_estimate"] and v.get("film/p_low") == e["p_low"]
    if e.get("right_cm2") is not None:
        assert v[f"right/{AREA}"] == e["right_cm2"] and v[f"left/{AREA}"] == e["left_cm2"]


def test_orthanc_sends_a_film_and_files_the_results(tmp_path):
    """The README's set-up: the node is one of Orthanc's DicomModalities, Orthanc sends it a film by
    REST (/modalities/NAME/store), the results land in the film's study next to it."""
    tool("Orthanc")
    port = free_port()
    spool, pacs, node = tmp_path / "spool", Orthanc(tmp_path / "orthanc", {"sarco": ["SARCO", "127.0.0.1", port]}), None
    try:
        pacs.start()
        node = start_node(spool, port, pacs, allow=pacs.aet)
        film = pacs.post("/instances", SAMPLE.read_bytes())
        job = pacs.post("/modalities/sarco/store", film["ID"].encode())
        assert job["FailedInstancesCount"] == 0 and job["InstancesCount"] == 1, job
        wait_count(pacs, 4, spool)
        series = pacs.get(f"/studies/{film['ParentStudy']}/series")
    finally:
        end(node)
        pacs.stop()
    assert sorted(s["MainDicomTags"]["Modality"] for s in series) == ["DX", "OT", "SEG", "SR"]
