"""The schema the migrations build is the schema the code uses, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, func, select
from sqlalchemy.exc import DBAPIError

from ordergate_server.domain.access import Role
from ordergate_server.storage import Database, catalog, clients, stock_log, submissions
from ordergate_server.storage import tables as t
from ordergate_server.storage.bulk import BulkInsert
from ordergate_server.storage.driver_query import DriverQuery
from ordergate_server.storage.one_of import one_of

from ..support import seed_demo

MIGRATIONS = Path(t.__file__).parent / "migrations" / "versions"


def test_migrations_match_the_table_definitions(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, t.metadata)
    assert differences == []


def test_migrate_is_idempotent(db: Database) -> None:
    db.migrate()
    db.migrate()
    newest = sorted(MIGRATIONS.glob("[0-9]*.py"))[-1].name[:4]  # 0008_...py: "0008"
    with db.reader() as conn:
        assert (
            conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == newest
        )


def test_timestamps_come_back_as_the_same_aware_utc_instant(db: Database) -> None:
    berlin = timezone(timedelta(hours=1))
    when = datetime(2026, 11, 23, 10, 30, 15, 123456, tzinfo=berlin)
    with db.transaction() as tx:
        clients.ensure_client(tx, "tz-check", Role.WEBSITE, when)
    with db.reader() as conn:
        stored = conn.execute(
            select(t.clients.c.created_at).where(t.clients.c.name == "tz-check")
        ).scalar_one()
    assert stored == when
    assert stored.tzinfo is not None
    assert stored.utcoffset() == UTC.utcoffset(None)


def test_one_of_matches_exactly_the_listed_values_whatever_their_number(db: Database) -> None:
    """one_of binds a whole list as one parameter (a JSON array on SQLite, an array on
    PostgreSQL): every value matches as itself, including quotes, commas, brackets, non-ASCII
    text and integer keys; an empty list matches nothing; the same statement serves any length."""
    names = ["plain", "it's", 'say "hi"', "a,b", "[x]", "Straße-Ü", "back\\slash", "%_like"]
    with db.transaction() as tx:
        for name in [*names, "not-asked"]:
            clients.ensure_client(tx, name, Role.WEBSITE, datetime.now(UTC))
    by_name = select(t.clients.c.name).where(one_of(t.clients.c.name, "names"))
    by_id = select(t.clients.c.name).where(one_of(t.clients.c.id, "ids"))
    with db.reader() as conn:
        for asked in ([], names[:1], names, [*names, "absent"]):
            found = conn.execute(by_name, {"names": asked}).scalars().all()
            assert sorted(found) == sorted(set(asked) - {"absent"})
        ids = dict(conn.execute(select(t.clients.c.name, t.clients.c.id)).all())
        found = conn.execute(by_id, {"ids": [ids["it's"], ids["a,b"]]}).scalars().all()
        assert sorted(found) == ["a,b", "it's"]
    # A value longer than the column is itself, not its first characters: it does not match
    # the row that holds them.
    name_type = t.clients.c.name.type
    assert isinstance(name_type, String)
    assert name_type.length is not None
    width = name_type.length
    full = "w" * width
    with db.transaction() as tx:
        clients.ensure_client(tx, full, Role.WEBSITE, datetime.now(UTC))
    with db.reader() as conn:
        assert conn.execute(by_name, {"names": [full]}).scalars().all() == [full]
        assert conn.execute(by_name, {"names": [full + "-more"]}).all() == []


def test_one_of_or_in_also_matches_what_its_select_returns(db: Database) -> None:
    """one_of(..., or_in=select) is true for the listed values and for what the select returns
    for them: an allocation's stock rows, those of its SKUs and of its bundles' components."""
    seed_demo(db)  # KIT-1 is SKU-1001 and 2 x SKU-1002; every SKU has stock, KIT-1 none
    s, b = t.stock.c, t.bundle_components.c
    statement = (
        select(s.sku)
        .distinct()
        .where(
            one_of(s.sku, "skus", or_in=select(b.component_sku).where(one_of(b.bundle_sku, "skus")))
        )
        .order_by(s.sku)
    )
    query = DriverQuery(statement)
    cases = [
        ([], []),
        (["KIT-1"], ["SKU-1001", "SKU-1002"]),
        (["SKU-1001", "KIT-1"], ["SKU-1001", "SKU-1002"]),
        (["KIT-1", "SKU-1003", "NOPE"], ["SKU-1001", "SKU-1002", "SKU-1003"]),
    ]
    with db.reader() as conn:
        for skus, expected in cases:
            assert [sku for (sku,) in query.rows(conn, {"skus": skus})] == expected
            assert conn.execute(statement, {"skus": skus}).scalars().all() == expected


@pytest.mark.parametrize(
    ("statement", "table", "params"),
    [
        # (client_id, request_id) is the unique key; the claims and order ids of every
        # group-commit batch are read this way, from tables that only grow.
        (
            submissions._FIND_MANY.statement,
            "submissions",
            {"client_ids": [1], "request_ids": ["r"]},
        ),
        # An allocation's stock rows, with its bundles' components (one_of(..., or_in=...)).
        (catalog._ALLOCATION_STOCK_LOCKED.statement, "stock", {"skus": ["SKU-1"]}),
    ],
    ids=["submissions", "allocation-stock"],
)
def test_one_of_lookups_use_the_index(
    db: Database, statement: Any, table: str, params: dict[str, Any]
) -> None:
    """A list lookup must probe the key's index, not scan the table."""
    query = DriverQuery(statement)
    sql, names = query._for(db.engine.dialect)[:2]
    with db.reader() as conn:
        if db.dialect == "sqlite":
            bound = tuple(json.dumps(params[name]) for name in names)
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, bound).all()
            steps = [row[-1] for row in plan]
            assert any(s.startswith(f"SEARCH {table} USING") for s in steps), steps
            assert not any(s.startswith(f"SCAN {table}") for s in steps), steps
        else:  # an empty table is scanned anyway; forbid that to see whether the index can serve
            conn.exec_driver_sql("SET enable_seqscan = off")
            try:
                plan = conn.exec_driver_sql("EXPLAIN " + sql, params).all()
            finally:
                conn.exec_driver_sql("RESET enable_seqscan")
            text_plan = "\n".join(row[0] for row in plan)
            assert "Index" in text_plan, text_plan
            assert f"Seq Scan on {table}" not in text_plan, text_plan


