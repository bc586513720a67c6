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

Each column's bind processing (UtcDateTime, JSON) is applied as SQLAlchemy would apply it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.type_api import _BindProcessorType

from .one_of import one_of


class BulkInsert:
    """INSERT of many rows into `table`. The caller names the columns once, in its own order
    (every column but an autoincrement key: a missing or unknown name fails here, at import,
    not as a silent default), and gives each row as a tuple in that order: a batch of orders
    writes hundreds of rows, and a dict per row cost more than transposing them."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        insertable = {
            c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)
        }
        if sorted(columns) != sorted(insertable):
            raise ValueError(f"{table.name}: give exactly the columns {sorted(insertable)}")
        self._table = table
        self.columns = tuple(columns)
        self._compiled: dict[str, tuple[str, list[_BindProcessorType[Any] | None]]] = {}
        self._lookups: dict[tuple[str, str], Executable] = {}

    def __call__(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        sql, processors = self._for(conn.dialect)
        values = self._values(rows, processors)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(sql, tuple(values))
        else:
            conn.exec_driver_sql(sql, list(zip(*values, strict=True)))

    def assigned(
        self, conn: Connection, rows: Sequence[Sequence[Any]], key: str, generated: str
    ) -> dict[Any, Any]:
        """Insert `rows` and return what the database assigned them in column `generated` (an
        autoincrement seq), by the value of their unique column `key`.

        PostgreSQL answers in the INSERT itself (RETURNING). SQLite's executemany cannot
        return rows, so there one indexed lookup by `key` follows: in process, it costs
        little. On PostgreSQL that second statement was a round trip, and on a freshly
        created table its plan was a sequential scan (bench/README.md)."""
        if not rows:
            return {}
        if conn.dialect.name == "postgresql":
            sql, processors = self._for(conn.dialect)
            quote = conn.dialect.identifier_preparer.quote
            returned = conn.exec_driver_sql(
                f"{sql} RETURNING {quote(key)}, {quote(generated)}",
                tuple(self._values(rows, processors)),
            )
            return dict(returned.all())
        self(conn, rows)
        lookup = self._lookups.get((key, generated))
        if lookup is None:
            table = self._table
            lookup = select(table.c[key], table.c[generated]).where(one_of(table.c[key], "keys"))
            self._lookups[(key, generated)] = lookup
        at = self.columns.index(key)
        keys = [row[at] for row in rows]
        return dict(conn.execute(lookup, {"keys": keys}).all())

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
            quote = dialect.identifier_preparer.quote
            table = dialect.identifier_preparer.format_table(self._table)
            names = ", ".join(quote(name) for name in self.columns)
            if dialect.name == "postgresql":
                arrays = ", ".join(
                    f"%b::{self._table.c[name].type.compile(dialect=dialect)}[]"
                    for name in self.columns
                )
                sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
            else:
                marks = ", ".join("?" for _ in self.columns)
                sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            processors = [self._processor(name, dialect) for name in self.columns]
            self._compiled[dialect.name] = (sql, processors)
        return self._compiled[dialect.name]

    def _processor(self, name: str, dialect: Dialect) -> _BindProcessorType[Any] | None:
        column_type = self._table.c[name].type
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
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(
            _ADD_ALLOCATED_PG,
            ([sku for sku, _ in keys], [loc for _, loc in keys], [demand[k] for k in keys]),
        )
    else:
        result = conn.exec_driver_sql(
            _ADD_ALLOCATED_SQLITE,
            [(demand[(sku, loc)], sku, loc, demand[(sku, loc)]) for sku, loc in keys],
        )
    if result.rowcount != len(keys):
        raise StockChangedError("less available than the locked read promised")
