"""The other-language clients of docs/clients.md, run as a user would run them: the Node.js
example (grpc-js, the contract loaded from protos/, a refusal's google.rpc details decoded),
and `buf curl` with the XML base64-encoded, through reflection.

Node.js and npm are needed for the first (npm installs the example's locked packages); without
them the test is skipped with a message, and fails under CI=true."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import EXAMPLES, ROOT
from .test_cli import ServerProcess

NODE_EXAMPLE = EXAMPLES / "clients" / "node"
BUF = Path(sys.executable).parent / "buf"


@pytest.fixture(scope="module")
def node_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with its packages installed from its lock file (npm ci)."""
    if not (shutil.which("node") and shutil.which("npm")):
        message = "Node.js and npm are not installed: the Node.js client example is not run"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not (NODE_EXAMPLE / "node_modules").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_EXAMPLE,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_EXAMPLE


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("demo"), "--demo")
    yield server
    server.finish()


def _node(
    example: Path, demo: ServerProcess, key: str, *files: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "submit.mjs", *map(str, files)],
        cwd=example,
        env=os.environ | {"ORDERGATE_TARGET": f"127.0.0.1:{demo.port}", "KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_node_submits_and_reads_the_answer(node_example: Path, demo: ServerProcess) -> None:
    run = _node(
        node_example,
        demo,
        demo.key,
        EXAMPLES / "minimal-order.xml",
        EXAMPLES / "invalid" / "unknown-sku.xml",
    )
    assert run.returncode == 1, run.stderr  # one held
    lines = run.stdout.splitlines()
    assert lines[0].endswith("minimal-order.xml: WEB-1001 ORDER_STATE_ACCEPTED")
    assert "WEB-2001 ORDER_STATE_ON_HOLD SKU_UNKNOWN" in lines[1]


def test_node_decodes_the_error_details(
    node_example: Path, demo: ServerProcess, tmp_path: Path
) -> None:
    too_large = tmp_path / "large.xml"
    too_large.write_bytes(b"x" * (1024 * 1024 + 1))
    run = _node(node_example, demo, demo.key, too_large)
    assert run.returncode == 3, run.stderr
    assert "refused RESOURCE_EXHAUSTED PAYLOAD_TOO_LARGE" in run.stdout
    assert "  order_xml: larger than the server's limit" in run.stdout  # the BadRequest
    unknown = _node(node_example, demo, "og_0000000000000000_nope", EXAMPLES / "minimal-order.xml")
    assert "refused UNAUTHENTICATED API_KEY_INVALID" in unknown.stdout


def test_buf_curl_submits_base64_xml_through_reflection(demo: ServerProcess) -> None:
    request = {
        "requestId": str(uuid.uuid4()),
        "orderXml": base64.b64encode((EXAMPLES / "full-order.xml").read_bytes()).decode(),
    }
    run = subprocess.run(
        [
            str(BUF),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-H",
            f"Authorization: Bearer {demo.key}",
            "-d",
            json.dumps(request),
            f"http://127.0.0.1:{demo.port}/ordergate.v1.OrderService/SubmitOrder",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["order"]["state"] == "ORDER_STATE_ACCEPTED"
