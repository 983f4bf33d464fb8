"""Benchmark `sarco-edge listen` end to end on 127.0.0.1: films/s from the first C-STORE sent to the
last SEG/SR/SC received back (README, "DICOM outputs and a DICOM node").

    python tests/bench_listen.py FOLDER_OF_DICOM_FILMS
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pynetdicom import AE

ROOT = Path(__file__).resolve().parents[1]


def main(folder: Path) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the test module's helpers, however it imports them
    from test_listen import Receiver, free_port, start_node, stop

    films = sorted(folder.glob("*.dcm"))
    port, dest = free_port(), free_port()
    with tempfile.TemporaryDirectory() as spool, Receiver(dest) as pacs:
        node = start_node(Path(spool), port, dest)
        try:
            ae = AE(ae_title="MODALITY")
            syntaxes = sorted(
                {str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID) for f in films}
            )
            ae.add_requested_context(pydicom.dcmread(films[0], stop_before_pixels=True).SOPClassUID, syntaxes)
            t0 = time.perf_counter()
            assoc = ae.associate("127.0.0.1", port, ae_title="SARCO")
            for f in films:
                assert assoc.send_c_store(pydicom.dcmread(f)).Status == 0x0000
            assoc.release()
            t_sent = time.perf_counter() - t0
            pacs.wait_for(3 * len(films), timeout=600)
            total = time.perf_counter() - t0
        finally:
            log = stop(node)
    print(f"{len(films)} films: all received by the node in {t_sent:.1f} s; all SEG/SR/SC back in {total:.1f} s "
          f"= {len(films) / total:.2f} films/s received-to-sent")  # fmt: skip
    print(log.strip().splitlines()[-1])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
