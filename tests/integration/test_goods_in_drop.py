"""Goods-in CSV files in the drop folders, on SQLite and PostgreSQL: purchase orders, receipts
and returns with the partners' columns, applied whole or not at all (bad rows named by line and
column), exactly once across a poller killed between the commit and the move, as the folder's
client with its role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from ordergate.v1 import order_pb2
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, order_xml
from .goods_in import level
from .stock import stock_row
from .test_file_drop import _drop_root, _names, _poller, _result
from .test_shipments import _packed, _ship

PO_CSV = """order-id,sku,quantity,delivery-date,special-notes
PO-100,SKU-2001,10,2026-12-20,fragile
PO-100,SKU-1003,5,2026-12-22,
PO-101,SKU-1002,7,2027-01-05,pallet
"""


def _count(db: Database, table: str) -> int:
    with db.reader() as conn:
        return int(
            conn.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one()
        )


def test_purchase_orders_then_receipts_from_the_erp_folder(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "ops-admin")
    inbox = root / "ops-admin" / "inbox"
    (inbox / "po.csv").write_text(PO_CSV)
    assert (_poller(db, root).run_due().processed, _count(db, "purchase_orders")) == (1, 2)
    report = _result(root / "ops-admin" / "processed" / "po.csv")
    assert report["kind"] == "purchase_orders"
    assert [(a["order-id"], a["rows"], a["state"]) for a in report["applied"]] == [
        ("PO-100", [2, 3], "OPEN"),
        ("PO-101", [4], "OPEN"),
    ]
    assert stock_row(db, "SKU-2001") == (25, 0)
    with db.reader() as conn:
        on_order = conn.execute(
            select(t.stock.c.on_order, t.stock.c.next_expected).where(
                t.stock.c.sku == "SKU-2001", t.stock.c.location == "WH-MAIN"
            )
        ).one()
    assert tuple(on_order) == (10, "2026-12-20")

    (inbox / "receipts.csv").write_text(
        "order-id,sku,received,damaged,variance-reason\n"
        "PO-100,SKU-2001,9,1,\n"
        "PO-100,SKU-1003,6,0,one extra in the carton\n"
    )
    assert _poller(db, root).run_due().processed == 1
    assert stock_row(db, "SKU-2001") == (34, 0)
    assert stock_row(db, "SKU-1003") == (46, 0)
    [applied] = _result(root / "ops-admin" / "processed" / "receipts.csv")["applied"]
    assert (applied["order-id"], applied["state"]) == ("PO-100", "RECEIVED")
    with db.reader() as conn:
        kinds = sorted(conn.execute(select(t.purchase_order_variances.c.kind)).scalars())
    assert kinds == ["DAMAGED", "OVER"]


def test_a_bad_row_refuses_the_whole_file_by_line_and_column(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "ops-admin")
    inbox = root / "ops-admin" / "inbox"
    (inbox / "typo.csv").write_text(PO_CSV.replace("PO-100,SKU-1003,5,", "PO-100,SKU-1003,five,"))
    (inbox / "unknown.csv").write_text(PO_CSV.replace("SKU-1002", "SKU-NOPE"))
    (inbox / "date.csv").write_text(PO_CSV.replace("2027-01-05", "05.01.2027"))
    (inbox / "header.csv").write_text("order,sku,qty\nPO-1,SKU-1001,1\n")
    summary = _poller(db, root).run_due()
    assert (summary.processed, summary.problem) == (0, 4)
    problem = root / "ops-admin" / "problem"
    expected = {
        "typo.csv": (3, "quantity", "VALUE_INVALID"),
        "unknown.csv": (4, "sku", "PRODUCT_NOT_FOUND"),
        "date.csv": (4, "delivery-date", "DATE_INVALID"),
        "header.csv": (1, "", "HEADER_INVALID"),
    }
    for name, (line, column, reason) in expected.items():
        [found] = _result(problem / name)["problems"]
        assert (found["line"], found["column"], found["reason"]) == (line, column, reason), name
    # PO-100 of unknown.csv and date.csv was fine: nothing of a bad file is applied.
    assert _count(db, "purchase_orders") == 0
    assert _count(db, "imported_files") == 0  # a fixed copy may be dropped again


def test_a_role_that_may_not_gets_a_problem_file(db: Database, keys: Keys, tmp_path: Path) -> None:
    root = _drop_root(tmp_path, "shop-a")
    (root / "shop-a" / "inbox" / "po.csv").write_text(PO_CSV)
    assert _poller(db, root).run_due().problem == 1
    [found] = _result(root / "shop-a" / "problem" / "po.csv")["problems"]
    assert found["reason"] == "ROLE_NOT_ALLOWED"
    assert _count(db, "purchase_orders") == 0


def test_returns_from_the_shops_and_the_warehouses_folders(
    api: Api, db: Database, keys: Keys, tmp_path: Path
) -> None:
    order = api.submit(order_xml("SHOP-7", [("SKU-1002", 3), ("SKU-1003", 2)])).order
    assert order.state == order_pb2.ORDER_STATE_ACCEPTED
    _packed(api, keys, order.id)
    _ship(api, keys, order.id, tracking_number="00340434161094042557")
    root = _drop_root(tmp_path, "shop-a", "ops-admin")
    # The shop authorizes (no disposition); the original order by the shop's own number.
    (root / "shop-a" / "inbox" / "rma.csv").write_text(
        "return-id,original-order-id,reason,disposition,line,quantity\n"
        "RMA-7,SHOP-7,wrong size,,1,2\n"
    )
    # The warehouse (the ERP's admin client) receives and restocks a return it took in itself.
    # (Folders are taken by name: ops-admin's first.) Line 2 without pieces: all of it.
    (root / "ops-admin" / "inbox" / "returns.csv").write_text(
        "return-id,original-order-id,reason,disposition,line,quantity\n"
        f"WH-RMA-8,{order.id},damaged box,RESTOCK,1,1\n"
        f"WH-RMA-8,{order.id},damaged box,RESTOCK,2,\n"
    )
    summary = _poller(db, root).run_due()
    assert (summary.processed, summary.problem) == (2, 0)
    [authorized] = _result(root / "shop-a" / "processed" / "rma.csv")["applied"]
    assert (authorized["return-id"], authorized["state"]) == ("RMA-7", "AUTHORIZED")
    [restocked] = _result(root / "ops-admin" / "processed" / "returns.csv")["applied"]
    assert restocked["state"] == "COMPLETED"
    assert restocked["credit_note_id"].startswith("RMA-")
    # WH-RMA-8 restocked line 1's one piece and line 2's two.
    assert level(api, keys.admin, "SKU-1002").on_hand == 300 - 3 + 1
    assert level(api, keys.admin, "SKU-1003").on_hand == 40 - 2 + 2
    # More than shipped from a file: refused by line, nothing applied.
    (root / "shop-a" / "inbox" / "again.csv").write_text(
        "return-id,original-order-id,reason,disposition,line,quantity\nRMA-9,SHOP-7,again,,1,1\n"
    )
    assert _poller(db, root).run_due().problem == 1
    [found] = _result(root / "shop-a" / "problem" / "again.csv")["problems"]
    assert (found["line"], found["reason"]) == (2, "RETURN_EXCEEDS_SHIPPED")
    assert _count(db, "returns") == 2


def test_a_copy_of_an_applied_file_is_answered_not_applied(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "ops-admin")
    inbox = root / "ops-admin" / "inbox"
    (inbox / "po.csv").write_text(PO_CSV)
    _poller(db, root).run_due()
    (inbox / "po-again.csv").write_text(PO_CSV)
    assert _poller(db, root).run_due().processed == 1
    report = _result(root / "ops-admin" / "processed" / "po-again.csv")
    assert report["copy_of"]["file"] == "po.csv"
    assert _count(db, "purchase_orders") == 2


_KILLED_RUN = """
import os, signal, sys
from ordergate_server.filedrop import poller
from ordergate_server.cli import main

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "before-move":  # the file is applied and committed, still in the inbox
    poller.move_out = die
