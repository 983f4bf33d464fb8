"""What the reader returns (`Film`) and the one error it raises (`ReadError`, kinds in `KINDS`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS: frozenset[str] = frozenset(
    {
        "not_found",
        "empty",
        "not_an_image",
        "truncated",
        "no_pixel_data",
        "colour",
        "multi_frame",
        "too_large",
        "unsupported_syntax",
        "decode_failed",
        "bad_header",
    }
)


class ReadError(Exception):
    """The project's own error for any input that cannot be read as a film.

    ``str(e)`` is ONE clear line for a user (no path, no patient data); ``kind`` is
    a short machine tag (see :data:`KINDS`) so a batch can tabulate failures.
    """

    kind: str

    def __init__(self, kind: str, message: str) -> None:
        # Not validated against KINDS: a constructor that raises while reporting an
        # error would hide the error. read_film only uses the kinds in KINDS.
        message = " ".join(str(message).split()) or kind.replace("_", " ")
        # args carry both so the error survives pickling into/out of worker processes.
        super().__init__(kind, message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is meaningless
class Film:
    """A film ready for the model: grey, bone bright, values in [0, 1], plus what the header said."""

    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None
    spacing_source: str
    sex: str | None
    height_m: float | None
    height_source: str
    age_years: float | None
    source_format: str
    photometric: str
    bits_stored: int
    transfer_syntax: str | None
    modality: str | None
    body_part: str | None
    notes: tuple[str, ...]
