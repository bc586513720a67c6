"""The shell commands of README.md and docs/, run as written, in the order written.

Every ```bash or ```console block says above it how it is run:

- `<!-- run: demo -->`: against `ordergate serve --demo`, from the repository, with KEY (the
  demo's website key), STAFF_KEY (its manager key) and ORDERGATE_TARGET set;
- `<!-- run: sandbox -->`: a new deployment: a copy of the repository's files in a folder of its
  own, no ORDERGATE_* variables, the programs of `.venv` (or, where the document installs with
  `pip install`, a fresh virtual environment that its commands install into), and one shell for
  all of a document's sandbox blocks, so an `export` holds for the commands after it;
- `<!-- not run: why -->`: a block the tests cannot run here, and what runs instead.

A ```console block's `$ ` lines are commands; the lines after each are its expected output
(`…` matches any text within a line; a line of just `…`, any lines). A ```bash block's lines
must succeed. What the runner changes, and nothing else: port 50051 in a command becomes a free
port (tests run beside other servers), and in what that command prints too; so does the demo's
HTTP port 8080; `ordergate serve`
runs in the background until the document's commands are done, the next command waiting until
it serves; the sandbox has a `catalog.json` (the demo catalog, its customers belonging to
client shop-eu, as the README's says).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ordergate_server.demo import DEMO_CATALOG

from .test_cli import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"(?:<!-- (?P<marker>run: \w+|not run: [^>]*) -->\n)?"
    r"```(?P<kind>bash|console)\n(?P<body>.*?)```",
    re.S,
)


@dataclass
class Block:
    document: Path
    marker: str  # "run: demo", "run: sandbox", "not run: ...", or "" (none: an error)
    kind: str  # bash or console
    body: str

    def steps(self) -> list[tuple[str, str]]:
        """(command, expected output) pairs; bash blocks expect nothing in particular."""
        if self.kind == "bash":
            joined = self.body.replace("\\\n", " ")
            return [(line, "") for line in joined.splitlines() if line.strip()]
        steps: list[tuple[str, str]] = []
        for line in self.body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], ""))
            elif steps:
                steps[-1] = (steps[-1][0], steps[-1][1] + line + "\n")
        return steps


def _blocks(document: Path) -> list[Block]:
    return [
        Block(document, match["marker"] or "", match["kind"], match["body"])
        for match in _BLOCK.finditer(document.read_text())
    ]


def _matches(expected: str, got: str) -> bool:
    pattern = ""
    for line in expected.splitlines():
        if line.strip() == "…":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*?".join(map(re.escape, line.split("…"))) + r"\n"
    return re.fullmatch(pattern, got) is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Shell:
    """One bash for a document's commands, as a terminal has: exports, `$?` and the servers in
    the background carry over from one command to the next. Its standard error goes with its
    standard output, as on a terminal."""

    def __init__(self, cwd: Path, env: dict[str, str], port: int, http_port: int = 0) -> None:
        self.cwd = cwd
        self.port = port
        self.http_port = http_port
        self.servers = 0
        self._bash = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._send("exec 2>&1; __rc=0", raw=True)

    def _send(self, script: str, *, raw: bool = False) -> tuple[int, str]:
        assert self._bash.stdin is not None
        assert self._bash.stdout is not None
        if not raw:  # after the last command's status; reading nothing of the script's pipe
            script = f"(exit $__rc); {{ {script}\n}} < /dev/null"
        self._bash.stdin.write(f"{script}\n__rc=$?; printf '\\n__DONE__ %s\\n' $__rc\n")
        self._bash.stdin.flush()
        lines: list[str] = []
        for line in self._bash.stdout:
            if match := re.fullmatch(r"__DONE__ (\d+)\n", line):
                output = "".join(lines)[:-1]  # the newline the marker's printf began with
                return int(match.group(1)), output if not output or output.endswith(
                    "\n"
                ) else output + "\n"
            lines.append(line)
        raise AssertionError("the shell ended")

    def run(self, command: str, *, background: bool) -> tuple[int, str]:
        """`command`'s exit status and output; in the background (a server), once it serves."""
        command = re.sub(r"\s+#.*$", "", command.replace("50051", str(self.port)))
        if self.http_port:
            command = command.replace(":8080", f":{self.http_port}")
        if background:
            self.servers += 1
            log = f".serve-{self.servers}.log"
            command = (
                f"{command} > {log} 2>&1 & echo $! >> .servers; "
                f"for _ in $(seq 600); do grep -q 'serving on' {log} && break; "
                f"kill -0 $! 2>/dev/null || break; sleep 0.1; done; "
                f"grep -q 'serving on' {log} || {{ cat {log}; false; }}"
            )
        return self._send(command)

    def close(self) -> str:
        """Stop the servers (SIGTERM, as an operator would) and the shell; the servers' logs."""
        pids = self.cwd / ".servers"
        for pid in pids.read_text().split() if pids.exists() else []:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                continue
        self._send(
            "for p in $(cat .servers 2>/dev/null); do "
            "while kill -0 $p 2>/dev/null; do sleep 0.1; done; done"
        )
        assert self._bash.stdin is not None
        self._bash.stdin.close()
        self._bash.wait(timeout=30)
        return "".join(p.read_text() for p in sorted(self.cwd.glob(".serve-*.log")))


