"""Raw documents are stored compressed, and read back byte for byte (storage/submissions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordergate_server.storage.submissions import PACKED, PRUNED, pack, unpack

from ..support import ROOT

# The native examples and the official UBL 2.1 / PEPPOL examples (examples/ubl).
EXAMPLES = sorted((ROOT / "examples").glob("*.xml")) + sorted(
    (ROOT / "examples" / "ubl").glob("*.xml")
)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_a_document_comes_back_as_it_was_and_smaller(path: Path) -> None:
    payload = path.read_bytes()
    stored = pack(payload)
    assert unpack(stored) == payload
    assert len(stored) < len(payload)  # XML always compresses


@pytest.mark.parametrize(
    "payload",
    [b"", b"<a/>", PACKED, PACKED + b"x", b"\x00ogzz", PRUNED, bytes(range(256)) * 3],
)
def test_anything_comes_back_as_it_was(payload: bytes) -> None:
    stored = pack(payload)
    assert unpack(stored) == payload
    assert len(stored) <= len(payload) or stored.startswith(PACKED)
    assert stored != PRUNED  # never taken for a pruned document


def test_rows_stored_before_compression_read_as_they_are() -> None:
    old = b'<?xml version="1.0"?><Order xmlns="urn:ordergate:order:v1"/>'
    assert unpack(old) == old
