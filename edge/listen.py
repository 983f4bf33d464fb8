"""`sarco-edge listen`: a DICOM node that screens what a PACS sends and sends the results back.

A PACS (or a modality) C-STOREs films to this node; only calling AE titles on the allow list get
an association. Each film is kept in the spool (edge.spool) before it is acknowledged, screened
by the same Screener as `screen` (loaded once), and its SEG/SR/SC (edge.dicom_out) are C-STOREd
to the one configured destination, retried with backoff and kept in the spool until stored. A
film that is not a long-leg film (a CT slice, a chest film) is acknowledged and answered with a
not_assessable SR, or with nothing under `--not-long-leg skip`. With `Tls` both the listening port
and the connection to the destination are DICOM over TLS, peers verified. Logs carry counts and short keys, never a patient's name or id; pynetdicom's
and highdicom's loggers are kept at WARNING because their debug output names datasets.
"""

from __future__ import annotations

import logging
import re
import signal
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .spool import Spool, key_of

log = logging.getLogger("sarco-edge.listen")
STATUS_EVERY_S = 30.0
STORED = (0x0000, 0xB000, 0xB006, 0xB007)  # success, and the warnings that still mean "stored"


class ListenError(Exception):
    """The node cannot start (bad option, port taken). str(e) is one line."""


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """`AE@host:port`, e.g. `PACS@10.0.0.5:104`."""
        m = re.fullmatch(r"([^@\\]{1,16})@([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})", text or "")
        if not m or not 0 < int(m.group(3)) < 65536 or not m.group(1).strip():
            raise ListenError("--send-to must be AE@host:port (AE title up to 16 characters), e.g. PACS@10.0.0.5:104")
        return cls(m.group(1).strip(), m.group(2).strip("[]"), int(m.group(3)))


