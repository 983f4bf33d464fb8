"""`sarco-edge listen`: the DICOM node (edge.listen) that screens what a PACS sends."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli_common import (
    CRIT,
    DEVICE,
    EXIT_OUTPUT,
    MODEL,
    _options,
    _screener,
    fail,
)

app = typer.Typer()


@app.command()
def listen(
    port: int = typer.Option(..., "--port", min=1, max=65535, help="TCP port to listen on (104 or 11112 are usual)."),
    ae_title: str = typer.Option("SARCO_EDGE", "--ae-title", help="This node's AE title."),
    allow: list[str] = typer.Option(..., "--allow", help="A calling AE title that may send films (repeat it)."),
    spool: Path = typer.Option(..., "--spool", help="Folder that keeps received films and unsent results."),
    send_to: str = typer.Option(..., "--send-to", help="Where results go: AE@host:port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    not_long_leg: str = typer.Option("sr", "--not-long-leg", help="A film that is not a long-leg film: sr or skip."),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="TLS: this node's certificate (PEM)."),
    tls_key: Path = typer.Option(None, "--tls-key", help="TLS: this node's private key (PEM)."),
    tls_ca: Path = typer.Option(None, "--tls-ca", help="TLS: the CA that peers' certificates must chain to."),
    criteria: str = CRIT,
    model: Path = MODEL,
    device: str = DEVICE,
) -> None:
    """A DICOM node: receives films (C-STORE), screens them, sends DICOM SEG + SR + overlay SC back."""
    from .listen import Destination, ListenError, Tls, serve

    try:
        Destination.parse(send_to)  # a bad option is one line before the model loads
        tls = Tls.of(tls_cert, tls_key, tls_ca)
        opts, scr = _options(None, None, criteria, None, None, None), _screener(model, device)
        serve(spool, host, port, ae_title, allow, send_to, scr, opts, not_long_leg=not_long_leg, tls=tls)
    except ListenError as e:
        raise fail(str(e), 2)
    except OSError as e:
        raise fail(f"--spool cannot be used ({e.strerror or type(e).__name__})", EXIT_OUTPUT)
