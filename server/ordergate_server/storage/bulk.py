"""Many rows in one statement, straight through the driver: the write half of group commit.

SQLAlchemy's executemany spends several microseconds of Python per row (parameter processing,
then on PostgreSQL one pipelined message per row, each with its own result). A batch of orders
writes hundreds of rows, inside the transaction that holds the stock locks (and on SQLite the
database's one write lock), so that time is paid by every waiting writer. Here:

- PostgreSQL: one array per column into `INSERT ... SELECT * FROM unnest(...)` (and an
  `UPDATE ... FROM unnest(...)` for allocations). The text never changes, so psycopg parses it
  once and the server prepares it once per connection, whatever the number of rows. The arrays
  go in binary (`%b`): in text psycopg quotes and escapes every element with regular
  expressions, which was half the CPU of storing a batch (bench/stages.py: 634 -> 481 us of
  client CPU per order stored ten at a time).
- SQLite: the driver's executemany (a C loop) on positional rows.

`pipelined(conn)` sends the statements of a block together (PostgreSQL's pipeline mode): a
batch of orders writes six statements, and each waited for its answer before the next went out.
Within the block a statement's row-count check waits for the block's end, when every answer has
arrived. Reads sent in the block (`DriverQuery.send`) go out at once too and wait only when
their rows are asked for, so reads that do not depend on each other share one round trip; the
block must not read what it writes. On SQLite the block runs as written.

A batch's lines and events belong to orders inserted in the same block, whose seqs the database
assigns: they are written with their order's id (`KeyLookup`) and the statement looks the seq
up, so nothing has to come back between the orders and their lines.

Each column's bind processing (UtcDateTime, JSON) is applied as SQLAlchemy would apply it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import JSON, Column, Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.type_api import _BindProcessorType

from .driver_query import PIPELINE as _PIPELINE
from .driver_query import driver_errors
from .one_of import without_length


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """Send the statements of the block (BulkInsert, add_allocated, DriverQuery.send) without
    waiting for each answer. A read's rows wait for its answer when they are asked for; the
    writes' checks run at the end of the block, when every answer is in. PostgreSQL only:
    elsewhere the statements run one by one as written. A block inside another is part of it.
    A database error is raised as SQLAlchemy raises it: when a read's rows are asked for after
    it, at the latest at the end of the block."""
    if conn.dialect.name != "postgresql" or _PIPELINE in conn.info:
        yield
        return
    checks: list[Callable[[], None]] = []
    # Kept: a connection lost in the block is invalidated, and `conn.info` then raises.
    info = conn.info
    info[_PIPELINE] = checks
    try:
        driver = conn.connection.driver_connection
        with driver_errors(conn, "pipeline"), driver.pipeline():  # type: ignore[union-attr]
            yield
        for check in checks:
            check()
    finally:
        info.pop(_PIPELINE, None)


def _execute_pg(
    conn: Connection, sql: str, params: Sequence[Any], check: Callable[[int], None]
) -> None:
    """Run `sql` straight through psycopg; `check` gets its row count, at once or, inside a
    `pipelined` block, when the block's answers are in."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with driver_errors(conn, sql):
        cursor.execute(sql, params)
    pending: list[Callable[[], None]] | None = conn.info.get(_PIPELINE)

    def checked() -> None:
        try:
            check(cursor.rowcount)
        finally:
            cursor.close()

    if pending is None:
        checked()
    else:
        pending.append(checked)


def _nothing_to_check(_rowcount: int) -> None:
    pass


class KeyLookup(NamedTuple):
    """Column `column` of the inserted rows holds what `value` is in the row of another table
    whose `key` the caller gives instead: an order's seq, given as the order's id."""

    column: str
    key: Column[Any]
    value: Column[Any]