def test_driver_query_gives_what_sqlalchemy_gives_and_the_same_errors(db: Database) -> None:
    """A statement run straight through the driver (storage/driver_query.py) binds its
    parameters as SQLAlchemy would (a list, a plain value, a UTC datetime, one used twice) and
    returns the same rows; a database error is the same SQLAlchemy exception."""
    names = ["it's", "a,b", "Straße-Ü", "not-asked"]
    created = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    with db.transaction() as tx:
        for name in names:
            clients.ensure_client(tx, name, Role.WEBSITE, created)
    c = t.clients.c
    statement = (
        select(c.name, c.role, c.id)
        .where(
            one_of(c.name, "names"),
            c.role == bindparam("role"),
            c.created_at <= bindparam("until", type_=t.UtcDateTime),
            c.name != bindparam("but_not"),
            c.role != bindparam("but_not"),  # a parameter used twice
        )
        .order_by(c.name)
    )
    params = {
        "names": names[:3],
        "role": Role.WEBSITE.value,
        "until": created + timedelta(seconds=1),
        "but_not": "a,b",
    }
    query = DriverQuery(statement)
    with db.reader() as conn:
        expected = [tuple(row) for row in conn.execute(statement, params).all()]
        assert sorted(name for name, _, _ in expected) == ["Straße-Ü", "it's"]
        assert query.rows(conn, params) == expected
        assert query.rows(conn, {**params, "until": created - timedelta(seconds=1)}) == []
        # At the boundary: a whole second is bound as SQLAlchemy binds it (on SQLite the text
        # "...:00.000000"; the sqlite3 adapter's "...:00" compared as an earlier instant).
        assert query.rows(conn, {**params, "until": created}) == expected

    missing = Table("no_such_table", MetaData(), Column("x", Integer))
    with db.reader() as conn, pytest.raises(DBAPIError):
        DriverQuery(select(missing.c.x)).rows(conn, {})


def test_reads_leave_no_transaction_behind(db: Database) -> None:
    """A read holds no transaction, even one run straight through the driver (DriverQuery, as
    the hot reads are; SQLAlchemy does not see those to end them). A failed read does not spoil
    its connection for the next one, and a connection back in the pool is not left inside a
    transaction: on PostgreSQL that would hold back vacuum and make a migration's locks wait.
    (Readers are AUTOCOMMIT from the start, and on PostgreSQL their pool does not roll back a
    returned connection: it has nothing to roll back.)"""
    missing = Table("no_such_table", MetaData(), Column("x", Integer))
    count_clients = DriverQuery(select(func.count()).select_from(t.clients))
    for _ in range(3):  # the pool hands the same idle connection out each time
        with db.reader() as conn, pytest.raises(DBAPIError):
            DriverQuery(select(missing.c.x)).rows(conn, {})
        with db.reader() as conn:
            assert count_clients.rows(conn, {}) == [(0,)]
            driver = conn.connection.dbapi_connection
    if db.dialect == "postgresql":
        with db.transaction() as tx:
            left_open = tx.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%%'"
            ).scalar_one()
        assert left_open == 0
    else:
        assert driver is not None
        assert not driver.in_transaction


