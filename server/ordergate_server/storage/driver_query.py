"""A fixed SELECT run straight through the database driver: the hottest reads.

Executing a compiled Core statement costs about 25 µs of SQLAlchemy's Python per call before the
driver is reached (compiled-cache lookup, execution context, events, result wrapping); the
driver itself runs a one-code GetStockLevels read in 8 µs on SQLite. Under load, with the
cores shared by the workers and their clients, that Python runs several times slower than in a
loop: GetStockLevels' one statement through here took 7% (SQLite) and 11% (PostgreSQL) off the
server's CPU per call (bench/README.md).

The statement is still built and compiled by SQLAlchemy (once per dialect), its parameters go
through the same bind processors, and a driver error comes out as the same SQLAlchemy exception
(`DBAPIError.instance`; a connection the database dropped is invalidated, as SQLAlchemy would),
so callers and the error interceptor cannot tell the difference. Rows come back as the driver
gives them (tuples, no result processing): use this for plain columns.

`send` runs a statement without waiting for its rows: inside `bulk.pipelined` on PostgreSQL,
statements sent one after another go out together and are answered in one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select
from sqlalchemy.sql.type_api import _BindProcessorType

# SQL text; parameter names in binding order (a name may repeat); each name once; bind
# processors by name; whether the driver takes positional parameters.
_Compiled = tuple[str, list[str], list[str], dict[str, "_BindProcessorType[Any]"], bool]

# Connection.info key: the row-count checks of an open `bulk.pipelined` block.
PIPELINE = "ordergate.pipeline"

T = TypeVar("T")
# A read sent ahead (`DriverQuery.send`): calling it gives its result, waiting if need be.
Later = Callable[[], T]


class DriverQuery:
    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows for `params` (every bind parameter by name), on `conn`'s
        connection, in its transaction if one is open."""
        return self.send(conn, params)()

    def send(self, conn: Connection, params: Mapping[str, Any]) -> Later[list[tuple[Any, ...]]]:
        """As `rows`, but the rows come from calling what this returns. Inside a
        `bulk.pipelined` block on PostgreSQL the statement goes out now without waiting, and
        the call waits for its answer (and those of everything sent before it): statements
        sent one after another cost one round trip together. Elsewhere it runs now."""
        sql, names, unique, processors, positional = self._for(conn.dialect)
        values = {
            name: process(params[name]) if (process := processors.get(name)) else params[name]
            for name in unique
        }
        bound: Any = tuple(values[name] for name in names) if positional else values
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

        def fetch() -> list[tuple[Any, ...]]:
            with driver_errors(conn, sql):
                try:
                    return list(cursor.fetchall())
                finally:
                    cursor.close()

        try:
            with driver_errors(conn, sql):
                cursor.execute(sql, bound)
        except BaseException:
            cursor.close()
            raise
        if PIPELINE not in conn.info:  # not pipelined: the answer is here
            rows = fetch()
            return lambda: rows
        return fetch

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self.statement.compile(dialect=dialect)
            positional = statement.positiontup is not None
            names = list(statement.positiontup or statement.binds)
            unique = list(dict.fromkeys(names))
            processors = {
                name: process
                for name in unique
                # The dialect's processor, as SQLAlchemy's execute uses (bulk.py says why).
                if (
                    process := statement.binds[name]
                    .type.dialect_impl(dialect)
                    .bind_processor(dialect)
                )
                is not None
            }
            compiled = (statement.string, names, unique, processors, positional)
            self._compiled[dialect.name] = compiled
        return compiled


@contextmanager
def driver_errors(conn: Connection, sql: str) -> Iterator[None]:
    """Run driver calls on `conn`'s connection, raising a driver error as SQLAlchemy would: the
    matching `DBAPIError` subclass (IntegrityError for a unique key, say), parameters hidden."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as error:
        # As SQLAlchemy does on a lost connection (a database restart): this connection
        # leaves the pool for good, and so do the idle ones, which the restart broke too.
        lost = conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(error)
            conn.engine.pool.dispose()
        raise DBAPIError.instance(
            sql,
            None,
            error,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=conn.dialect,
        ) from error