sys.exit(main(sys.argv[2:]))
"""


def test_a_poller_killed_between_commit_and_move_applies_the_file_once(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "ops-admin")
    inbox = root / "ops-admin" / "inbox"
    (inbox / "po.csv").write_text(PO_CSV)
    (inbox / "receipts.csv").write_text("order-id,sku,received\nPO-100,SKU-2001,4\n")
    url = db.engine.url.render_as_string(hide_password=False)
    args = ["--database-url", url, "import-dir", str(root), "--once", "--settle-seconds", "0"]

    def run(kill_at: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", _KILLED_RUN, kill_at, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    killed = run("before-move")
    assert killed.returncode == -9, killed.stderr
    assert (inbox / "po.csv").exists()
    assert _count(db, "purchase_orders") == 2  # committed
    killed_again = run("before-move")  # po.csv answered from the record; receipts.csv applied
    assert killed_again.returncode == -9, killed_again.stderr
    restarted = run("none")
    assert restarted.returncode == 0, restarted.stderr
    assert _names(inbox) == []
    assert _count(db, "purchase_orders") == 2
    assert _count(db, "receipts") == 1
    assert stock_row(db, "SKU-2001") == (29, 0)  # received once
    assert _result(root / "ops-admin" / "processed" / "po.csv")["copy_of"]["file"] == "po.csv"


def test_the_erp_folder_still_leaves_order_xml_alone(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    root = _drop_root(tmp_path, "ops-admin")
    (root / "ops-admin" / "inbox" / "o.xml").write_text(order_xml("F-41"))
    _poller(db, root).run_due()
    assert (root / "ops-admin" / "inbox" / "o.xml").exists()
