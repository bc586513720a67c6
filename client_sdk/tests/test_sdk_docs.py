"""Every Python block in docs/sdk.md runs, against a live demo server."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from sdk_support import REPO, DemoServer

DOC = REPO / "docs" / "sdk.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def environment(demo: DemoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERGATE_TARGET", demo.target)
    monkeypatch.setenv("ORDERGATE_API_KEY", demo.key)
    monkeypatch.setenv("ORDERGATE_ADMIN_KEY", demo.admin_key)
    monkeypatch.chdir(REPO)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_doc_block_runs(environment: None, number: int, tmp_path: Path) -> None:
    # The blocks assert what they show (states, replays, reasons); any failure raises here.
    script = tmp_path / f"sdk_doc_block_{number}.py"
    script.write_text(BLOCKS[number], encoding="utf-8")
    runpy.run_path(str(script), run_name="__main__")
