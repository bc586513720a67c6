"""The file-drop channel on real folders and both databases: completeness, results, exactly-once
across a killed poller, batches, the stock snapshot, and the poller inside `serve`."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc
from ordergate_server.domain.access import Principal, Role
from ordergate_server.filedrop import DropSettings, FilePoller
from ordergate_server.service.exception_queue import list_held_orders
from ordergate_server.storage import Database, catalog
from ordergate_server.storage import tables as t

from ..support import Keys, ServerThread, auth, order_xml, scrape, wait_until

NATIVE_NS = "urn:ordergate:order:v1"


def _drop_root(tmp_path: Path, *clients: str) -> Path:
    root = tmp_path / "drop"
    for client in clients:
        (root / client / "inbox").mkdir(parents=True)
    return root


def _poller(db: Database, root: Path, *, settle: float = 0.0, **extra: object) -> FilePoller:
    return FilePoller(db, DropSettings(root=root, settle_seconds=settle, **extra))  # type: ignore[arg-type]


def _order_count(db: Database) -> int:
    with db.reader() as conn:
        return int(conn.execute(select(func.count()).select_from(t.orders)).scalar_one())


def _result(path: Path) -> Any:
    """The result file next to `path`, as parsed JSON."""
    return json.loads(path.with_name(path.name + ".result.json").read_text())


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


_MANAGER = Principal(0, "floor-manager", Role.MANAGER)


def test_accepted_held_and_unreadable_files_are_sorted_with_result_files(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "shop-a")
    inbox = root / "shop-a" / "inbox"
    (inbox / "good.xml").write_text(order_xml("F-1"))
    (inbox / "unknown-sku.xml").write_text(order_xml("F-2", [("NOPE-1", 1)]))
    (inbox / "broken.xml").write_bytes(b"<Order xmlns='urn:ordergate:order:v1'><OrderId>F-3")

    summary = _poller(db, root).run_due()

    assert (summary.processed, summary.problem) == (1, 2)
    assert _names(inbox) == []
    assert _names(root / "shop-a" / "processed") == ["good.xml", "good.xml.result.json"]
    problem = root / "shop-a" / "problem"
    assert _names(problem) == [
        "broken.xml",
        "broken.xml.result.json",
        "unknown-sku.xml",
        "unknown-sku.xml.result.json",
    ]
    good = _result(root / "shop-a" / "processed" / "good.xml")
    assert good["client"] == "shop-a"
    [order] = good["orders"]
    assert order["order_id"] == "F-1"
    assert order["state"] == "ACCEPTED"
    assert order["hold_reasons"] == []
    [held] = _result(problem / "unknown-sku.xml")["orders"]
    assert held["state"] == "ON_HOLD"
    assert [r["code"] for r in held["hold_reasons"]] == ["SKU_UNKNOWN"]
    [unreadable] = _result(problem / "broken.xml")["orders"]
    assert unreadable["state"] == "ON_HOLD"
    assert unreadable["hold_reasons"][0]["code"] == "XML_MALFORMED"
    # The file's bytes are kept as dropped.
    assert (problem / "broken.xml").read_bytes().endswith(b"<OrderId>F-3")

    # Held orders from files are in the exception queue like any other.
    held_orders, _ = list_held_orders(db, _MANAGER)
    assert {o.id for o in held_orders} == {held["ordergate_id"], unreadable["ordergate_id"]}
    assert all(o.client == "shop-a" for o in held_orders)


def test_only_complete_files_are_taken(db: Database, keys: Keys, tmp_path: Path) -> None:
    root = _drop_root(tmp_path, "shop-a")
    inbox = root / "shop-a" / "inbox"
    (inbox / "fresh.xml").write_text(order_xml("F-10"))
    (inbox / "marked.xml").write_text(order_xml("F-11"))
    (inbox / "marked.xml.done").write_text("")
    for temp_name in ("upload.xml.part", "upload.xml.filepart", ".upload.xml.Xy12Z", "a.tmp"):
        (inbox / temp_name).write_text(order_xml("F-12"))
    old = inbox / "old.xml"
    old.write_text(order_xml("F-13"))
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    summary = _poller(db, root, settle=600).run_due()

    # marked.xml: done-marker; old.xml: unchanged for longer than the settle time.
    assert _names(root / "shop-a" / "processed") == [
        "marked.xml",
        "marked.xml.done",
        "marked.xml.result.json",
        "old.xml",
        "old.xml.result.json",
    ]
    assert summary.waiting == 1
    assert _names(inbox) == sorted(
        ["fresh.xml", "upload.xml.part", "upload.xml.filepart", ".upload.xml.Xy12Z", "a.tmp"]
    )
    assert _order_count(db) == 2


def test_a_file_still_being_written_is_taken_once_whole(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "shop-a")
    path = root / "shop-a" / "inbox" / "slow.xml"
    document = order_xml("F-20", [("SKU-1001", 1), ("SKU-1002", 2)]).encode()
    size = len(document) // 20 + 1
    chunks = [document[i : i + size] for i in range(0, len(document), size)]

    def upload() -> None:
        with open(path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                out.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=upload)
    poller = _poller(db, root, settle=1.0)
    writer.start()
    deadline = time.monotonic() + 30
    while path.exists() or writer.is_alive():
        assert time.monotonic() < deadline, "the file was never taken"
        poller.poll_inboxes()
        time.sleep(0.05)
    writer.join()

    taken = root / "shop-a" / "processed" / "slow.xml"
    assert taken.read_bytes() == document
    [order] = _result(taken)["orders"]
    assert order["state"] == "ACCEPTED"
    assert _order_count(db) == 1


def test_a_batch_file_reports_each_order(db: Database, keys: Keys, tmp_path: Path) -> None:
    root = _drop_root(tmp_path, "shop-a")
    orders = [
        order_xml("B-1"),
        order_xml("B-2", [("NOPE-9", 1)]),
        order_xml("B-3", [("SKU-1002", 3)]),
    ]
    bodies = "".join(o.split("?>", 1)[1] for o in orders)
    (root / "shop-a" / "inbox" / "batch.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><Orders xmlns="{NATIVE_NS}">{bodies}</Orders>'
    )

    _poller(db, root).run_due()

    report = _result(root / "shop-a" / "problem" / "batch.xml")
    assert [(o["position"], o["order_id"], o["state"]) for o in report["orders"]] == [
        (1, "B-1", "ACCEPTED"),
        (2, "B-2", "ON_HOLD"),
        (3, "B-3", "ACCEPTED"),
    ]
    assert _order_count(db) == 3


def test_an_empty_batch_or_an_oversize_file_is_set_aside_with_its_reason(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "shop-a")
    inbox = root / "shop-a" / "inbox"
    (inbox / "empty.xml").write_text(f'<Orders xmlns="{NATIVE_NS}"/>')
    (inbox / "huge.xml").write_bytes(b"<Orders>" + b" " * 5000 + b"</Orders>")

    _poller(db, root, max_file_bytes=4096).run_due()

    problem = root / "shop-a" / "problem"
    assert _result(problem / "empty.xml")["error"]["reason"] == "EMPTY_BATCH"
    assert _result(problem / "huge.xml")["error"]["reason"] == "FILE_TOO_LARGE"
    assert _order_count(db) == 0


def test_the_same_file_dropped_again_creates_nothing_new(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "shop-a")
    inbox = root / "shop-a" / "inbox"
    poller = _poller(db, root)
    (inbox / "o.xml").write_text(order_xml("F-30"))
    poller.run_due()
    (inbox / "o.xml").write_text(order_xml("F-30"))
    poller.poll_inboxes()

    processed = root / "shop-a" / "processed"
    assert len([n for n in _names(processed) if n.endswith(".xml")]) == 2
    [copy] = [p for p in processed.glob("o-*.xml")]
    assert _result(copy)["copy_of"]["file"] == "o.xml"
    assert _order_count(db) == 1


def test_a_folder_without_a_website_client_is_left_alone(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "nobody", "ops-admin")  # ops-admin exists but is not a website
    for client in ("nobody", "ops-admin"):
        (root / client / "inbox" / "o.xml").write_text(order_xml("F-40"))

    _poller(db, root).run_due()

    assert (root / "nobody" / "inbox" / "o.xml").exists()
    assert (root / "ops-admin" / "inbox" / "o.xml").exists()
    assert _order_count(db) == 0


# --- exactly once across a killed poller ---

_KILLED_RUN = """
import os, signal, sys
from ordergate_server.filedrop import poller
from ordergate_server.service import file_import
from ordergate_server.cli import main

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

