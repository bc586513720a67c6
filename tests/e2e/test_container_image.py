"""The container image's contents, made and run without a container engine (none runs on the
build machine; `docker build` itself is not exercised here): a fresh environment installed the
way the Dockerfile's build stage installs it, then started with the runtime stage's settings,
answering the image's HEALTHCHECK command and stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _runtime_environment() -> dict[str, str]:
    """The ENV of the Dockerfile's runtime stage."""
    runtime = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    block = re.search(r"^ENV (.*?)(?=^\S)", runtime, re.M | re.S)
    assert block is not None
    return dict(re.findall(r"(\w+)=(\S+)", block.group(1).replace("\\\n", " ")))


def test_the_images_environment_installs_serves_and_answers_its_health_check(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "opt-ordergate"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--quiet", "--disable-pip-version-check"]
    # The build stage's two installs, as the Dockerfile has them.
    assert "pip install --require-hashes -r requirements.lock" in DOCKERFILE
    subprocess.run(
        [*pip, "install", "--require-hashes", "-r", "requirements.lock"], cwd=ROOT, check=True
    )
    assert "pip install --no-deps ./client_sdk ." in DOCKERFILE
    subprocess.run([*pip, "install", "--no-deps", "./client_sdk", "."], cwd=ROOT, check=True)
    subprocess.run([*pip, "check"], check=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERGATE_", "PYTHON"))}
    env.update(_runtime_environment())
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    data = tmp_path / "var-lib-ordergate"
    data.mkdir()
    env["ORDERGATE_DATABASE_URL"] = f"sqlite:///{data}/ordergate.sqlite3"
    env["ORDERGATE_METRICS_LISTEN"] = "127.0.0.1:0"
    server = subprocess.Popen(
        [str(venv / "bin" / "ordergate"), "serve", "--listen", "127.0.0.1:0"],
        cwd=data,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = 0
        for line in server.stdout:
            if match := re.search(r"serving on 127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
                break
        assert port, server.stderr.read() if server.stderr else ""
        health = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])", DOCKERFILE, re.S)
        assert health is not None
        command = json.loads(health.group(1))
        checked = subprocess.run(
            command,
            env={**env, "ORDERGATE_LISTEN": f"0.0.0.0:{port}"},  # as the image listens
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (checked.returncode, checked.stdout.strip()) == (0, "SERVING"), checked.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
    assert server.returncode == 0, log
    # ORDERGATE_LOG_FORMAT=json in the image: every log line is JSON.
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines
    assert all(json.loads(line)["level"] for line in lines)
