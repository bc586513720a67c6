"""Shared pieces of the benchmarks: a server process on a fresh database, and a load loop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get(
    "ORDERGATE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh, empty database URL of `kind` (sqlite or postgres), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"ordergate_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def copy_of(database_url: str) -> Iterator[str]:
    """A copy of the database at `database_url`, removed afterwards: a file copy on SQLite, a
    clone with the original as template on PostgreSQL (statistics included). Nothing may be
    connected to the original meanwhile. Lets repeated runs start from the same stored state
    instead of from what the run before them added."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        source = Path(url.database or "")
        with tempfile.TemporaryDirectory() as folder:
            for part in source.parent.glob(source.name + "*"):  # with its -wal, if any
                shutil.copyfile(part, Path(folder) / part.name.replace(source.name, "copy.sqlite3"))
            settle_writes()
            yield url.set(database=f"{folder}/copy.sqlite3").render_as_string()
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"ordergate_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        # PostgreSQL 15's default strategy writes the whole copy through the WAL and shared
        # buffers, leaving minutes of checkpoint writes to land on whatever is measured next,
        # and only on the large databases. FILE_COPY copies the files between two checkpoints.
        strategy = (
            " STRATEGY FILE_COPY" if (conn.dialect.server_version_info or ()) >= (15,) else ""
        )
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"{strategy}'))
    settle_writes()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settle_writes() -> None:
    """Have the kernel write out every dirty page now, so that a copy of gigabytes is not
    still being written back while the next measurement runs."""
    os.sync()


