"""Group commit: a batch of submissions stored in one transaction answers each of them exactly as
storing them one at a time, in the same order, would have; on both databases.

The same mixed sequence (new orders competing for scarce stock, a bundle, a retry, a duplicate
order id, an unreadable document, a held order's resubmission, an unknown SKU, a reused
request_id) is stored once one by one and once as one batch, on a fresh catalog each time;
answers, stock and row counts must agree, and match what the rules say they should be.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from bench.latency_relay import Relay
from ordergate.v1 import order_pb2, order_service_pb2
from ordergate_server.domain.access import Principal
from ordergate_server.domain.model import HoldCode, OrderState
from ordergate_server.service import submit_queue
from ordergate_server.service.auth import Authenticator
from ordergate_server.service.errors import ServiceError
from ordergate_server.service.submit import (
    PreparedSubmission,
    SubmitResult,
    prepare_submission,
    store_submission,
)
from ordergate_server.service.submit_batch import Outcome, store_submissions
from ordergate_server.service.submit_queue import SubmitQueue
from ordergate_server.storage import Database, open_database, orders, stock_log, submissions
from ordergate_server.storage import tables as t
from ordergate_server.storage.bulk import (
    BulkInsert,
    KeyLookup,
    StockChangedError,
    add_allocated,
    pipelined,
)
from ordergate_server.storage.database import WriteGate

from ..support import Api, auth, order_xml, seed_demo
from .stock import count, stock_row

REQUESTS = [str(uuid.uuid4()) for _ in range(10)]
# (request_id, payload): the order the sequence is submitted in.
SEQUENCE = [
    (REQUESTS[0], order_xml("G-A", [("SKU-1005", 2)])),  # accepted: 5 -> 3 left
    (REQUESTS[1], order_xml("G-B", [("SKU-1005", 3)])),  # accepted: takes the last 3
    (REQUESTS[2], order_xml("G-C", [("SKU-1005", 1)])),  # held: nothing left
    (REQUESTS[0], order_xml("G-A", [("SKU-1005", 2)])),  # the retry of the first: replayed
    (REQUESTS[3], order_xml("G-A", [("SKU-1001", 1)])),  # other content, order id taken
    (REQUESTS[4], "<Order"),  # unreadable: held as a problem submission
    (REQUESTS[5], order_xml("G-C", [("SKU-1001", 1)])),  # G-C corrected: replaces the held one
    (REQUESTS[6], order_xml("G-D", [("NOPE-1", 1)])),  # unknown SKU: held
    (REQUESTS[6], order_xml("G-D", [("SKU-1001", 1)])),  # request_id reused: refused
    (REQUESTS[7], order_xml("G-E", [("KIT-1", 1)])),  # a bundle: its components allocated
]
EXPECTED = [
    ("order", "G-A", OrderState.ACCEPTED, [], False),
    ("order", "G-B", OrderState.ACCEPTED, [], False),
    ("order", "G-C", OrderState.ON_HOLD, [HoldCode.INSUFFICIENT_STOCK], False),
    ("order", "G-A", OrderState.ACCEPTED, [], True),
    ("refused", "DUPLICATE_ORDER_ID"),
    ("order", "", OrderState.ON_HOLD, [HoldCode.XML_MALFORMED], False),
    ("order", "G-C", OrderState.ACCEPTED, [], False),
    ("order", "G-D", OrderState.ON_HOLD, [HoldCode.SKU_UNKNOWN], False),
    ("refused", "IDEMPOTENCY_KEY_REUSED"),
    ("order", "G-E", OrderState.ACCEPTED, [], False),
]


def _fresh_catalog(db: Database) -> Principal:
    with db.transaction() as tx:
        for table in reversed(t.metadata.sorted_tables):
            tx.execute(table.delete())
    keys = seed_demo(db)
    with db.transaction() as tx:
        tx.execute(update(t.stock).where(t.stock.c.sku == "SKU-1005").values(on_hand=0))
        tx.execute(
            update(t.stock)
            .where(t.stock.c.sku == "SKU-1005", t.stock.c.location == "WH-MAIN")
            .values(on_hand=5)
        )
    principal = Authenticator(db).authenticate(keys.shop)
    assert principal is not None
    return principal


def _prepared(principal: Principal) -> list[PreparedSubmission]:
    return [
        prepare_submission(principal, request_id=request_id, payload=payload.encode())
        for request_id, payload in SEQUENCE
    ]


def _summary(outcome: Outcome) -> tuple[object, ...]:
    if isinstance(outcome, ServiceError):
        return ("refused", outcome.reason)
    if isinstance(outcome, Exception):
        raise outcome
    order = outcome.order
    codes = sorted({reason.code for reason in order.hold_reasons}, key=lambda code: code.value)
    return ("order", order.client_order_id, order.state, codes, outcome.replayed)


def _one_by_one(db: Database, prepared: list[PreparedSubmission]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for item in prepared:
        try:
            outcomes.append(store_submission(db, item))
        except ServiceError as refused:
            outcomes.append(refused)
    return outcomes


def _state(db: Database) -> dict[str, object]:
    return {
        "SKU-1005": stock_row(db, "SKU-1005"),
        "SKU-1001": stock_row(db, "SKU-1001"),
        "SKU-1002": stock_row(db, "SKU-1002"),
        **{
            table: count(db, table)
            for table in ("orders", "order_lines", "order_events", "submissions", "stock_changes")
        },
    }


def test_a_batch_answers_each_submission_as_one_by_one_would(db: Database) -> None:
    principal = _fresh_catalog(db)
    sequential = [_summary(o) for o in _one_by_one(db, _prepared(principal))]
    after_sequential = _state(db)

    principal = _fresh_catalog(db)
    batched = [_summary(o) for o in store_submissions(db, _prepared(principal))]

    assert sequential == EXPECTED
    assert batched == EXPECTED
    assert _state(db) == after_sequential
    assert after_sequential["SKU-1005"] == (5, 5)  # G-A's 2 and G-B's 3; G-C went elsewhere
    assert after_sequential["orders"] == 6  # G-A, G-B, G-C, the problem submission, G-D, G-E


def test_a_batch_that_loses_a_unique_key_race_is_stored_one_by_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica claims a request_id between the batch's check and its insert: the whole
    batch transaction rolls back (nothing half-written) and each submission is stored on its
    own, the raced one as the retry it is."""
    principal = _fresh_catalog(db)
    first = _prepared(principal)[:3]
    store_submission(db, first[0])  # "the other replica" took G-A's request_id already
    # The batch does not see that claim (as if it came after its check) ...
    monkeypatch.setattr(submissions, "send_claimed", lambda conn, keys: set)
    monkeypatch.setattr(orders, "send_existing_identities", lambda conn, keys, lock=False: set)
    outcomes = [_summary(o) for o in store_submissions(db, first)]

    assert outcomes == [
        ("order", "G-A", OrderState.ACCEPTED, [], True),  # ... and replays it after the race
        EXPECTED[1],
        EXPECTED[2],
    ]
    assert stock_row(db, "SKU-1005") == (5, 5)
    assert count(db, "orders") == 3
    assert count(db, "submissions") == 3