def test_bulk_inserted_timestamps_compare_like_any_other(db: Database) -> None:
    """Rows written by BulkInsert (storage/bulk.py) store a timestamp as SQLAlchemy would:
    a change at a whole second is found by a plain query for that second, and runs of the same
    timestamp among the rows are each stored right."""
    whole = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    later = whole + timedelta(microseconds=250)
    changes = [
        stock_log.StockChange(at, "SKU-TS", "DC", "COUNT", 1, 0, n, 0, "test")
        for n, at in enumerate([whole, whole, later, whole], start=1)
    ]
    with db.transaction() as tx:
        stock_log.record(tx, changes)
    c = t.stock_changes.c
    with db.reader() as conn:
        stored = conn.execute(
            select(c.on_hand_after, c.at).where(c.sku == "SKU-TS").order_by(c.on_hand_after)
        ).all()
        at_whole = conn.execute(
            select(c.on_hand_after).where(c.sku == "SKU-TS", c.at == whole).order_by(c.seq)
        ).scalars()
        assert list(at_whole) == [1, 2, 4]
    assert [at for _, at in stored] == [whole, whole, later, whole]


def test_bulk_insert_refuses_wrong_columns_and_rows_before_writing(db: Database) -> None:
    """A BulkInsert names exactly the table's insertable columns (its rows are plain tuples in
    that order, so a wrong list would shift every value), and a row of the wrong width is
    refused before anything reaches the database."""
    lines = ("order_seq", "position", "line_number", "submitted_code", "sku", "quantity")
    with pytest.raises(ValueError, match="unit_price"):
        BulkInsert(t.order_lines, lines)  # one missing
    with pytest.raises(ValueError, match="give exactly the columns"):
        BulkInsert(t.order_lines, (*lines, "unit_price", "colour"))  # one unknown
    with pytest.raises(ValueError, match="give exactly the columns"):
        BulkInsert(t.stock_changes, ("seq", *stock_log._COLUMNS))  # the autoincrement key

    insert = BulkInsert(
        t.order_lines, (*lines, "unit_price", "cancelled_quantity", "shipped_quantity")
    )
    with db.transaction() as tx:
        with pytest.raises(ValueError, match="rows of 9 values"):
            insert(tx, [(1, 0, 1, "S", "S", 1, None, 0)])  # eight values for nine columns
        with pytest.raises(ValueError, match="shorter"):
            insert(tx, [(1, 0, 1, "S", "S", 1, None, 0, 0), (1, 1, 2, "S", "S", 1, None, 0)])
    with db.reader() as conn:
        assert conn.execute(select(t.order_lines.c.order_seq)).all() == []


def test_bulk_insert_stores_every_value_as_given(db: Database) -> None:
    """Text and integers written by BulkInsert read back exactly: characters beyond ASCII, the
    empty text, NULLs among values and in every row, characters that array literals escape,
    negative numbers and the integer column's extremes (on PostgreSQL, one array per column)."""
    at = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    changes = [
        stock_log.StockChange(
            at, "SKU-Ü€😀", "Lager Süd", "COUNT", -5, 0, 2**31 - 1, -(2**31), "ä"
        ),
        stock_log.StockChange(at, "SKU-2", "DC", "COUNT", 0, 7, 0, 1, "", "", "O-1"),
        stock_log.StockChange(at, 'SKU-"{,}\\', "DC", "COUNT", 1, -1, 3, 4, "x", "why\nnot"),
    ]
    with db.transaction() as tx:
        stock_log.record(tx, changes)
    c = t.stock_changes.c
    with db.reader() as conn:
        stored = conn.execute(select(*(c[name] for name in stock_log._COLUMNS)).order_by(c.seq))
        assert [tuple(row) for row in stored] == [change[:-1] for change in changes]
    too_big = changes[1]._replace(on_hand_after=2**31, request_id="too-big")
    if db.dialect == "postgresql":  # past the integer column: refused, as by a plain INSERT
        with pytest.raises(DBAPIError, match="out of range"), db.transaction() as tx:
            stock_log.record(tx, [too_big])
    else:  # SQLite's integers have 64 bits
        with db.transaction() as tx:
            stock_log.record(tx, [too_big])
    with db.reader() as conn:
        found = conn.execute(select(c.on_hand_after).where(c.request_id == "too-big")).all()
    assert found == ([] if db.dialect == "postgresql" else [(2**31,)])


def test_bulk_insert_never_cuts_a_long_value_short(db: Database) -> None:
    """A value longer than its column is refused on PostgreSQL, as a plain INSERT refuses it,
    not cut to the column's length by the array's type (SQLite keeps any length)."""
    too_long = "O-" + "9" * 38  # stock_changes.order_id is VARCHAR(36)
    change = stock_log.StockChange(
        datetime.now(UTC), "SKU-LONG", "DC", "COUNT", 1, 0, 1, 0, "test", order_id=too_long
    )
    c = t.stock_changes.c
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="too long"), db.transaction() as tx:
            stock_log.record(tx, [change])
        expected = []
    else:
        with db.transaction() as tx:
            stock_log.record(tx, [change])
        expected = [too_long]
    with db.reader() as conn:
        stored = conn.execute(select(c.order_id).where(c.sku == "SKU-LONG")).scalars().all()
    assert stored == expected
