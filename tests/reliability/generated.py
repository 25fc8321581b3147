"""Shared pieces of the hostile-input tests: the hypothesis settings every property runs with,
and a minimal PDF writer for generated PDFs. A module of its own, not conftest.py, so test
modules can import it (`from conftest import` would name whichever conftest came first)."""

from __future__ import annotations

import hypothesis
from hypothesis import HealthCheck


def property_settings(*also_suppress: HealthCheck) -> hypothesis.settings:
    """1,000 cases, the same ones on every run (CI), no deadline, no example database."""
    return hypothesis.settings(
        max_examples=1000,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, *also_suppress],
    )


def pdf(objects: list[bytes]) -> bytes:
    """A PDF of these objects (object 1 is the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
