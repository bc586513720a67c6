"""Fixtures: every storage-touching test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ORDERGATE_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust
auth). The session creates its own database there and drops it at the end. Without a reachable
PostgreSQL the PostgreSQL cases are skipped with the reason, except under CI=true, where they fail:
CI must prove both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ordergate_server.storage import Database, open_database
from ordergate_server.storage.tables import metadata

from .support import Api, Keys, ServerThread, seed_demo

POSTGRES_URL = os.environ.get(
    "ORDERGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
UNDER_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_database() -> Iterator[str]:
    admin_url = make_url(POSTGRES_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: no PostgreSQL here
        admin.dispose()
        message = f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}"
        if UNDER_CI:
            pytest.fail(f"{message} (CI=true requires PostgreSQL)", pytrace=False)
        pytest.skip(message)
    name = f"ordergate_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def migrated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend for the whole session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "ordergate.sqlite3"
        db = open_database(f"sqlite:///{path}")
        db.migrate()
        yield db
        db.dispose()
        return
    urls = _postgres_database()
    url = next(urls)
    db = open_database(url)
    db.migrate()
    yield db
    db.dispose()
    for _ in urls:  # runs the DROP DATABASE
        pass


@pytest.fixture
def db(migrated_db: Database) -> Database:
    """The backend's database, emptied before the test."""
    with migrated_db.transaction() as tx:
        for table in reversed(metadata.sorted_tables):
            tx.execute(table.delete())
    return migrated_db


@pytest.fixture
def keys(db: Database) -> Keys:
    return seed_demo(db)


@pytest.fixture
def server(db: Database) -> Iterator[ServerThread]:
    running = ServerThread(db)
    yield running
    running.stop()


@pytest.fixture
def api(server: ServerThread, keys: Keys) -> Iterator[Api]:
    with grpc.insecure_channel(server.target) as channel:
        yield Api(channel, keys.shop)
