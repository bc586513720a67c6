"""What an operator sees when the settings are wrong, and the commands that show them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cli import ORDERGATE, ServerProcess

CLIENT = str(Path(sys.executable).parent / "ordergate-client")


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERGATE_")}
    return subprocess.run(
        [ORDERGATE, *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"ORDERGATE_LOG_LEVEL": "verbose"},
            "ordergate: error: ORDERGATE_LOG_LEVEL='verbose' is not allowed: Input should be "
            "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'",
        ),
        (
            {"ORDERGATE_METRICS_LISTEN": "9100"},
            "ordergate: error: ORDERGATE_METRICS_LISTEN='9100' is not allowed: host:port, such "
            "as 127.0.0.1:50051 or [::]:50051",
        ),
        (
            {"ORDERGATE_DATABSE_URL": "postgresql+psycopg://db/orders"},
            "ordergate: error: ORDERGATE_DATABSE_URL is not a setting (did you mean "
            "ORDERGATE_DATABASE_URL?)",
        ),
        (
            {"ORDERGATE_DATABASE_URL": "postgres://db/orders"},
            "ordergate: error: ORDERGATE_DATABASE_URL='postgres://db/orders' is not allowed: "
            "sqlite:///path or postgresql+psycopg://user@host/db",
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_status_2(
    tmp_path: Path, env: dict[str, str], line: str
) -> None:
    done = run(tmp_path, "serve", **env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [line]
    assert list(tmp_path.iterdir()) == []  # in particular, no new empty database


def test_a_database_that_cannot_be_reached_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    # Port 9 (discard) of this host: nothing listens there.
    done = run(
        tmp_path,
        "migrate",
        ORDERGATE_DATABASE_URL="postgresql+psycopg://postgres:pw@127.0.0.1:9/orders",
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "ordergate: error: cannot use the database postgresql+psycopg://postgres:***@127.0.0.1:9"
        "/orders: "
    )
    assert "pw" not in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_metrics_address_that_cannot_be_had_is_one_line_and_exit_status_1(
    tmp_path: Path, workers: str
) -> None:
    done = run(
        tmp_path,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        workers,
        ORDERGATE_METRICS_LISTEN="256.1.1.1:9100",
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        "ordergate: error: cannot serve /metrics on ORDERGATE_METRICS_LISTEN=256.1.1.1:9100: "
    )
    assert "Traceback" not in done.stderr


def test_config_prints_the_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    done = run(
        tmp_path,
        "config",
        ORDERGATE_PII_KEY=key,
        ORDERGATE_DATABASE_URL="postgresql+psycopg://app:s3cret@db.internal/orders",
        ORDERGATE_WORKERS="4",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "ORDERGATE_WORKERS=4" in lines
    assert "ORDERGATE_PII_KEY=****" in lines
    assert "ORDERGATE_DATABASE_URL=postgresql+psycopg://app:***@db.internal/orders" in lines
    assert "ORDERGATE_LOG_FORMAT=text" in lines  # defaults too
    assert key not in done.stdout
    assert "s3cret" not in done.stdout


def test_both_commands_tell_their_version(tmp_path: Path) -> None:
    from ordergate import __version__ as sdk_version
    from ordergate_server import __version__

    assert run(tmp_path, "--version").stdout.strip() == f"ordergate {__version__}"
    client = subprocess.run([CLIENT, "--version"], capture_output=True, text=True, check=True)
    assert client.stdout.strip() == f"ordergate-client {sdk_version}"
    help_text = subprocess.run([CLIENT, "--help"], capture_output=True, text=True).stdout
    assert "ORDERGATE_TARGET" in help_text
    assert "ORDERGATE_API_KEY" in help_text


def test_health_says_serving_and_fails_where_nothing_answers(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--demo")
    try:
        done = run(tmp_path, "health", "--target", f"127.0.0.1:{server.port}")
        assert (done.returncode, done.stdout.strip()) == (0, "SERVING")
    finally:
        server.finish()
    done = run(tmp_path, "health", "--target", f"127.0.0.1:{server.port}", "--timeout", "2")
    assert done.returncode == 1
    assert "did not answer" in done.stderr
