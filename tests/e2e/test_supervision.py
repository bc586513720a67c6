"""One server per address, and supervision that holds: a second `serve` on a served address
refuses to start; the workers of one `serve` go when their supervisor goes, however it goes; a
worker that dies during start-up is replaced within seconds; a file system that cannot take the
database is one line, not a traceback."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .test_cli import ORDERGATE, ServerProcess

CI = os.environ.get("CI", "").lower() == "true"


def _environ(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORDERGATE_")}
    return {**clean, "PYTHONUNBUFFERED": "1", **env}


def _children(pid: int) -> set[int]:
    """The server processes started by `pid` (multiprocessing's resource tracker left out)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; it only waits to be reaped


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.parametrize("second_workers", ["1", "2"])
def test_a_second_server_on_a_served_address_refuses_to_start(
    tmp_path: Path, second_workers: str
) -> None:
    first = ServerProcess(tmp_path, "--demo", "--workers", "2")
    try:
        other = tmp_path / "other"
        other.mkdir()
        for listen in (f"127.0.0.1:{first.port}", f"0.0.0.0:{first.port}"):
            done = subprocess.run(
                [ORDERGATE, "serve", "--listen", listen, "--workers", second_workers],
                cwd=other,
                env=_environ(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 1
            assert done.stderr.splitlines()[-1] == (
                f"ordergate: error: {listen} is already served by another process (another "
                "ordergate serve?); stop it, or set another ORDERGATE_LISTEN"
            )
            assert "Traceback" not in done.stderr
            assert not (other / "ordergate.sqlite3").exists()  # refused before anything
        assert _serving(first.port)  # the first is untouched
    finally:
        first.finish()
    assert first.process.returncode == 0


def test_a_restarted_server_takes_its_address_back_at_once(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path, "--demo", "--workers", "2")
    port = first.port
    for _ in range(20):  # connections the server closes linger in TIME_WAIT
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
    first.finish()
    again = subprocess.Popen(
        [ORDERGATE, "serve", "--demo", "--listen", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=tmp_path,
        env=_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert again.stdout is not None
        output = []
        for line in again.stdout:
            output.append(line)
            if "serving on" in line:
                break
        assert any(f"serving on 127.0.0.1:{port}" in line for line in output), output
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)


def test_workers_go_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo", "--workers", "2")
    workers = _children(server.process.pid)
    assert len(workers) == 2
    server.process.kill()  # SIGKILL: no chance to stop them itself
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers outlived their supervisor"
        time.sleep(0.1)
    with (
        pytest.raises(grpc.FutureTimeoutError),
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        grpc.channel_ready_future(channel).result(timeout=1)  # nothing takes orders there


def test_a_worker_killed_during_start_up_is_replaced_within_seconds(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [ORDERGATE, "serve", "--demo", "--listen", "127.0.0.1:0", "--workers", "2"],
        cwd=tmp_path,
        env=_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(workers := _children(process.pid)) < 2:
            assert time.monotonic() < deadline, "no workers started"
            time.sleep(0.01)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # still importing: it has not served yet
        killed = time.monotonic()
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            output.append(line)
            if "during start-up; starting another" in line:
                assert time.monotonic() - killed < 3, output
            if match := re.search(r"serving on 127\.0\.0\.1:(\d+)", line):
                break
        else:
            pytest.fail("".join(output))
        text = "".join(output)
        assert f"worker 0 (pid {victim}) exited with status -9 during start-up" in text or (
            f"worker 1 (pid {victim}) exited with status -9 during start-up" in text
        ), text
        assert time.monotonic() - killed < 15
        assert _serving(int(match.group(1)))
        assert len(_children(process.pid)) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True
    )
    return probe.returncode == 0


def _in_own_mounts(setup: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not _can_mount():
        message = "needs `unshare --mount` and mount rights (root) for a private file system"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", f'{setup} && exec "$@"', "sh", ORDERGATE, *args],
        cwd=cwd,
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_a_read_only_file_system_is_one_line(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    done = _in_own_mounts(
        f"mount -t tmpfs -o ro tmpfs {folder}",
        "--database-url",
        f"sqlite:///{folder}/ordergate.sqlite3",
        command,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ordergate: error: cannot use the database sqlite:///{folder}/ordergate.sqlite3: "
        "unable to open database file (its folder is on a read-only file system)"
    ]


def test_a_full_disk_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "full"
    folder.mkdir()
    done = _in_own_mounts(
        f"mount -t tmpfs -o size=48k tmpfs {folder}",
        "--database-url",
        f"sqlite:///{folder}/ordergate.sqlite3",
        "migrate",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last == (
        f"ordergate: error: cannot use the database sqlite:///{folder}/ordergate.sqlite3: "
        "database or disk is full"
    )
    assert "Traceback" not in done.stderr
