"""`column IN (a list)` with the whole list bound as one parameter.

SQLAlchemy's expanding IN (`column.in_(bindparam(..., expanding=True))`) writes one placeholder
per value into the SQL at every execution. For the 100 codes of a GetStockLevels call that was
most of the call's cost: SQLAlchemy renders each placeholder (with a type cast on PostgreSQL),
psycopg re-parses the long text on every execution (it caches only short queries), and
PostgreSQL plans a new statement. Here the text is fixed, whatever the number of values, so
SQLAlchemy's compiled cache and psycopg's prepared statements apply:

- PostgreSQL: `column = ANY(%(name)b::TYPE[])`, the values as one array, sent in binary;
- SQLite: `column IN (SELECT value FROM json_each(?))`, the values as one JSON array (the
  planner probes the column's index with each value, as for a literal IN list).

Use `one_of(column, "name")` in a statement built once, then execute it with
`{"name": <any iterable of values>}`.

`one_of(column, "name", or_in=select(...))` is true also for what the select returns: one IN
over the UNION of both (`SELECT unnest(...) UNION ...`, `SELECT value FROM json_each(?) UNION
...`), which both databases answer by probing the column's index with each value. Written as
`one_of(...) OR column IN (select)`, PostgreSQL scanned the whole table, testing each row
against both (7.7 ms instead of 0.14 for 24 of 100,000 stock rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, Select, String, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator


class ValueList(TypeDecorator[list[Any]]):
    """A list of values of one column type, bound as an array (PostgreSQL) or JSON (SQLite)."""

    impl = String
    cache_ok = True

    def __init__(self, item_type: TypeEngine[Any]) -> None:
        super().__init__()
        self.item_type = item_type

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(without_length(self.item_type)))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Iterable[Any] | None, dialect: Dialect) -> Any:
        values = list(value or ())
        return values if dialect.name == "postgresql" else json.dumps(values)


def without_length(item_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """VARCHAR, not VARCHAR(64), as the element type of an array sent to PostgreSQL. The array
    is cast to it, and a cast to VARCHAR(64)[] cut a longer value to 64 characters (a lookup
    then matched the row holding its first 64; a bulk insert stored it cut short) and coerced
    every element once more (PostgreSQL's array_map: 100 codes per GetStockLevels call)."""
    if isinstance(item_type, String) and item_type.length is not None:
        item_type = item_type.copy()
        item_type.length = None
    return item_type


class OneOf(ColumnElement[bool]):
    """`column` is one of the values bound to `values` (see the module docstring)."""

    inherit_cache = True
    type = Boolean()
    # A condition in itself: without this, SQLAlchemy writes "(...) = 1" for a Boolean
    # expression on SQLite, and SQLite cannot use an index for that (a full table scan).
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
        ("or_in", InternalTraversal.dp_clauseelement),
    ]

    def __init__(
        self,
        column: ColumnElement[Any],
        values: BindParameter[Any],
        or_in: Select[Any] | None = None,
    ) -> None:
        self.column = column
        self.values = values
        self.or_in = or_in


def one_of(column: ColumnElement[Any], name: str, *, or_in: Select[Any] | None = None) -> OneOf:
    return OneOf(column, bindparam(name, type_=ValueList(column.type)), or_in)


@compiles(OneOf, "postgresql")
def _any_array(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    values = compiler.process(element.values, **kw)
    # "%(name)s" -> "%(name)b": psycopg sends the array in binary. In text it quotes and
    # escapes every element with regular expressions, which cost more than the query.
    if values.startswith("%(") and ")s" in values:
        values = values.replace(")s", ")b", 1)
    column = compiler.process(element.column, **kw)
    if element.or_in is None:
        return f"{column} = ANY({values})"
    return f"{column} IN (SELECT unnest({values}) UNION {_select(element, compiler, **kw)})"


@compiles(OneOf, "sqlite")
def _in_json_each(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    values = f"SELECT value FROM json_each({compiler.process(element.values, **kw)})"
    if element.or_in is None:
        return f"{column} IN ({values})"
    return f"{column} IN ({values} UNION {_select(element, compiler, **kw)})"


def _select(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    assert element.or_in is not None
    return compiler.process(element.or_in, asfrom=False, **kw)


@compiles(OneOf)
def _unsupported(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(
        f"one_of() is written for SQLite and PostgreSQL, not {compiler.dialect.name}"
    )