def test_sqlite_writers_of_every_process_queue_on_the_write_gate(tmp_path: Path) -> None:
    lock = tmp_path / "db.sqlite3.write-lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(0.5)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    gate = WriteGate(lock)
    started = time.monotonic()
    with gate.held():  # another process holds it: we wait for its release
        waited = time.monotonic() - started
        assert holder.poll() is not None or waited >= 0.3
        # ... and threads of this process wait for us.
        entered = threading.Event()

        def take_turn() -> None:
            with gate.held():
                entered.set()

        other = threading.Thread(target=take_turn)
        other.start()
        assert not entered.wait(0.2)
    other.join(timeout=5)
    assert entered.is_set()
    assert waited >= 0.3
    holder.wait(timeout=5)


def test_the_write_gate_is_taken_without_waiting_only_when_free(tmp_path: Path) -> None:
    # write_turn takes a free gate on the event loop itself (no thread hop); it must never take
    # one that another process or another thread of this process holds.
    lock = tmp_path / "db.sqlite3.write-lock"
    gate, other_process = WriteGate(lock), WriteGate(lock)  # two open files: two flock holders
    me = threading.get_ident()

    assert gate.try_acquire(me)
    with gate.held():  # the owner's own transactions pass straight through
        pass
    gate.release()

    with other_process.held():
        assert not gate.try_acquire(me)

    entered, leave = threading.Event(), threading.Event()

    def hold_from_a_thread() -> None:
        with gate.held():
            entered.set()
            leave.wait(5)

    holder = threading.Thread(target=hold_from_a_thread)
    holder.start()
    assert entered.wait(5)
    assert not gate.try_acquire(me)
    leave.set()
    holder.join(timeout=5)

    assert gate.try_acquire(me)  # free again once every holder has gone
    assert not other_process.try_acquire(threading.get_ident())
    gate.release()