@dataclass(frozen=True)
class Tls:
    """DICOM over TLS on both sides, every peer verified against `ca`: the listening port asks callers
    for a certificate (mutual TLS) and the connection to --send-to checks the destination's."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def of(cls, cert: Path | None, key: Path | None, ca: Path | None) -> Tls | None:
        if cert is None and key is None and ca is None:
            return None
        if cert is None or key is None or ca is None:
            raise ListenError("TLS needs all three: --tls-cert, --tls-key and --tls-ca")
        tls = cls(Path(cert), Path(key), Path(ca))
        tls.server(), tls.client()  # a bad file is one line now, not at the first association
        return tls

    def _context(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(purpose, cafile=str(self.ca))
            ctx.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as e:
            raise ListenError(f"TLS certificate, key or CA cannot be used ({type(e).__name__}: {e.args[-1]})") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def server(self) -> ssl.SSLContext:
        ctx = self._context(ssl.Purpose.CLIENT_AUTH)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client(self) -> ssl.SSLContext:
        return self._context(ssl.Purpose.SERVER_AUTH)  # verifies the destination's name and chain


class Node:
    """The SCP (association threads store to the spool) and one worker (screen, then send)."""

    def __init__(self, spool: Path, ae_title: str, allow: list[str], dest: Destination, screener, opts,
                 retry_s: float = 1.0, max_retry_s: float = 60.0, not_long_leg: str = "sr",
                 tls: Tls | None = None) -> None:  # fmt: skip
        from pynetdicom import AE

        if not allow:
            raise ListenError("--allow: name at least one calling AE title that may send films")
        if not_long_leg not in ("sr", "skip"):
            raise ListenError("--not-long-leg must be sr (answer with a not_assessable SR) or skip")
        self.not_long_leg, self.tls = not_long_leg, tls
        for name in ("pynetdicom", "highdicom"):  # their INFO/DEBUG lines name datasets and UIDs
            logging.getLogger(name).setLevel(logging.WARNING)
        self.spool, self.dest, self.screener, self.opts = Spool(spool), dest, screener, opts
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        keys = ("received", "answered", "not_assessable", "skipped", "sent", "send_failures", "failed")
        self.stats = dict.fromkeys(keys, 0)
        self._lock, self._stop, self._wake = threading.Lock(), threading.Event(), threading.Event()
        self._backoff, self._next_send, self._next_status = retry_s, 0.0, 0.0
        self.ae = AE(ae_title=ae_title)
        self.ae.require_calling_aet = list(allow)
        self._contexts()
        self.server = None
        self.worker: threading.Thread | None = None

    def _contexts(self) -> None:
        from pydicom.uid import ExplicitVRLittleEndian
        from pynetdicom import ALL_TRANSFER_SYNTAXES, StoragePresentationContexts
        from pynetdicom.sop_class import (
            Comprehensive3DSRStorage,
            SecondaryCaptureImageStorage,
            SegmentationStorage,
        )

        for cx in StoragePresentationContexts:  # films come in their own syntax: the reader decodes
            self.ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        for sop in (SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
            self.ae.add_requested_context(sop, ExplicitVRLittleEndian)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 30

    def start(self, host: str, port: int) -> int:
        """Listen (non-blocking) and start the worker; returns the port (0 picks a free one)."""
        from pynetdicom import evt

        try:
            self.server = self.ae.start_server(
                (host, port),
                block=False,
                evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
                ssl_context=self.tls.server() if self.tls else None,
            )
        except OSError as e:
            raise ListenError(f"cannot listen on {host}:{port} ({e.strerror or type(e).__name__})") from None
        self.worker = threading.Thread(target=self._work, name="sarco-edge-worker", daemon=True)
        self.worker.start()
        port = self.server.server_address[1]
        log.info("listening on %s:%d as %s%s; results go to %s", host, port, self.ae.ae_title,
                 " (TLS)" if self.tls else "", self.dest.ae_title)  # fmt: skip
        return port

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.server is not None:
            self.server.shutdown()
        if self.worker is not None:
            self.worker.join(timeout=60)

    def _on_store(self, event) -> int:
        """Keep the film on disk, then say "stored" (0x0000); a full disk says "out of resources"."""
        try:
            uid = str(event.request.AffectedSOPInstanceUID)
            self.spool.store(uid, event.encoded_dataset(include_meta=True))
        except OSError:
            log.error("a received film could not be kept in the spool (disk?); the sender was told to retry")
            return 0xA700
        with self._lock:
            self.stats["received"] += 1
        log.info("received %s", key_of(uid)[:8])
        self._wake.set()
        return 0x0000

    def _work(self) -> None:
        """Screen what is waiting, send what is screened, say how things stand; until stopped."""
        while not self._stop.is_set():
            films = self.spool.to_screen()
            for film in films:
                if self._stop.is_set():
                    break
                self._answer(film)
            if time.monotonic() >= self._next_send:
                self._send_pending()
            self.status(every=STATUS_EVERY_S)
            if not films:
                self._wake.wait(0.5)
                self._wake.clear()

    def _answer(self, film: Path) -> None:
        """Screen one spooled film into its outbox folder; nothing here may stop the node."""
        from .dicom_out import DicomOutError, write_outputs, write_unreadable
        from .reader import ReadError, read_film

        if self.spool.answered(film):  # killed after answering, before forgetting the film
            self.spool.done_with(film)
            return
        flag = "not_assessable"
        try:
            try:
                res = self.screener.screen(read_film(film), self.opts)
            except ReadError as e:
                write_unreadable(self.spool.outbox, film.stem, film, str(e), self.screener.model_info)
            else:
                if self._skip(film, res.report):
                    return
                write_outputs(self.spool.outbox, film.stem, film, res)
                flag = res.report.flag
        except DicomOutError as e:
            log.warning("film %s cannot be answered (%s); kept in %s", film.stem[:8], e, self.spool.failed.name)
            self.spool.give_up(film)
            self._count("failed")
            return
        except Exception as e:  # a screening failure is one log line and a kept file, never a stop
            log.warning("film %s: screening failed (%s); kept in %s", film.stem[:8], type(e).__name__, "failed")
            self.spool.give_up(film)
            self._count("failed")
            return
        self.spool.done_with(film)
        self._count("answered")
        if flag == "not_assessable":
            self._count("not_assessable")
        log.info("screened %s: %s", film.stem[:8], flag)

    def _skip(self, film: Path, report) -> bool:
        """`--not-long-leg skip`: a film the quality gate calls not a long-leg film gets no answer."""
        from .quality import NOT_LONG_LEG

        if self.not_long_leg != "skip" or NOT_LONG_LEG not in report.reasons:
            return False
        self.spool.done_with(film)
        self._count("skipped")
        log.info("skipped %s: not a long-leg film (--not-long-leg skip)", film.stem[:8])
        return True

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _send_pending(self) -> None:
        """C-STORE every unsent output; on failure wait (1 s, 2 s, 4 s ... up to max_retry_s) and retry."""
        files = self.spool.to_send()
        if not files:
            return
        if self._send(files):
            self._backoff = self.retry_s
            return
        self._count("send_failures")
        log.warning("destination %s not reached or refused; %d file(s) kept, retry in %.0f s",
                    self.dest.ae_title, len(self.spool.to_send()), self._backoff)  # fmt: skip
        self._next_send = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.max_retry_s)

    def _send(self, files: list[Path]) -> bool:
        import pydicom

        tls = (self.tls.client(), self.dest.host) if self.tls else None
        assoc = self.ae.associate(self.dest.host, self.dest.port, ae_title=self.dest.ae_title, tls_args=tls)
        if not assoc.is_established:
            return False
        try:
            for path in files:
                status = assoc.send_c_store(pydicom.dcmread(path))
                if not status or int(status.Status) not in STORED:
                    return False
                self.spool.sent(path)
                self._count("sent")
        finally:
            if assoc.is_established:
                assoc.release()
        return True

    def status(self, every: float = 0.0) -> str | None:
        """One line with the counts (logged at most every `every` seconds)."""
        now = time.monotonic()
        if every and now < self._next_status:
            return None
        self._next_status = now + every
        with self._lock:
            s = dict(self.stats)
        waiting = self.spool.counts()
        line = (
            f"status: received {s['received']}, answered {s['answered']} ({s['not_assessable']} not_assessable), "
            f"sent {s['sent']} files, waiting to screen {waiting['to_screen']}, waiting to send {waiting['to_send']}, "
            f"failed {s['failed']}, send retries {s['send_failures']}, skipped {s['skipped']}"
        )
        log.info(line)
        return line


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(spool: Path, host: str, port: int, ae_title: str, allow: list[str], send_to: str, screener, opts,
          not_long_leg: str = "sr", tls: Tls | None = None) -> None:  # fmt: skip
    """Run the node until Ctrl-C (the CLI's `listen`); a bad option or a taken port is a ListenError."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    node = Node(spool, ae_title, allow, Destination.parse(send_to), screener, opts, not_long_leg=not_long_leg, tls=tls)
    node.start(host, port)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop is a clean stop too
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        node.stop()
        node.status()