def _is_server(command: str) -> bool:
    words = re.sub(r"\s+#.*$", "", command).split()
    program = next((w for w in words if "=" not in w), "")
    return Path(program).name == "ordergate" and "serve" in words and "||" not in words


def _run_steps(shell: Shell, blocks: list[Block]) -> None:
    for block in blocks:
        for command, expected in block.steps():
            # A server runs on in the background, unless the document shows what it prints
            # (a refusal to start, which ends at once).
            background = _is_server(command) and not expected
            status, got = shell.run(command, background=background)
            where = f"{block.document.name}: `{command}`"
            if "50051" in command:  # the address it was given, in what it prints
                expected = expected.replace("50051", str(shell.port))
            if shell.http_port and ":8080" in command:
                expected = expected.replace(":8080", f":{shell.http_port}")
            if block.kind == "console" and not background:
                assert _matches(expected, got), f"{where} printed:\n{got}\nexpected:\n{expected}"
            elif block.kind == "bash":
                assert status == 0, f"{where} failed with {status}:\n{got}"


def _clean_environment() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERGATE_", "OTEL_", "PROMETHEUS_", "VIRTUAL_ENV"))
    }


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_shell_block_is_run_or_says_why_not(document: Path) -> None:
    for block in _blocks(document):
        assert block.marker, (
            f"{document.name}: a ```{block.kind} block without <!-- run: demo -->, "
            f"<!-- run: sandbox --> or <!-- not run: why -->:\n{block.body}"
        )
        assert block.marker in ("run: demo", "run: sandbox") or block.marker.startswith(
            "not run: "
        ), block.marker


def _documents_with(marker: str) -> list[Path]:
    return [d for d in DOCUMENTS if any(b.marker == marker for b in _blocks(d))]


@pytest.mark.parametrize(
    "document", _documents_with("run: demo"), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_demo_commands(document: Path, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo")
    try:
        env = _clean_environment() | {
            "KEY": server.keys[0],
            "STAFF_KEY": server.keys[1],
            "ORDERGATE_TARGET": f"127.0.0.1:{server.port}",
        }
        shell = Shell(ROOT, env, server.port, server.http_port)
        try:
            _run_steps(shell, [b for b in _blocks(document) if b.marker == "run: demo"])
        finally:
            shell.close()
    finally:
        server.finish()


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """The repository's files (as a clone has them), and the README's catalog.json."""
    folder = tmp_path / "ordergate"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = folder / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    catalog = json.loads(DEMO_CATALOG.read_text())
    for customer in catalog["customers"]:
        customer["client"] = "shop-eu"
    (folder / "catalog.json").write_text(json.dumps(catalog))
    return folder


@pytest.mark.parametrize(
    "document", _documents_with("run: sandbox"), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_sandbox_commands(document: Path, sandbox: Path, tmp_path: Path) -> None:
    blocks = [b for b in _blocks(document) if b.marker == "run: sandbox"]
    env = _clean_environment()
    if any("pip install" in b.body for b in blocks):  # a new user's own environment
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    else:
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    shell = Shell(sandbox, env, _free_port())
    try:
        _run_steps(shell, blocks)
    finally:
        log = shell.close()
    assert "Traceback" not in log, log
