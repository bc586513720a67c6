"""`ordergate serve --workers N`: N server processes sharing one port.

Python runs one thread of Python at a time, so one process uses about one core; N processes
bound to the same port with SO_REUSEPORT let the kernel spread connections over them. This
module is the supervisor and creates no gRPC object at all: workers are started with the
"spawn" method (a fresh interpreter each), so no gRPC state — threads, polling engines,
sockets — is ever inherited through fork().

- Port 0 is resolved here first (a socket bound with SO_REUSEPORT holds the port until every
  worker has bound it too), so all workers share the port that is announced.
- Metrics: with a metrics endpoint, workers count into PROMETHEUS_MULTIPROC_DIR and only this
  process serves /metrics, adding the workers' files up (prometheus_client's multiprocess mode).
- SIGTERM or SIGINT here is passed to every worker, each drains its calls as a single server
  does, and this process exits when they have. A worker that dies is replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.process import BaseProcess
from typing import Any

from .config import Settings
from .storage import Database

log = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")


def resolve_port(listen: str) -> tuple[str, socket.socket | None]:
    """`listen` with a concrete port; for port 0, also the socket that reserves it."""
    host, _, port = listen.rpartition(":")
    if int(port) != 0:
        return listen, None
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    reserve = socket.socket(family, socket.SOCK_STREAM)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserve.bind((host.strip("[]"), 0))
    return f"{host}:{reserve.getsockname()[1]}", reserve


def run_workers(
    settings: Settings, count: int, announce: Callable[[int], None], metrics_db: Database
) -> int:
    """Run `count` workers until SIGTERM/SIGINT; returns the exit code. `metrics_db` is read
    only for the database gauges of the summed /metrics endpoint."""
    listen, reserve = resolve_port(settings.listen)
    metrics_dir = ""
    if settings.metrics_listen:
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
            prefix="ordergate-metrics-"
        )
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers
    worker_settings = replace(settings, listen=listen, workers=count, metrics_listen="")
    ready = _SPAWN.Queue()
    processes = [_start(worker_settings, index, ready) for index in range(count)]
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    metrics_server = None
    try:
        for _ in range(count):
            ready.get(timeout=120)
        if reserve is not None:
            reserve.close()
        if metrics_dir:
            metrics_server = _serve_metrics(settings, metrics_db)
        announce(int(listen.rpartition(":")[2]))
        while not stopping.wait(0.5):
            for index, process in enumerate(processes):
                if not process.is_alive():
                    log.error(
                        "worker %d (pid %s) exited with %s; starting another",
                        index,
                        process.pid,
                        process.exitcode,
                    )
                    processes[index] = _start(worker_settings, index, ready)
        log.info("stopping %d workers", count)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + settings.shutdown_grace_seconds + 15
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        if metrics_server is not None:
            metrics_server.shutdown()
        if metrics_dir and not os.environ.get("ORDERGATE_KEEP_METRICS_DIR"):
            shutil.rmtree(metrics_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _start(settings: Settings, index: int, ready: Any) -> BaseProcess:
    process = _SPAWN.Process(
        target=_worker_main, args=(settings, index, ready), name=f"ordergate-worker-{index}"
    )
    process.start()
    return process


def _worker_main(settings: Settings, index: int, ready: Any) -> None:
    """One worker: a complete server on the shared port (imports gRPC here, in the child)."""
    import asyncio

    from .api.server import serve_until_signalled
    from .storage import open_database

    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{index} %(name)s %(message)s",
    )
    db = open_database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        read_threads=settings.db_read_threads,
        pii_key=settings.pii_key,
    )
    try:
        asyncio.run(serve_until_signalled(settings, db, lambda port: ready.put(index)))
    finally:
        db.dispose()


def _serve_metrics(settings: Settings, db: Database) -> Any:
    """/metrics for all workers: their counters and histograms summed, plus the gauges read
    from the database (queue depth, stuck orders), served by this process."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    from .api.db_signals import DatabaseSignals
    from .service import monitoring

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(
        DatabaseSignals(
            db, monitoring.rules(settings.stuck_picking_hours, settings.stuck_dispatched_hours)
        )
    )
    host, _, port = settings.metrics_listen.rpartition(":")
    server, _ = start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
    print(
        f"Metrics for all workers on {host or '0.0.0.0'}:{server.server_port}/metrics", flush=True
    )
    return server
