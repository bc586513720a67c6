"""`ordergate serve`'s processes: one address per server, and N workers sharing its port.

Python runs one thread of Python at a time, so one process uses about one core; N processes
bound to the same port with SO_REUSEPORT let the kernel spread connections over them. This
module is the supervisor and creates no gRPC object at all: workers are started with the
"spawn" method (a fresh interpreter each), so no gRPC state — threads, polling engines,
sockets — is ever inherited through fork().

- One server per address: SO_REUSEPORT would just as well let a second `ordergate serve` (on
  another database, say) share the port, and the kernel would split the clients between the two.
  `claim_address` refuses to start on an address something already listens on.
- The supervisor holds the port (a socket bound with SO_REUSEPORT, never listening) for as long
  as it runs, so port 0 resolves to one port that every worker binds.
- Metrics: with a metrics endpoint, workers count into PROMETHEUS_MULTIPROC_DIR and only this
  process serves /metrics, adding the workers' files up (prometheus_client's multiprocess mode).
- SIGTERM or SIGINT here is passed to every worker, each drains its calls as a single server
  does, and this process exits when they have. A worker that dies, during its start-up too, is
  replaced at once; workers that keep dying during start-up end the serve (StartupError).
- Workers die with the supervisor, even one killed with SIGKILL: each asks the kernel for a
  SIGTERM when its parent goes (Linux's PR_SET_PDEATHSIG), and drains as on any SIGTERM.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from .config import Settings
from .storage import Database

log = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")
# Workers that die before they serve, one after another, before the supervisor gives up: the
# cause (a database that refuses the workers, say) is not going away by itself.
MAX_STARTUP_DEATHS = 5
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class StartupError(Exception):
    """The server cannot start; the message says why, in one line."""


def claim_address(listen: str, *, shared: bool) -> tuple[str, socket.socket | None]:
    """Check that nothing listens on `listen` yet; returns it with its port resolved.

    With `shared` (workers to come), also a socket holding the port until it is closed: bound
    with SO_REUSEPORT, so the workers can bind it too, and never listening, so it takes no
    connection. Raises StartupError for an address that is taken or not this host's."""
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, int(port_text), type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {listen}: {exc.strerror}") from None
    probe = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR: the previous server's connections lingering in TIME_WAIT do not count, a
    # socket listening on the port does (Linux refuses the bind then, whatever the options).
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(address)
    except OSError as exc:
        probe.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"{listen} is already served by another process (another ordergate serve?); "
                "stop it, or set another ORDERGATE_LISTEN"
            ) from None
        raise StartupError(f"cannot listen on {listen}: {exc.strerror}") from None
    bound_port = probe.getsockname()[1]
    if not shared:
        probe.close()
        return listen, None
    probe.close()
    hold = socket.socket(family, socket.SOCK_STREAM)
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    hold.bind((address[0], bound_port, *address[2:]))
    return f"{listen.rpartition(':')[0]}:{bound_port}", hold