def test_other_writes_run_alongside_the_group_commit(api: Api, db: Database) -> None:
    """Cancels (a write run inline on SQLite's event loop) while orders are being batched: each
    call is answered; none waits for a write lock its own event loop holds (found by the soak)."""
    placed = [api.submit(order_xml(f"W-{i}", [("SKU-1001", 1)])).order.id for i in range(20)]

    def submit(i: int) -> int:
        return api.submit(order_xml(f"N-{i}", [("SKU-1001", 1)])).order.state

    def cancel(order_id: str) -> int:
        request = order_service_pb2.CancelOrderRequest(id=order_id, reason="test")
        return api.orders.CancelOrder(request, metadata=auth(api.key), timeout=10).order.state

    with ThreadPoolExecutor(max_workers=16) as pool:
        submitted = pool.map(submit, range(60), timeout=30)
        cancelled = pool.map(cancel, placed, timeout=30)
        states = list(submitted), list(cancelled)

    assert states[0] == [order_pb2.ORDER_STATE_ACCEPTED] * 60
    assert states[1] == [order_pb2.ORDER_STATE_CANCELLED] * 20
    assert stock_row(db, "SKU-1001")[1] == 60


def test_an_allocation_beyond_what_is_available_is_refused_whole(db: Database) -> None:
    _fresh_catalog(db)  # SKU-1005: 5 on hand at WH-MAIN
    with pytest.raises(StockChangedError), db.transaction() as tx:
        add_allocated(tx, {("SKU-1001", "WH-MAIN"): 1, ("SKU-1005", "WH-MAIN"): 6})
    assert stock_row(db, "SKU-1005") == (5, 0)
    assert stock_row(db, "SKU-1001")[1] == 0


def test_a_pipelined_block_refuses_a_short_allocation_and_a_taken_key_whole(db: Database) -> None:
    # bulk.pipelined: on PostgreSQL the statements' answers arrive together at the end of the
    # block; the stock check and a unique key must still refuse, and keep nothing of the block.
    principal = _fresh_catalog(db)  # SKU-1005: 5 on hand at WH-MAIN

    def allocate_one_too_many() -> None:
        with db.transaction() as tx, pipelined(tx):
            add_allocated(tx, {("SKU-1001", "WH-MAIN"): 1})
            add_allocated(tx, {("SKU-1005", "WH-MAIN"): 6})
            add_allocated(tx, {("SKU-1002", "WH-MAIN"): 1})  # sent after the short one

    with pytest.raises(StockChangedError):
        allocate_one_too_many()
    assert [stock_row(db, sku)[1] for sku in ("SKU-1001", "SKU-1002", "SKU-1005")] == [0, 0, 0]

    claim = submissions.NewSubmission(
        id=str(uuid.uuid4()),
        client_id=principal.client_id,
        request_id="R-TWICE",
        received_at=datetime.now(UTC),
        payload=b"<Order/>",
        payload_sha256="0" * 64,
        order_id=None,
        outcome="REFUSED",
    )

    def claim_twice() -> None:
        with db.transaction() as tx, pipelined(tx):
            add_allocated(tx, {("SKU-1001", "WH-MAIN"): 1})
            submissions.insert_many(tx, [claim])
            submissions.insert_many(tx, [dataclasses.replace(claim, id=str(uuid.uuid4()))])

    with pytest.raises(IntegrityError):
        claim_twice()
    assert count(db, "submissions") == 0
    assert stock_row(db, "SKU-1001")[1] == 0


def _new_orders(
    principal: Principal,
    count_: int,
    prefix: str = "Q",
    lines: Sequence[tuple[str, int]] = (("SKU-1001", 1),),
) -> list[PreparedSubmission]:
    return [
        prepare_submission(
            principal,
            request_id=str(uuid.uuid4()),
            payload=order_xml(f"{prefix}-{n}", list(lines)).encode(),
        )
        for n in range(count_)
    ]


WITH_A_BUNDLE = (("SKU-1001", 1), ("KIT-1", 1))  # a bundle line: its components' stock is read


