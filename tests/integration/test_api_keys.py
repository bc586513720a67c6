"""The API-key lifecycle against a real server: create, list, revoke, rotate with an overlap,
expiry, per-key networks; every operation audited; keys never in the logs."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy.exc import IntegrityError

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc
from ordergate_server.config import Settings, SettingsError
from ordergate_server.domain.access import Role
from ordergate_server.service import api_keys
from ordergate_server.service.errors import ServiceError
from ordergate_server.storage import Database, audit, clients

from ..support import Keys, ServerThread, auth, rich_error


@pytest.fixture
def fresh_server(db: Database, keys: Keys) -> Iterator[ServerThread]:
    """No key cache, so a revocation shows on the next call."""
    server = ServerThread(db, auth_cache_seconds=0)
    yield server
    server.stop()


def _call(server: ServerThread, key: str) -> grpc.StatusCode:
    """The status of one ListOrders call made with `key` (OK when it is let in)."""
    with grpc.insecure_channel(server.target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        try:
            stub.ListOrders(pb.ListOrdersRequest(), metadata=auth(key), timeout=10)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def _reason(server: ServerThread, key: str) -> str:
    with grpc.insecure_channel(server.target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListOrders(pb.ListOrdersRequest(), metadata=auth(key), timeout=10)
    return rich_error(refused.value).reason


def _secret_of(key: str) -> str:
    """The secret part of og_<id>_<secret> (the secret itself may contain "_")."""
    return key.split("_", 2)[2]


def _audit_actions(db: Database, key_id: str) -> list[tuple[str, str]]:
    with db.reader() as conn:
        entries = audit.search(
            conn, audit.AuditQuery(subject=f"api_key/{key_id}"), after_seq=0, limit=100
        )
    return [(entry.action, entry.actor) for _, entry in entries]


def test_a_created_key_works_is_listed_without_secrets_and_is_audited(
    db: Database, fresh_server: ServerThread
) -> None:
    key_id, key = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice", label="checkout")
    assert _call(fresh_server, key) == grpc.StatusCode.OK

    [listed] = api_keys.list_keys(db, "shop-c")
    assert (listed.key_id, listed.client, listed.role, listed.label) == (
        key_id,
        "shop-c",
        Role.WEBSITE,
        "checkout",
    )
    assert listed.status(datetime.now(UTC)) == "active"
    secret = _secret_of(key)
    assert secret not in repr(listed)
    assert api_keys.secret_sha256(secret) not in repr(listed)
    assert _audit_actions(db, key_id) == [("key.create", "alice")]


def test_a_revoked_key_is_refused(db: Database, fresh_server: ServerThread) -> None:
    key_id, key = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")
    api_keys.revoke_key(db, key_id, actor="bob", reason="leaked in a log")

    assert _reason(fresh_server, key) == "API_KEY_INVALID"
    assert api_keys.list_keys(db, "shop-c")[0].status(datetime.now(UTC)) == "revoked"
    assert _audit_actions(db, key_id) == [("key.create", "alice"), ("key.revoke", "bob")]


@pytest.mark.parametrize("how", ["revoke", "rotate without overlap"])
def test_a_key_taken_away_stops_within_a_second_on_a_connection_that_used_it(
    db: Database, keys: Keys, how: str
) -> None:
    """With the default key cache (a second at most), on one open connection whose calls had
    the key cached: it was 10 s, and a rotated-out key kept its old expiry for as long."""
    server = ServerThread(db)  # the default ORDERGATE_AUTH_CACHE_SECONDS
    try:
        key_id, key = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")
        with grpc.insecure_channel(server.target) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)

            def status() -> grpc.StatusCode:
                try:
                    stub.ListOrders(pb.ListOrdersRequest(), metadata=auth(key), timeout=10)
                except grpc.RpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            assert status() == grpc.StatusCode.OK  # verified, and now cached
            if how == "revoke":
                api_keys.revoke_key(db, key_id, actor="bob", reason="leaked")
            else:
                api_keys.rotate_key(db, key_id, actor="bob", overlap=timedelta(0))
            taken_away = time.monotonic()
            while status() == grpc.StatusCode.OK:
                assert time.monotonic() - taken_away < 1.5, "the key still works after a second"
                time.sleep(0.05)
            assert status() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()


def test_a_key_cache_longer_than_a_second_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"ORDERGATE_AUTH_CACHE_SECONDS='10' is not allowed"):
        Settings.from_env({"ORDERGATE_AUTH_CACHE_SECONDS": "10"})


def test_rotation_keeps_both_keys_valid_for_the_overlap(
    db: Database, fresh_server: ServerThread
) -> None:
    old_id, old = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")
    new_id, new = api_keys.rotate_key(db, old_id, actor="alice", overlap=timedelta(hours=1))

    assert _call(fresh_server, old) == grpc.StatusCode.OK
    assert _call(fresh_server, new) == grpc.StatusCode.OK
    listed = {k.key_id: k for k in api_keys.list_keys(db, "shop-c")}
    assert listed[old_id].replaced_by == new_id
    assert listed[old_id].expires_at is not None
    assert _audit_actions(db, old_id) == [("key.create", "alice"), ("key.rotate", "alice")]


def test_after_the_overlap_only_the_new_key_works(db: Database, fresh_server: ServerThread) -> None:
    old_id, old = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")
    _, new = api_keys.rotate_key(db, old_id, actor="alice", overlap=timedelta(0))

    assert _reason(fresh_server, old) == "API_KEY_EXPIRED"
    assert _call(fresh_server, new) == grpc.StatusCode.OK
    with pytest.raises(ServiceError) as again:
        api_keys.rotate_key(db, old_id, actor="alice")
    assert again.value.reason == "KEY_NOT_ACTIVE"


def test_an_expired_key_is_refused(db: Database, fresh_server: ServerThread) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    _, expired = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice", expires_at=past)
    future = datetime.now(UTC) + timedelta(days=1)
    _, valid = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice", expires_at=future)

    assert _reason(fresh_server, expired) == "API_KEY_EXPIRED"
    assert _call(fresh_server, valid) == grpc.StatusCode.OK


def test_a_key_limited_to_other_networks_is_refused_from_here(
    db: Database, fresh_server: ServerThread
) -> None:
    _, elsewhere = api_keys.create_key(
        db, "shop-c", Role.WEBSITE, actor="alice", allowed_cidrs=["203.0.113.0/24", "10.0.0.0/8"]
    )
    _, loopback = api_keys.create_key(
        db, "shop-c", Role.WEBSITE, actor="alice", allowed_cidrs=["127.0.0.0/8"]
    )

    assert _reason(fresh_server, elsewhere) == "CLIENT_ADDRESS_NOT_ALLOWED"
    assert _call(fresh_server, loopback) == grpc.StatusCode.OK


def test_a_bad_network_is_refused_at_creation(db: Database, keys: Keys) -> None:
    with pytest.raises(ServiceError) as refused:
        api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="a", allowed_cidrs=["10.0.0.0/33"])
    assert refused.value.reason == "CIDR_INVALID"
    assert api_keys.list_keys(db, "shop-c") == []


def test_keys_never_reach_the_logs(
    db: Database, fresh_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_id, key = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")
    _call(fresh_server, key)
    _call(fresh_server, key[:-3] + "xyz")  # a wrong secret for a real key id
    new_id, new = api_keys.rotate_key(db, key_id, actor="alice")
    api_keys.revoke_key(db, new_id, actor="alice")
    _call(fresh_server, new)

    for secret in (_secret_of(key), _secret_of(new)):
        assert secret not in caplog.text
        assert api_keys.secret_sha256(secret) not in caplog.text


def test_the_keys_commands(db: Database, keys: Keys) -> None:
    url = db.engine.url.render_as_string(hide_password=False)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ordergate_server.cli", "--database-url", url, "keys", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    created = run("create", "--client", "shop-d", "--role", "website", "--allow-cidr", "10.0.0.0/8")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    key_id = key.split("_")[1]
    listed = run("list", "--client", "shop-d")
    assert f"{key_id}\tshop-d\twebsite\tactive" in listed.stdout
    assert "10.0.0.0/8" in listed.stdout
    assert _secret_of(key) not in listed.stdout + listed.stderr
    rotated = run("rotate", key_id, "--overlap-hours", "2")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("og_")
    assert run("revoke", key_id, "--reason", "test").returncode == 0
    assert f"{key_id}\tshop-d\twebsite\trevoked" in run("list").stdout
    with db.reader() as conn:  # every command is on record, the listings too
        actions = [
            e.action
            for _, e in audit.search(conn, audit.AuditQuery(), after_seq=0, limit=1000)
            if e.action.startswith("key.") and e.actor.endswith("(ordergate keys)")
        ]
    assert actions == ["key.create", "key.list", "key.rotate", "key.revoke", "key.list"]
    missing = run("revoke", "0000000000000000")
    assert missing.returncode == 2
    assert "KEY_NOT_FOUND" in missing.stderr


def test_database_errors_do_not_quote_key_hashes(db: Database, keys: Keys) -> None:
    """Statement parameters stay out of a database error's text (and so out of any log that
    records it): a clash on a key id names no secret hash."""
    key_id, _ = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")
    leaked_hash = api_keys.secret_sha256("a secret that must not be quoted")
    with pytest.raises(IntegrityError) as clash, db.transaction() as tx:
        clients.insert_key(
            tx,
            key_id=key_id,
            client_id=1,
            secret_sha256=leaked_hash,
            label="",
            now=datetime.now(UTC),
        )
    assert leaked_hash not in str(clash.value)
