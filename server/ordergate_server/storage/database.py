"""Engines and the unit of work.

Two engines over one database:
- `transaction()` for writes. On SQLite every write transaction starts with BEGIN IMMEDIATE, so
  writers queue on the database lock up front instead of failing with "database is locked" on
  upgrade (WAL mode and a busy timeout let readers go on meanwhile). On PostgreSQL it is a plain
  READ COMMITTED transaction; rows that decide an outcome are locked with SELECT ... FOR UPDATE.
- `reader()` for reads in AUTOCOMMIT: no transaction bookkeeping per lookup (measured to double
  stock-lookup throughput, DESIGN.md).

SQLite has one writer at a time. Writers of every process queue for it on a kernel file lock
next to the database (`WriteGate`) before BEGIN IMMEDIATE, and are woken the moment it is free;
left to SQLite's busy handler they would poll, sleeping 1, 2, 5, 10... ms between tries, and
with `serve --workers` the CPUs sat idle while the lock was free (bench/submit_orders.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from . import pii

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class WriteGate:
    """One writer at a time across processes (flock on `path`) and the threads of this one.

    The holder is a thread. `write_turn` waits for the gate in a helper thread on behalf of the
    event loop's thread (`owner`); the owner's own transactions then pass straight through, so a
    write run inline on the event loop meanwhile can neither deadlock nor interleave (it runs to
    its end before the loop gets back to the turn's holder)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._state = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._fd = -1  # opened on first use: a spawned worker opens its own

    def acquire(self, owner: int | None = None) -> None:
        owner = threading.get_ident() if owner is None else owner
        with self._state:
            while self._owner is not None and self._owner != owner:
                self._state.wait()
            self._depth += 1
            if self._depth > 1:
                return  # the owner's again
            try:
                if self._fd < 0:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                # Inside the condition: other threads of this process wait their turn meanwhile
                # (the owner's own thread too, if it writes before the turn is through).
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth = 0
                raise
            self._owner = owner

    def try_acquire(self, owner: int) -> bool:
        """Take the gate for `owner` if that needs no waiting at all; False otherwise (nothing
        taken). Safe on the event loop: it never blocks."""
        if not self._state.acquire(blocking=False):
            return False  # another thread is inside acquire(), perhaps waiting for the flock
        try:
            if self._owner is not None:
                return False
            if self._fd < 0:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another process writes
            self._depth, self._owner = 1, owner
            return True
        finally:
            self._state.release()

    def release(self) -> None:
        with self._state:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._owner = None
                self._state.notify_all()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


@dataclass
class Database:
    engine: Engine
    read_engine: Engine
    write_gate: WriteGate | None = field(default=None)  # SQLite only

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        gate = self.write_gate.held() if self.write_gate else nullcontext()
        with gate, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[bool]:
        """On SQLite: take the write lock at once if it is free, else wait for it in a thread
        (the event loop goes on meanwhile), and hold it for this thread for the block, which
        yields True. On PostgreSQL writers do not
        queue: yields False at once."""
        gate = self.write_gate
        if gate is None:
            yield False
            return
        owner = threading.get_ident()
        if gate.try_acquire(owner):  # free: no thread hop (the usual case at light load)
            try:
                yield True
            finally:
                gate.release()
            return
        acquiring = asyncio.ensure_future(asyncio.to_thread(gate.acquire, owner))
        try:
            await asyncio.shield(acquiring)
        except asyncio.CancelledError:  # the thread still gets the gate: give it back then

            def give_back(done: asyncio.Future[None]) -> None:
                if done.exception() is None:
                    gate.release()

            acquiring.add_done_callback(give_back)
            raise
        try:
            yield True
        finally:
            gate.release()

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        with self.read_engine.connect() as conn:
            yield conn

    def first_to_take(self, tx: Connection, key: int) -> bool:
        """For a background pass that one process at a time should make (the stock re-check,
        the webhook fan-out): on PostgreSQL, whether this transaction took the advisory lock
        `key` (held until it ends; False: another worker or replica is on it). On SQLite the
        write transaction itself is the lock: always True."""
        if self.dialect != "postgresql":
            return True
        return bool(
            tx.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}).scalar_one()
        )

    def ping(self) -> None:
        """Raise unless the database answers a query now (the health watch)."""
        with self.read_engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to run from several replicas at once)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Replicas starting together: one migrates, the others wait and then find it done.
                conn.execute(text("SELECT pg_advisory_xact_lock(726574)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


# Seconds a new PostgreSQL connection may take (psycopg's connect_timeout).
PG_CONNECT_TIMEOUT_SECONDS = 5


def open_database(
    url: str, *, pool_size: int = 10, read_threads: int = 0, pii_key: str = ""
) -> Database:
    """Create the engines for `url` (sqlite:///path or postgresql+psycopg://...); with
    `pii_key` (ORDERGATE_PII_KEY), personal data is encrypted at rest (storage/pii.py).
    PostgreSQL: `pool_size` connections for transactions, and for reads one per thread that
    reads (`read_threads`, ORDERGATE_DB_READ_THREADS; one when reads run inline, with 0), each
    with as many again in overflow."""
    db = _engines(make_url(url), pool_size, read_pool_size=max(1, read_threads))
    if pii_key:
        cipher = pii.PiiCipher.from_setting(pii_key)
        for engine in {db.engine, db.read_engine.engine}:

            def on_connect(_dbapi: Any, record: ConnectionPoolEntry) -> None:
                pii.attach(record.info, cipher)

            event.listen(engine, "connect", on_connect)
    return db


def _engines(parsed: URL, pool_size: int, read_pool_size: int) -> Database:
    # hide_parameters: statement parameters hold personal data and key hashes; they never go
    # into SQLAlchemy's log lines (at DEBUG) or into the text of a database error.
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("Ordergate needs a SQLite file, not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "connect_args": {"check_same_thread": False},
            "hide_parameters": True,
        }
        engine = create_engine(parsed, **options)
        # AUTOCOMMIT for the whole engine, set once per connection: as an execution option it
        # was set and reset at every checkout, which cost more than a one-code stock read.
        read_engine = create_engine(parsed, isolation_level="AUTOCOMMIT", **options)
        for each in (engine, read_engine):
            event.listen(each, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return Database(engine, read_engine, WriteGate(Path(f"{parsed.database}.write-lock")))

    # No pre-ping: it costs a round trip per transaction. A connection broken by a database
    # restart fails its statement (UNAVAILABLE to the caller, who retries) and is replaced.
    # A database host that is down answers no connection attempt; without a timeout one waits
    # for the operating system's (minutes), holding a call or the health watch that long.
    #
    # plan_cache_mode=force_custom_plan: psycopg prepares a statement the fifth time a
    # connection runs it, and PostgreSQL may then keep one generic plan for it, made for the
    # table sizes of that moment. On a new database that moment is an empty one: the batch's
    # claim lookup (submissions by client and request id) and the event feed's join kept plans
    # that scan the whole table, and intake fell from 911 to 494 orders/s within 50,000 orders
    # (bench/README.md, "History"). A custom plan is made for each execution's own values and
    # the table as it is now; planning these statements costs less than the scans did.
    connect_args = {
        "connect_timeout": PG_CONNECT_TIMEOUT_SECONDS,
        "options": "-c plan_cache_mode=force_custom_plan",
    }
    engine = create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        hide_parameters=True,
        connect_args=connect_args,
    )
    # Reads have an engine of their own, AUTOCOMMIT from each connection's start: nothing to
    # begin or end, so nothing to roll back when a connection goes back to the pool. As an
    # execution option on the writers' engine, every checkout set the isolation level and every
    # return set it back and rolled back: 3.5% of a GetStockLevels call's server CPU
    # (bench/README.md). Reads run one at a time on a worker's event loop, or on
    # ORDERGATE_DB_READ_THREADS threads: a small pool of their own (docs/deploy.md).
    read_engine = create_engine(
        parsed,
        pool_size=read_pool_size,
        max_overflow=read_pool_size,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        hide_parameters=True,
        connect_args=connect_args,
    )
    # A connection found lost (a database restart) leaves its pool with that pool's idle ones;
    # the restart broke the other pool's too, so they go as well: one call fails, not one per
    # pool (tests/integration/test_failures.py).
    for lost_in, also in ((engine, read_engine), (read_engine, engine)):
        event.listen(lost_in, "invalidate", _drop_idle_connections(also))
    return Database(engine, read_engine)


def _drop_idle_connections(
    engine: Engine,
) -> Callable[[Any, ConnectionPoolEntry, BaseException | None], None]:
    def on_invalidate(
        _dbapi: Any, _record: ConnectionPoolEntry, error: BaseException | None
    ) -> None:
        if error is not None:  # invalidated for an error (a lost connection), not on purpose
            engine.pool.dispose()

    return on_invalidate


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module; BEGIN is issued in _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL: a commit that was answered ACCEPTED survives a power cut, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