@pytest.mark.parametrize("migrated_db", ["postgres"], indirect=True)
def test_a_batch_makes_five_round_trips_to_postgresql(db: Database) -> None:
    # What a database a network hop away costs a batch, per hop: BEGIN; the claims, order ids,
    # products and customers; the bundles, stock and locations; the writes; COMMIT. Sent one
    # statement at a time, the same batch made ten.
    principal = _fresh_catalog(db)
    relay = Relay((db.engine.url.host or "127.0.0.1", db.engine.url.port or 5432))
    relayed = open_database(
        db.engine.url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    )
    try:
        # The connection is opened and set up, and psycopg prepares what it runs often.
        for n in range(6):
            store_submissions(relayed, _new_orders(principal, 2, f"WARM{n}", WITH_A_BUNDLE))
        relay.reset()
        outcomes = store_submissions(relayed, _new_orders(principal, 4, "RT", WITH_A_BUNDLE))
        trips = relay.round_trips
    finally:
        relayed.dispose()
        relay.close()
    assert [_summary(o)[2] for o in outcomes] == [OrderState.ACCEPTED] * 4
    assert trips == 5


@pytest.mark.parametrize("migrated_db", ["postgres"], indirect=True)
def test_a_batch_whose_pipelined_read_fails_stores_nothing_and_its_connection_goes_on(
    db: Database,
) -> None:
    # The stock read (sent with the bundles' and locations') times out on a row lock held
    # elsewhere: the batch fails whole, and the connection serves the next batch.
    principal = _fresh_catalog(db)
    impatient = open_database(db.engine.url.render_as_string(hide_password=False), pool_size=1)

    @event.listens_for(impatient.engine, "connect")
    def short_lock_timeout(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        dbapi_connection.commit()

    def backend() -> int:  # which PostgreSQL connection the pool hands out
        with impatient.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    batch = _new_orders(principal, 2, "LOCKED", WITH_A_BUNDLE)
    try:
        first = backend()
        with db.engine.begin() as holder:
            holder.exec_driver_sql(
                "SELECT * FROM stock WHERE sku = 'SKU-1001' AND location = 'WH-MAIN' FOR UPDATE"
            )
            with pytest.raises(OperationalError, match="lock timeout"):
                store_submissions(impatient, batch)
        assert count(db, "orders") == 0
        assert [stock_row(db, sku)[1] for sku in ("SKU-1001", "SKU-1002")] == [0, 0]
        outcomes = store_submissions(impatient, batch)  # the same submissions, retried
        assert backend() == first  # not dropped and replaced: the pipeline was left clean
    finally:
        impatient.dispose()
    assert [_summary(o)[2] for o in outcomes] == [OrderState.ACCEPTED] * 2
    assert count(db, "orders") == 2
    # Each order: SKU-1001 on its own line and once in KIT-1, SKU-1002 twice in KIT-1.
    assert [stock_row(db, sku)[1] for sku in ("SKU-1001", "SKU-1002")] == [4, 4]


def test_rows_given_by_their_orders_id_get_its_seq_in_the_given_order(db: Database) -> None:
    # A batch's lines and events are written with their order's id, and the statement looks up
    # its seq (bulk.KeyLookup): events keep the order they were given in (their seq orders a
    # watch), and an id found nowhere fails the statement rather than losing the row.
    principal = _fresh_catalog(db)
    stored = store_submissions(
        db,
        [
            prepare_submission(
                principal,
                request_id=str(uuid.uuid4()),
                payload=order_xml(f"K-{n}", [("SKU-1001", 1)]).encode(),
            )
            for n in range(2)
        ],
    )
    first, second = (outcome.order for outcome in stored if isinstance(outcome, SubmitResult))
    columns = ("id", "order_seq", "created_at", "actor", "type", "old_state", "new_state", "detail")
    insert = BulkInsert(
        t.order_events, columns, lookup=KeyLookup("order_seq", t.orders.c.id, t.orders.c.seq)
    )
    given = [
        (first.id, "note-1"),
        (second.id, "note-2"),
        (first.id, "note-3"),
        (second.id, "note-4"),
    ]
    now = datetime.now(UTC)
    with db.transaction() as tx, pipelined(tx):
        insert(
            tx,
            [
                (str(uuid.uuid4()), order, now, "test", "NOTE", None, "ACCEPTED", detail)
                for order, detail in given
            ],
        )
    e, o = t.order_events.c, t.orders.c
    with db.reader() as conn:
        written = conn.execute(
            select(o.id, e.detail)
            .join(t.orders, o.seq == e.order_seq)
            .where(e.type == "NOTE")
            .order_by(e.seq)
        ).all()
    assert [tuple(row) for row in written] == given

    with pytest.raises(IntegrityError), db.transaction() as tx, pipelined(tx):
        insert(
            tx, [(str(uuid.uuid4()), "no-such-order", now, "test", "NOTE", None, "ACCEPTED", "")]
        )
    with pytest.raises(ValueError, match="NOT NULL"):
        BulkInsert(
            t.stock_changes,
            stock_log._COLUMNS,
            lookup=KeyLookup("order_id", t.orders.c.id, t.orders.c.id),
        )


def test_submissions_waiting_together_share_one_transaction(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal = _fresh_catalog(db)
    batches: list[int] = []

    def counting(db: Database, batch: Sequence[PreparedSubmission]) -> list[Outcome]:
        batches.append(len(batch))
        return store_submissions(db, batch)

    monkeypatch.setattr(submit_queue, "store_submissions", counting)

    async def submit_ten() -> list[SubmitResult]:
        queue = SubmitQueue(db)
        try:
            return await asyncio.gather(*(queue.submit(p) for p in _new_orders(principal, 10)))
        finally:
            await queue.close()

    results = asyncio.run(submit_ten())
    assert batches == [10]
    assert [r.order.state for r in results] == [OrderState.ACCEPTED] * 10
    assert count(db, "orders") == 10


def test_a_call_cancelled_while_queued_is_not_stored(db: Database) -> None:
    principal = _fresh_catalog(db)
    withdrawn, kept = _new_orders(principal, 2)

    async def cancel_then_submit() -> SubmitResult:
        queue = SubmitQueue(db)
        try:
            first = asyncio.ensure_future(queue.submit(withdrawn))
            await asyncio.sleep(0)  # it runs up to its wait in the queue
            assert queue.waiting == 1
            first.cancel()  # the client went away before the batch was taken
            return await queue.submit(kept)
        finally:
            await queue.close()

    assert asyncio.run(cancel_then_submit()).order.state is OrderState.ACCEPTED
    assert count(db, "submissions") == 1
    assert count(db, "orders") == 1


def test_a_failed_write_turn_fails_its_calls_and_the_queue_goes_on(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal = _fresh_catalog(db)
    first, second = _new_orders(principal, 2)
    real_turn, turns = db.write_turn, [0]

    @asynccontextmanager
    async def failing_once() -> AsyncIterator[bool]:
        turns[0] += 1
        if turns[0] == 1:
            raise OSError("write-lock file not writable")
        async with real_turn() as holding:
            yield holding

    monkeypatch.setattr(db, "write_turn", failing_once)

    async def submit_both() -> SubmitResult:
        queue = SubmitQueue(db)
        try:
            with pytest.raises(OSError, match="not writable"):
                await asyncio.wait_for(queue.submit(first), timeout=10)
            return await asyncio.wait_for(queue.submit(second), timeout=10)
        finally:
            await queue.close()

    assert asyncio.run(submit_both()).order.state is OrderState.ACCEPTED
    assert count(db, "orders") == 1


def test_each_order_of_a_batch_is_stored_with_its_own_lines_and_events(db: Database) -> None:
    # The orders of a batch are inserted together and their lines and events attached by the
    # seq the database assigned each (looked up by the order's id in the same statement): a
    # mix-up would give an order another's lines.
    principal = _fresh_catalog(db)
    wanted = {
        "L-1": [("SKU-1001", 1)],
        "L-2": [("SKU-1002", 2), ("SKU-1001", 3)],
        "L-3": [("SKU-1002", 1), ("SKU-1001", 1), ("SKU-1002", 4)],
    }
    batch = [
        prepare_submission(
            principal, request_id=str(uuid.uuid4()), payload=order_xml(order_id, lines).encode()
        )
        for order_id, lines in wanted.items()
    ]
    answers = store_submissions(db, batch)

    with db.reader() as conn:
        for (order_id, lines), answer in zip(wanted.items(), answers, strict=True):
            assert isinstance(answer, SubmitResult)
            stored = orders.get_order(conn, client_id=None, order_id=answer.order.id)
            assert stored is not None
            assert stored.client_order_id == order_id
            assert [(line.sku, line.quantity) for line in stored.lines] == lines
            assert [event.new_state for event in stored.events] == [OrderState.ACCEPTED]