where = sys.argv[1]
if where == "before-move":  # the orders are committed, the file is still in the inbox
    poller.move_out = die
elif where == "mid-batch":  # the first order of the batch is committed, the second not
    real_submit = file_import.submit_order
    calls = []
    def submit_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            die()
        return real_submit(*args, **kwargs)
    file_import.submit_order = submit_then_die
sys.exit(main(sys.argv[2:]))
"""


def _run_poller(db: Database, root: Path, kill_at: str = "") -> subprocess.CompletedProcess[str]:
    url = db.engine.url.render_as_string(hide_password=False)
    args = ["--database-url", url, "import-dir", str(root), "--once", "--settle-seconds", "0"]
    command = [sys.executable, "-c", _KILLED_RUN, kill_at or "none", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("kill_at", ["before-move", "mid-batch"])
def test_a_poller_killed_mid_import_imports_each_order_once_on_restart(
    db: Database, keys: Keys, tmp_path: Path, kill_at: str
) -> None:
    root = _drop_root(tmp_path, "shop-a")
    bodies = "".join(order_xml(f"K-{n}").split("?>", 1)[1] for n in (1, 2))
    (root / "shop-a" / "inbox" / "k.xml").write_text(
        f'<Orders xmlns="{NATIVE_NS}">{bodies}</Orders>'
    )

    killed = _run_poller(db, root, kill_at)
    assert killed.returncode == -9, killed.stderr
    assert (root / "shop-a" / "inbox" / "k.xml").exists()  # not moved: will be read again
    assert _order_count(db) == (2 if kill_at == "before-move" else 1)

    restarted = _run_poller(db, root)
    assert restarted.returncode == 0, restarted.stderr
    assert "1 processed, 0 problem" in restarted.stdout
    assert _names(root / "shop-a" / "inbox") == []
    report = _result(root / "shop-a" / "processed" / "k.xml")
    assert [(o["order_id"], o["state"]) for o in report["orders"]] == [
        ("K-1", "ACCEPTED"),
        ("K-2", "ACCEPTED"),
    ]
    assert _order_count(db) == 2
    with db.reader() as conn:
        allocated = conn.execute(
            select(t.stock.c.allocated).where(
                t.stock.c.sku == "SKU-1001", t.stock.c.location == "WH-MAIN"
            )
        ).scalar_one()
    assert allocated == 2  # each order allocated once


# --- a backlog ---


def test_a_backlog_of_a_thousand_files_is_imported_in_one_pass(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "shop-a")
    inbox = root / "shop-a" / "inbox"
    for n in range(1000):
        (inbox / f"order-{n:04}.xml").write_text(order_xml(f"BL-{n}", [("SKU-1004", 1)]))

    summary = _poller(db, root).run_due()

    assert (summary.processed, summary.problem) == (1000, 0)
    assert _names(inbox) == []
    assert len(list((root / "shop-a" / "processed").glob("*.xml"))) == 1000
    assert _order_count(db) == 1000


# --- outbound: the stock snapshot ---


def test_the_stock_snapshot_is_written_whole_with_a_timestamped_name(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    poller = FilePoller(db, DropSettings(root=None, outbox=outbox, snapshot_seconds=3600))

    summary = poller.run_due()

    assert summary.snapshot is not None
    assert _names(outbox) == [summary.snapshot.name]  # no temporary file left behind
    assert summary.snapshot.name.startswith("stock-")
    assert summary.snapshot.name.endswith("Z.csv")
    with summary.snapshot.open() as f:
        rows = list(csv.DictReader(f))
    with db.reader() as conn:
        expected = catalog.all_stock_rows(conn)
    assert [
        (r["sku"], r["location"], r["on_hand"], r["allocated"], r["available"], r["quarantine"])
        for r in rows
    ] == [
        (
            s.sku,
            s.location,
            str(s.on_hand),
            str(s.allocated),
            str(s.on_hand - s.allocated),
            str(s.quarantine),
        )
        for s in expected
    ]
    assert ("SKU-1001", "WH-MAIN", "500") in {(r["sku"], r["location"], r["on_hand"]) for r in rows}
    assert poller.run_due().snapshot is None  # not due again for an hour


# --- inside serve ---


def test_serve_polls_drop_folders_when_configured(
    db: Database, keys: Keys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ordergate_server")
    root = _drop_root(tmp_path, "shop-a")
    server = ServerThread(
        db,
        import_dir=str(root),
        import_poll_seconds=0.1,
        import_settle_seconds=0.0,
        metrics_listen="127.0.0.1:0",
    )
    try:
        # Upload under a temporary name, then rename: with no settle time, a file written in
        # place could be taken half-written (docs/file-drop.md).
        _upload(root / "shop-a" / "inbox" / "s.xml", order_xml("S-1"))
        taken = root / "shop-a" / "processed" / "s.xml"
        deadline = time.monotonic() + 20
        while not taken.with_name("s.xml.result.json").exists():
            assert time.monotonic() < deadline, f"serve never took the file; log:\n{caplog.text}"
            time.sleep(0.05)
        [order] = _result(taken)["orders"]
        with grpc.insecure_channel(server.target) as channel:
            got = order_service_pb2_grpc.OrderServiceStub(channel).GetOrder(
                pb.GetOrderRequest(id=order["ordergate_id"]), metadata=auth(keys.shop)
            )
        assert got.order.client_order_id == "S-1"

        _upload(root / "shop-a" / "inbox" / "bad.xml", "<order>not closed")
        files = "ordergate_file_drop_files_total"
        wait_until(
            lambda: scrape(server).get((files, (("outcome", "problem"),))) == 1,
            "counted the problem file",
        )
        assert scrape(server)[(files, (("outcome", "processed"),))] == 1
    finally:
        server.stop()


def test_import_dir_polls_until_sigterm(db: Database, keys: Keys, tmp_path: Path) -> None:
    root = _drop_root(tmp_path, "shop-a")
    url = db.engine.url.render_as_string(hide_password=False)
    command = [
        *(sys.executable, "-m", "ordergate_server.cli", "--database-url", url, "import-dir"),
        *(str(root), "--poll-seconds", "0.1", "--settle-seconds", "0"),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as poller:
        try:
            assert poller.stdout is not None
            assert poller.stdout.readline().startswith(f"polling {root} every 0.1s")
            # Upload under a temporary name, then rename: with no settle time, a file written in
            # place could be taken half-written (docs/file-drop.md).
            _upload(root / "shop-a" / "inbox" / "p.xml", order_xml("P-1"))
            result = root / "shop-a" / "processed" / "p.xml.result.json"
            deadline = time.monotonic() + 20
            while not result.exists():
                assert time.monotonic() < deadline, "the running poller never took the file"
                time.sleep(0.05)
            poller.send_signal(signal.SIGTERM)
            assert poller.wait(timeout=20) == 0
        finally:
            poller.kill()
    assert _order_count(db) == 1


def _upload(path: Path, text: str) -> None:
    """What a careful SFTP client does: write a temporary name, rename when complete."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    partial.rename(path)


def test_an_oversize_file_is_set_aside_unread(db: Database, keys: Keys, tmp_path: Path) -> None:
    root = _drop_root(tmp_path, "shop-a")
    content = b"<Orders>" + b" " * 5000 + b"</Orders>"
    (root / "shop-a" / "inbox" / "big.xml").write_bytes(content)

    _poller(db, root, max_file_bytes=4096).run_due()

    kept = root / "shop-a" / "problem" / "big.xml"
    assert kept.read_bytes() == content
    report = _result(kept)
    assert report["sha256"] == ""  # never read, so never hashed
    assert report["error"]["message"] == f"The file is {len(content)} bytes; the limit is 4096."