class BulkInsert:
    """INSERT of many rows into `table`. The caller names the columns once, in its own order
    (every column but an autoincrement key: a missing or unknown name fails here, at import,
    not as a silent default), and gives each row as a tuple in that order: a batch of orders
    writes hundreds of rows, and a dict per row cost more than transposing them.

    With `lookup`, that column's values are keys of another table, stored as the value their
    row holds there; a key found nowhere fails the statement (the column is NOT NULL)."""

    def __init__(
        self, table: Table, columns: Sequence[str], *, lookup: KeyLookup | None = None
    ) -> None:
        insertable = {
            c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)
        }
        if sorted(columns) != sorted(insertable):
            raise ValueError(f"{table.name}: give exactly the columns {sorted(insertable)}")
        if lookup is not None and (lookup.column not in columns or table.c[lookup.column].nullable):
            # NOT NULL: a key found nowhere looks up NULL, and the insert fails.
            raise ValueError(f"{table.name}: no NOT NULL column {lookup.column} to look up")
        self._table = table
        self.columns = tuple(columns)
        self._lookup = lookup
        self._compiled: dict[str, tuple[str, list[_BindProcessorType[Any] | None]]] = {}

    def __call__(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        sql, processors = self._for(conn.dialect)
        values = self._values(rows, processors)
        if conn.dialect.name == "postgresql":
            _execute_pg(conn, sql, values, _nothing_to_check)
        else:
            conn.exec_driver_sql(sql, list(zip(*values, strict=True)))

    def _values(
        self, rows: Sequence[Sequence[Any]], processors: list[_BindProcessorType[Any] | None]
    ) -> list[list[Any]]:
        """The rows as one list of bind-processed values per column."""
        columns: list[list[Any]] = list(map(list, zip(*rows, strict=True)))  # lists: arrays
        if len(columns) != len(self.columns):
            raise ValueError(f"{self._table.name}: rows of {len(self.columns)} values expected")
        for at, process in enumerate(processors):
            if process is not None:
                columns[at] = _processed(columns[at], process)
        return columns

    def _for(self, dialect: Dialect) -> tuple[str, list[_BindProcessorType[Any] | None]]:
        if dialect.name not in self._compiled:
            sql = self._sql(dialect)
            processors = [self._processor(name, dialect) for name in self.columns]
            self._compiled[dialect.name] = (sql, processors)
        return self._compiled[dialect.name]

    def _sql(self, dialect: Dialect) -> str:
        preparer = dialect.identifier_preparer
        quote, lookup = preparer.quote, self._lookup
        table = preparer.format_table(self._table)
        names = ", ".join(quote(name) for name in self.columns)
        if dialect.name == "postgresql":
            arrays = ", ".join(f"%b::{self._array_type(name, dialect)}[]" for name in self.columns)
            if lookup is None:
                return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
            # A subquery per row, by the key's index. (A join let the planner hash the whole
            # other table at every batch: orders, seq-scanned, as the database grew.)
            picked = ", ".join(
                f"({self._looked_up(dialect, f'given.{quote(name)}')})"
                if name == lookup.column
                else f"given.{quote(name)}"
                for name in self.columns
            )
            return (
                f"INSERT INTO {table} ({names}) SELECT {picked}"
                f" FROM unnest({arrays}) AS given({names})"
            )
        marks = ", ".join(
            f"({self._looked_up(dialect, '?')})"
            if lookup is not None and name == lookup.column
            else "?"
            for name in self.columns
        )
        return f"INSERT INTO {table} ({names}) VALUES ({marks})"

    def _looked_up(self, dialect: Dialect, key: str) -> str:
        """SELECT of the looked-up value for `key` (SQL)."""
        assert self._lookup is not None
        preparer, (_, column, value) = dialect.identifier_preparer, self._lookup
        table = preparer.format_table(column.table)
        return (
            f"SELECT {table}.{preparer.quote(value.name)} FROM {table}"
            f" WHERE {table}.{preparer.quote(column.name)} = {key}"
        )

    def _array_type(self, name: str, dialect: Dialect) -> str:
        """The element type of `name`'s array: the column's type without a length (the column
        checks the length on insert; `one_of.without_length` says why)."""
        return without_length(self._column(name).type).compile(dialect=dialect)

    def _column(self, name: str) -> Column[Any]:
        """The column whose type the caller's values for `name` have."""
        if self._lookup is not None and name == self._lookup.column:
            return self._lookup.key
        return self._table.c[name]

    def _processor(self, name: str, dialect: Dialect) -> _BindProcessorType[Any] | None:
        column_type = self._column(name).type
        if dialect.name == "postgresql" and isinstance(column_type, JSON):
            # psycopg adapts JSON itself (SQLAlchemy wraps each value for it); an array element
            # goes as its JSON text, cast by the statement.
            return _json_text
        # The dialect's own processor, as SQLAlchemy's execute uses: the type's bare
        # bind_processor skips it (on SQLite a datetime then reached the sqlite3 module's
        # adapter, which wrote a whole second without ".000000", unlike every other path).
        return column_type.dialect_impl(dialect).bind_processor(dialect)


def _json_text(value: Any) -> str:
    return json.dumps(value)


_NOTHING = object()


def _processed(values: Sequence[Any], process: _BindProcessorType[Any]) -> list[Any]:
    """`process` applied to each of `values`, once per run of the same object: the rows of a
    batch share their timestamps (an order's stock changes, say), and converting a datetime
    for the database costs more than the check."""
    out = []
    last: Any = _NOTHING
    done = None
    for value in values:
        if value is not last:
            last, done = value, process(value)
        out.append(done)
    return out


class StockChangedError(RuntimeError):
    """A conditional stock update found less available than the locked read promised."""


_ADD_ALLOCATED_PG = (
    "UPDATE stock AS s SET allocated = s.allocated + d.quantity"
    " FROM unnest(%b::varchar[], %b::varchar[], %b::integer[]) AS d(sku, location, quantity)"
    " WHERE s.sku = d.sku AND s.location = d.location"
    " AND s.on_hand - s.allocated >= d.quantity"
)
_ADD_ALLOCATED_SQLITE = (
    "UPDATE stock SET allocated = allocated + ?"
    " WHERE sku = ? AND location = ? AND on_hand - allocated >= ?"
)


def add_allocated(conn: Connection, demand: Mapping[tuple[str, str], int]) -> None:
    """Add `demand` (pieces per (sku, location)) to the allocated quantities in one statement.
    Each row's update is conditional on enough stock being available, so even a caller that
    forgot to lock cannot oversell: a row short of stock is not updated, and is an error."""
    keys = sorted(demand)  # one lock order everywhere (PostgreSQL)
    if not keys:
        return

    def check(updated: int) -> None:
        if updated != len(keys):
            raise StockChangedError("less available than the locked read promised")

    if conn.dialect.name == "postgresql":
        _execute_pg(
            conn,
            _ADD_ALLOCATED_PG,
            ([sku for sku, _ in keys], [loc for _, loc in keys], [demand[k] for k in keys]),
            check,
        )
    else:
        result = conn.exec_driver_sql(
            _ADD_ALLOCATED_SQLITE,
            [(demand[(sku, loc)], sku, loc, demand[(sku, loc)]) for sku, loc in keys],
        )
        check(result.rowcount)
