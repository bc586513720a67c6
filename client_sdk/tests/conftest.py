"""A demo server per test module, started from `ordergate serve --demo` as a separate process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sdk_support import DemoServer, start_demo_server


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    server = start_demo_server(tmp_path_factory.mktemp("demo"))
    yield server
    server.stop()