def run_workers(
    settings: Settings,
    count: int,
    announce: Callable[[int, int], None],
    metrics_db: Database,
    holds: list[socket.socket],
) -> int:
    """Run `count` workers on `settings.listen` until SIGTERM/SIGINT; returns the exit code.
    `holds` are claim_address's sockets holding the ports, closed once the workers end.
    `metrics_db` is read only for the database gauges of the summed /metrics endpoint. Raises
    StartupError."""
    listen = settings.listen
    metrics_dir = ""
    if settings.metrics_listen:
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
            prefix="ordergate-metrics-"
        )
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers
    worker_settings = settings.with_changes(listen=listen, workers=count, metrics_listen="")
    ready = _SPAWN.Queue()
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    metrics_server = None
    processes: list[BaseProcess] = []
    try:
        if metrics_dir:  # before any worker: an address it cannot have ends the start here
            metrics_server = _serve_metrics(settings, metrics_db)
        processes = [_start(worker_settings, index, ready) for index in range(count)]
        _supervise(processes, worker_settings, ready, stopping, announce)
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
        for hold in holds:
            hold.close()
        if metrics_server is not None:
            metrics_server.shutdown()
        if metrics_dir and not os.environ.get("ORDERGATE_KEEP_METRICS_DIR"):
            shutil.rmtree(metrics_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _supervise(
    processes: list[BaseProcess],
    settings: Settings,
    ready: Any,
    stopping: threading.Event,
    announce: Callable[[int, int], None],
) -> None:
    """Until `stopping`: replace every worker that dies; announce once all serve."""
    serving: set[int] = set()  # pids of workers that reported ready
    announced = False
    startup_deaths = 0
    while not stopping.wait(0.2):
        while True:
            try:
                serving.add(ready.get_nowait())
            except queue.Empty:
                break
            startup_deaths = 0  # a worker started: whatever stopped the others may be over
        if not announced and all(p.pid in serving for p in processes):
            http_port = int(settings.http_listen.rpartition(":")[2]) if settings.http_listen else 0
            announce(int(settings.listen.rpartition(":")[2]), http_port)
            announced = True
        for index, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.pid not in serving:
                startup_deaths += 1
                if startup_deaths >= MAX_STARTUP_DEATHS:
                    raise StartupError(
                        f"workers keep exiting during start-up ({startup_deaths} in a row, "
                        f"the last with status {process.exitcode}); see the lines above"
                    )
            log.error(
                "worker %d (pid %s) exited with status %s%s; starting another",
                index,
                process.pid,
                process.exitcode,
                "" if process.pid in serving else " during start-up",
            )
            serving.discard(process.pid or 0)
            _forget_metrics_of(process.pid)
            processes[index] = _start(settings, index, ready)


def _start(settings: Settings, index: int, ready: Any) -> BaseProcess:
    process = _SPAWN.Process(
        target=_worker_main,
        args=(settings, index, ready, os.getpid()),
        name=f"ordergate-worker-{index}",
    )
    process.start()
    return process


def _forget_metrics_of(pid: int | None) -> None:
    """A dead worker's in-flight gauge no longer counts in the sum (multiprocess mode)."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM from the kernel when the supervisor goes, however it goes (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # it went before the request took effect
        os._exit(0)


def _worker_main(settings: Settings, index: int, ready: Any, parent_pid: int) -> None:
    """One worker: a complete server on the shared port (imports gRPC here, in the child)."""
    _die_with_parent(parent_pid)
    import asyncio

    from sqlalchemy.exc import DBAPIError

    from .api.server import serve_until_signalled
    from .observability import configure_logging, configure_tracing, first_line
    from .storage import open_database

    configure_logging(settings, f"worker-{index}")
    try:
        db = open_database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            read_threads=settings.db_read_threads,
            pii_key=settings.pii_key,
        )
        configure_tracing(db)  # before the server is made
        try:
            asyncio.run(serve_until_signalled(settings, db, lambda *_: ready.put(os.getpid())))
        finally:
            db.dispose()
    except (OSError, DBAPIError) as exc:  # one line, no traceback; the supervisor decides
        log.error("worker %d cannot serve: %s", index, first_line(exc))
        sys.exit(1)


def _serve_metrics(settings: Settings, db: Database) -> Any:
    """/metrics for all workers: their counters and histograms summed, plus the gauges read
    from the database (queue depth, stuck orders), served by this process."""
    from prometheus_client import CollectorRegistry, multiprocess

    from .api.db_signals import DatabaseSignals
    from .api.metrics import serve_metrics
    from .service import monitoring

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(
        DatabaseSignals(
            db, monitoring.rules(settings.stuck_picking_hours, settings.stuck_dispatched_hours)
        )
    )
    server = serve_metrics(settings.metrics_listen, registry)
    host = settings.metrics_listen.rpartition(":")[0]
    print(
        f"Metrics for all workers on {host or '0.0.0.0'}:{server.server_port}/metrics", flush=True
    )
    return server