@contextmanager
def seeded_database(
    kind: str, catalog: dict[str, Any], clients: dict[str, str]
) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh database of `kind` with API keys for `clients` (name -> role; made first, so the
    catalog's customers may name them) and `catalog` loaded; yields (url, key per client)."""
    with database(kind) as url, tempfile.TemporaryDirectory() as folder:
        keys = {
            name: ordergate(url, "keys", "create", "--client", name, "--role", role).strip()
            for name, role in clients.items()
        }
        path = Path(folder) / "catalog.json"
        path.write_text(json.dumps(catalog))
        ordergate(url, "load", str(path))
        yield url, keys


def analyze(database_url: str) -> None:
    """PostgreSQL: gather statistics now, as autovacuum does on a running deployment.

    A bench database starts empty, and autovacuum looks at it at most once a minute. Until then
    the plans the server's connections prepared while the order tables were empty stay with
    them: a lookup of a batch's order ids by the unique key scans orders sequentially, reading
    more rows at every batch (in a 6,000-order run, 2 million rows; a third of the database's
    CPU per order). After ANALYZE those plans are made again and use the index, as they do on a
    database that holds orders. SQLite is left as deployments run it, never analysed: its
    planner uses the indexes without statistics."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def ordergate(database_url: str, *args: str) -> str:
    env = {**os.environ, "ORDERGATE_DATABASE_URL": database_url}
    done = subprocess.run(
        [str(BIN / "ordergate"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (for a server's HTTP listener)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Target(str):
    """The address a bench server listens on ("127.0.0.1:PORT"), carrying its process id."""

    pid: int


@contextmanager
def server(database_url: str, **settings: str) -> Iterator[Target]:
    """`ordergate serve` on 127.0.0.1, port 0; yields its target; SIGTERM at the end.

    The server's output goes to a file (a pipe nobody reads would block it); the file's tail is
    printed if the run fails. `settings` become ORDERGATE_* variables."""
    env = {
        **os.environ,
        "ORDERGATE_DATABASE_URL": database_url,
        "ORDERGATE_LOG_LEVEL": "WARNING",
        # One key drives the whole load: the per-key abuse limits (1,000 calls/s and 16 open
        # streams per worker by default) would cap the figures, not the server. Their checks
        # still run on every call.
        "ORDERGATE_RATE_LIMIT_PER_SECOND": "1000000",
        "ORDERGATE_RATE_LIMIT_BURST": "1000000",
        "ORDERGATE_MAX_STREAMS_PER_KEY": "1000",
    }
    env.update({f"ORDERGATE_{name.upper()}": value for name, value in settings.items()})
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        process = subprocess.Popen(
            [str(BIN / "ordergate"), "serve", "--listen", "127.0.0.1:0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            target = Target(_wait_for_target(process, Path(log.name)))
            target.pid = process.pid
            yield target
        except BaseException:
            print(Path(log.name).read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def latency_relay(database_url: str, delay_ms: float) -> Iterator[str]:
    """`database_url` reached through bench.latency_relay, each way `delay_ms` later: a
    PostgreSQL server made to look that far away. With no delay, or for SQLite (in the
    process, no network), the URL itself."""
    url = make_url(database_url)
    if delay_ms <= 0 or url.get_backend_name() != "postgresql":
        yield database_url
        return
    relay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.latency_relay",
            "--target",
            f"{url.host or '127.0.0.1'}:{url.port or 5432}",
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert relay.stdout is not None
        port = int(relay.stdout.readline())
        yield url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        relay.terminate()
        relay.wait(timeout=10)


def _wait_for_target(process: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if match := re.search(r"serving on (127\.0\.0\.1:\d+)", log.read_text()):
            return match.group(1)
        time.sleep(0.05)
    raise RuntimeError("server did not start")


@dataclass
class LoadResult:
    calls: int
    seconds: float
    latencies_ms: list[float]
    calls_per_lane: list[int]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def percentile(self, p: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1]


# A load call: `call(n, lane)` makes the n-th call of a run on connection number `lane`.
Call = Callable[[int, int], Awaitable[object]]


async def run_load(call: Call, *, concurrency: int, seconds: float, lanes: int = 1) -> LoadResult:
    """Run `call` from `concurrency` callers, each back to back, for `seconds`. Caller k keeps to
    lane (connection) k % lanes, like a client that waits for its answer on its own connection:
    a connection served by a busier worker then simply completes fewer calls, and every worker
    stays busy however the kernel spread the connections (SO_REUSEPORT hashes each one to a
    worker; with few connections the split is often uneven)."""
    latencies: list[float] = []
    per_lane = [0] * lanes
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds

    async def caller(lane: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(next(counter), lane)
            latencies.append((time.perf_counter() - started) * 1000)
            per_lane[lane] += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(k % lanes) for k in range(concurrency)))
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, per_lane)


async def run_paced(
    call: Call, *, rate: float, seconds: float, shares: Sequence[float] = (1.0,)
) -> LoadResult:
    """Start calls at a steady `rate` per second for `seconds` (open loop: a slow call does not
    delay the next start), and time each from its scheduled start. Lane k gets `shares[k]` of
    the calls (smooth weighted round robin): given a closed-loop run's calls per lane, each
    connection, and so each worker, runs at the same fraction of what it served at its peak."""
    latencies: list[float] = []
    per_lane = [0] * len(shares)
    weights = [share / sum(shares) for share in shares]
    credit = [0.0] * len(shares)
    interval = 1.0 / rate
    started = time.perf_counter()
    tasks = []

    async def one(n: int, lane: int, due: float) -> None:
        await call(n, lane)
        latencies.append((time.perf_counter() - due) * 1000)
        per_lane[lane] += 1

    n = 0
    while (due := started + n * interval) < started + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        credit = [c + w for c, w in zip(credit, weights, strict=True)]
        lane = max(range(len(credit)), key=credit.__getitem__)
        credit[lane] -= 1.0
        tasks.append(asyncio.create_task(one(n, lane, due)))
        n += 1
    await asyncio.gather(*tasks)
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, per_lane)


# Workers share the port per connection (SO_REUSEPORT), and a gRPC channel is one connection:
# the load generator opens several, each its own, and spreads its calls over them.
CONNECTIONS = 8


@asynccontextmanager
async def connections(
    target: str, count: int = CONNECTIONS
) -> AsyncIterator[list[grpc.aio.Channel]]:
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]
    try:
        yield channels
    finally:
        for channel in channels:
            await channel.close(None)


# Where the machine's CPU goes during a phase, by process group, from /proc (Linux).
_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds used so far, command line) for every process."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        found[int(entry.name)] = (int(stat[1]), (int(stat[11]) + int(stat[12])) / _TICKS, cmdline)
    return found


def _descendants(processes: dict[int, tuple[int, float, str]], ancestor: int) -> set[int]:
    found, grew = {ancestor}, True
    while grew:
        children = {pid for pid, (parent, _, _) in processes.items() if parent in found}
        grew = not children <= found
        found |= children
    return found - {ancestor}


def server_workers(server_pid: int) -> list[int]:
    """The worker processes of the `ordergate serve` process `server_pid` (its spawned
    multiprocessing children; not multiprocessing's resource tracker)."""
    processes = _processes()
    return sorted(
        pid
        for pid in _descendants(processes, server_pid)
        if "multiprocessing" in processes[pid][2] and "spawn_main" in processes[pid][2]
    )


def cpu_seconds(server_pid: int, database_url: str) -> dict[str, float]:
    """CPU seconds used so far by: the server's process tree (workers included; SQLite runs in
    it), the PostgreSQL backends serving the bench database, and this process."""
    processes = _processes()
    tree = _descendants(processes, server_pid) | {server_pid}
    database = make_url(database_url).database or ""
    backends = {
        pid
        for pid, (_, _, cmdline) in processes.items()
        if cmdline.startswith("postgres: ") and f" {database} " in cmdline
    }
    own = processes.get(os.getpid(), (0, 0.0, ""))[1]
    return {
        "server": sum(processes[pid][1] for pid in tree if pid in processes),
        "database": sum(processes[pid][1] for pid in backends),
        "load generator": own,
    }


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU time of the whole machine so far, in ticks, from /proc/stat (Linux)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy the machine's CPUs were between two `machine_ticks` readings (0 to 1). A phase
    run to find a peak should keep them near 1: if not, the callers, not the server, set the
    rate (each waits for its answer, so the rate is at most callers / latency)."""
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def cpu_per_call(before: dict[str, float], after: dict[str, float], calls: int) -> dict[str, float]:
    """Microseconds of CPU per call of each group, between two `cpu_seconds` readings."""
    return {group: (after[group] - before[group]) * 1e6 / max(calls, 1) for group in before}
