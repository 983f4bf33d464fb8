"""`sarco-edge listen` options: `--not-long-leg skip` and DICOM over TLS (a self-signed certificate
made here with the openssl command; every connection on 127.0.0.1)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation

from edge.listen import Destination, ListenError, Node, Tls
from edge.screen import Options, Screener
from tests.helpers import REPO

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
CT_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
WAIT_S = 60


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener()


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Tls:
    """A self-signed certificate for 127.0.0.1 that is its own CA: the node and the PACS both use it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the test certificate: apt-get install openssl")
    d = tmp_path_factory.mktemp("tls")
    cmd = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
           "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return Tls.of(d / "cert.pem", d / "key.pem", d / "cert.pem")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_not_long_leg_skip_answers_nothing_for_a_ct_but_screens_a_film(tmp_path, screener):
    node = Node(tmp_path / "spool", "SARCO", ["MODALITY"], Destination.parse("PACS@127.0.0.1:1"), screener,
                Options(), not_long_leg="skip")  # fmt: skip
    ct = node.spool.store(str(pydicom.dcmread(CT_SMALL).SOPInstanceUID), CT_SMALL.read_bytes())
    node._answer(ct)
    assert not list((tmp_path / "spool" / "outbox").iterdir()) and not ct.exists()
    film = node.spool.store(str(pydicom.dcmread(SAMPLE).SOPInstanceUID), SAMPLE.read_bytes())
    node._answer(film)
    assert sorted(p.name for p in (tmp_path / "spool" / "outbox").glob("*/*.dcm")) == ["sc.dcm", "seg.dcm", "sr.dcm"]
    assert node.stats["skipped"] == 1 and node.stats["answered"] == 1
    assert "skipped 1" in node.status()
    with pytest.raises(ListenError, match="--not-long-leg"):
        Node(tmp_path / "s2", "SARCO", ["MODALITY"], Destination.parse("PACS@127.0.0.1:1"), screener, Options(),
             not_long_leg="drop")  # fmt: skip


def test_tls_options_all_or_none_and_one_line(tmp_path, tls):
    assert Tls.of(None, None, None) is None
    with pytest.raises(ListenError, match="all three"):
        Tls.of(tls.cert, tls.key, None)
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ListenError, match="cannot be used") as e:
        Tls.of(tmp_path / "bad.pem", tls.key, tls.ca)
    assert "\n" not in str(e.value)


class TlsPacs:
    """A storage SCP over TLS standing in for the PACS."""

    def __init__(self, tls: Tls) -> None:
        from pynetdicom.sop_class import Comprehensive3DSRStorage, SecondaryCaptureImageStorage, SegmentationStorage

        self.port, self.got, self.lock = free_port(), [], threading.Lock()
        self.ae = AE(ae_title="PACS")
        for sop in (SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
            self.ae.add_supported_context(sop)
        handlers = [(evt.EVT_C_STORE, self._store)]
        self.server = self.ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers,
                                           ssl_context=tls.server())  # fmt: skip

    def _store(self, event) -> int:
        with self.lock:
            self.got.append(event.dataset)
        return 0x0000


def associate(port: int, ssl_context=None):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(
        DigitalXRayImageStorageForPresentation, pydicom.dcmread(SAMPLE).file_meta.TransferSyntaxUID
    )
    ae.acse_timeout = ae.network_timeout = 10
    return ae.associate(
        "127.0.0.1", port, ae_title="SARCO", tls_args=(ssl_context, "127.0.0.1") if ssl_context else None
    )


def test_tls_both_ways_and_plain_or_certless_callers_refused(tmp_path, screener, tls):
    import ssl

    pacs = TlsPacs(tls)
    node = Node(tmp_path / "spool", "SARCO", ["MODALITY"], Destination("PACS", "127.0.0.1", pacs.port), screener,
                Options(), tls=tls)  # fmt: skip
    try:
        port = node.start("127.0.0.1", 0)
        assert not associate(port).is_established  # plain DICOM to a TLS port
        certless = ssl.create_default_context(cafile=str(tls.ca))
        assert not associate(port, certless).is_established  # TLS without a client certificate
        assoc = associate(port, tls.client())
        assert assoc.is_established
        assert assoc.send_c_store(pydicom.dcmread(SAMPLE)).Status == 0x0000
        assoc.release()
        deadline = time.monotonic() + WAIT_S
        while len(pacs.got) < 3:
            assert time.monotonic() < deadline, f"{len(pacs.got)} of 3 results over TLS in {WAIT_S} s"
            time.sleep(0.2)
    finally:
        node.stop()
        pacs.server.shutdown()
    assert sorted(ds.Modality for ds in pacs.got) == ["OT", "SEG", "SR"]
    assert node.stats["received"] == 1 and node.stats["sent"] == 3


def test_cli_tls_and_rule_are_one_line_usage_errors(tmp_path, tls):
    from tests.helpers import run_cli

    base = ["listen", "--port", "11112", "--allow", "X", "--spool", str(tmp_path / "s"), "--send-to", "P@127.0.0.1:1"]
    half = run_cli("edge.cli", *base, "--tls-cert", str(tls.cert))
    assert half.returncode == 2 and half.stderr.count("\n") == 1 and "all three" in half.stderr, half.stderr
    rule = run_cli("edge.cli", *base, "--not-long-leg", "drop")
    assert rule.returncode == 2 and rule.stderr.count("\n") == 1 and "--not-long-leg" in rule.stderr, rule.stderr
