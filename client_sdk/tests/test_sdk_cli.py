"""`ordergate-client` against a live server: output and exit codes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sdk_support import EXAMPLES, DemoServer, order_xml

CLI = str(Path(sys.executable).parent / "ordergate-client")


def run(demo: DemoServer, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "--target", demo.target, "--api-key", demo.key if key is None else key, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, name: str, xml: str) -> str:
    path = tmp_path / name
    path.write_text(xml, encoding="utf-8")
    return str(path)


def test_submit_accepted_exits_0_and_held_exits_1(demo: DemoServer, tmp_path: Path) -> None:
    good = write(tmp_path, "good.xml", order_xml(f"CLI-{uuid.uuid4().hex[:6]}"))
    accepted = run(demo, "submit", good)
    assert accepted.returncode == 0, accepted.stderr
    assert "ACCEPTED" in accepted.stdout

    held = run(demo, "submit", good, str(EXAMPLES / "invalid" / "unknown-sku.xml"))
    assert held.returncode == 1
    assert "(replayed)" in held.stdout  # the same file again: same derived request_id
    assert "SKU_UNKNOWN lines[1].sku" in held.stdout


def test_json_output_is_one_object_per_file(demo: DemoServer, tmp_path: Path) -> None:
    path = write(tmp_path, "j.xml", order_xml(f"CLI-{uuid.uuid4().hex[:6]}"))
    result = run(demo, "--json", "submit", path)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    document = json.loads(line)
    assert document["file"] == path
    assert document["order"]["state"] == "ORDER_STATE_ACCEPTED"

    got = run(demo, "--json", "get", "--id", document["order"]["id"])
    assert json.loads(got.stdout)["id"] == document["order"]["id"]


def test_bulk_and_list_held(demo: DemoServer, tmp_path: Path) -> None:
    held_id = f"CLI-H-{uuid.uuid4().hex[:6]}"
    files = [
        write(tmp_path, "a.xml", order_xml(f"CLI-{uuid.uuid4().hex[:6]}")),
        write(tmp_path, "b.xml", order_xml(held_id, sku="NOPE")),
    ]
    bulk = run(demo, "submit", "--bulk", *files)
    assert bulk.returncode == 1
    assert bulk.stdout.count("ACCEPTED") == 1
    listed = run(demo, "list-held")
    assert listed.returncode == 0
    assert held_id in listed.stdout


def test_refused_exits_3_and_says_why(demo: DemoServer, tmp_path: Path) -> None:
    path = write(tmp_path, "x.xml", order_xml("CLI-X"))
    result = run(demo, "submit", path, key="og_0000_wrong")
    assert result.returncode == 3
    assert "UNAUTHENTICATED API_KEY_INVALID" in result.stderr


def test_unreachable_exits_4(tmp_path: Path) -> None:
    path = write(tmp_path, "x.xml", order_xml("CLI-Y"))
    result = subprocess.run(
        [CLI, "--target", "127.0.0.1:9", "--timeout", "2", "submit", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4
    assert "cannot reach 127.0.0.1:9" in result.stderr


def test_usage_errors_exit_2(demo: DemoServer, tmp_path: Path) -> None:
    assert run(demo, "submit", str(tmp_path / "missing.xml")).returncode == 2
    assert run(demo, "frobnicate").returncode == 2


def test_stock_prints_levels_and_flags_unknown_codes(demo: DemoServer) -> None:
    known = run(demo, "stock", "CUP-SET-6", "--location", "STORE-BER")
    assert known.returncode == 0, known.stderr
    assert "CUP-SET-6 (SKU-1001): available" in known.stdout
    assert "STORE-BER=" in known.stdout
    assert "WH-MAIN" not in known.stdout
    unknown = run(demo, "--json", "stock", "SKU-1002", "NOPE")
    assert unknown.returncode == 1
    assert [json.loads(line).get("found", False) for line in unknown.stdout.splitlines()] == [
        True,
        False,
    ]


def test_prices_prints_each_item_and_flags_missing_ones(demo: DemoServer) -> None:
    priced = run(demo, "prices", "C-1001", "SKU-1001=12", "CUP-SET-6=1")
    assert priced.returncode == 0, priced.stderr
    assert "SKU-1001 x12: 29.50 EUR (price list EU-B2B, from 12 pieces)" in priced.stdout
    missing = run(demo, "prices", "C-1001", "NOPE=1")
    assert missing.returncode == 1
    assert "NOPE x1: unknown" in missing.stdout
    assert run(demo, "prices", "C-1001", "SKU-1001").returncode == 2


def test_watch_prints_the_snapshot_and_a_change(demo: DemoServer, tmp_path: Path) -> None:
    watcher = subprocess.Popen(
        [
            CLI,
            "--target",
            demo.target,
            "--api-key",
            demo.key,
            "watch",
            "SKU-1004",
            "--max-changes",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    lines = [watcher.stdout.readline(), watcher.stdout.readline()]
    assert lines[0].startswith("SKU-1004: available ")
    assert lines[1].startswith("-- watching after change ")
    order = write(tmp_path, "w.xml", order_xml(f"CLI-W-{uuid.uuid4().hex[:6]}", quantity=2))
    assert run(demo, "submit", order).returncode == 0
    rest, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0
    assert "SKU-1004@WH-MAIN ALLOCATION" in rest


def test_every_rpc_has_a_command_or_is_machine_only() -> None:
    """People who are not Python programmers can do everything staff do, from a shell."""
    from test_sdk_surface import all_rpcs

    from ordergate._cli import COMMAND_RPCS, MACHINE_ONLY, _parser

    covered = {rpc for rpcs in COMMAND_RPCS.values() for rpc in rpcs}
    every = {name.removeprefix("ordergate.v1.") for name in all_rpcs()}
    assert every - covered - MACHINE_ONLY == set()
    assert covered | MACHINE_ONLY <= every  # nothing named that does not exist
    [commands] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(COMMAND_RPCS) == set(commands.choices)


def test_a_held_order_worked_from_the_shell(demo: DemoServer, tmp_path: Path) -> None:
    """Submit (website), find it in the queue with its age, fetch its document, correct it,
    and cancel a line of another one (manager): every step a command with --json."""
    held_id = f"CLI-Q-{uuid.uuid4().hex[:6]}"
    held_file = write(tmp_path, "held.xml", order_xml(held_id, sku="NOPE"))
    assert run(demo, "submit", held_file).returncode == 1
    listed = run(
        demo,
        "--json",
        "list-held",
        "--reason",
        "SKU_UNKNOWN",
        "--min-age",
        "0m",
        key=demo.manager_key,
    )
    assert listed.returncode == 0, listed.stderr
    [entry] = [
        json.loads(line)
        for line in listed.stdout.splitlines()
        if json.loads(line)["client_order_id"] == held_id
    ]
    assert entry["age_seconds"] >= 0
    order_id = entry["id"]
    plain = run(demo, "list-held", "--reason", "SKU_UNKNOWN", key=demo.manager_key)
    assert f"{order_id} {held_id} ON_HOLD" in plain.stdout
    assert run(demo, "list-held", "--reason", "NO_SUCH_CODE", key=demo.manager_key).returncode == 3

    document = run(demo, "document", order_id, key=demo.manager_key)
    assert document.returncode == 0, document.stderr
    assert document.stdout == Path(held_file).read_text()
    fixed = write(tmp_path, "fixed.xml", document.stdout.replace("NOPE", "SKU-1001"))
    corrected = run(demo, "correct", order_id, fixed, key=demo.manager_key)
    assert corrected.returncode == 0, corrected.stderr
    assert "ACCEPTED" in corrected.stdout

    two_lines = write(
        tmp_path,
        "two.xml",
        order_xml(f"CLI-L-{uuid.uuid4().hex[:6]}", quantity=3).replace(
            "</Lines>",
            "<Line><LineNumber>2</LineNumber><Sku>SKU-1002</Sku><Quantity>1</Quantity></Line>"
            "</Lines>",
        ),
    )
    submitted = run(demo, "--json", "submit", two_lines)
    assert submitted.returncode == 0, submitted.stderr
    two_id = json.loads(submitted.stdout)["order"]["id"]
    cut = run(
        demo,
        "--json",
        "cancel-lines",
        two_id,
        "1=1",
        "2=0",
        "--reason",
        "customer called",
        key=demo.manager_key,
    )
    assert cut.returncode == 0, cut.stderr
    lines = json.loads(cut.stdout)["lines"]
    assert [(line["line_number"], line.get("cancelled_quantity", "0")) for line in lines] == [
        (1, "2"),
        (2, "1"),
    ]
    audit = run(demo, "audit", "--order", two_id, key=demo.manager_key)
    assert "order.cancel_lines" in audit.stdout


def test_webhooks_from_the_shell(demo: DemoServer, tmp_path: Path) -> None:
    """Register a local receiver (the demo allows loopback targets), get an order's event,
    read the delivery log, send the event again, rotate the secret, delete the endpoint."""
    import http.server
    import threading

    bodies: list[bytes] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        made = run(demo, "--json", "webhooks", "create", url, "--event", "order.accepted")
        assert made.returncode == 0, made.stderr
        created = json.loads(made.stdout)
        assert created["secret"].startswith("whsec_")
        endpoint = created["endpoint"]["id"]
        order_id = f"CLI-H-{uuid.uuid4().hex[:6]}"
        assert run(demo, "submit", write(tmp_path, "h.xml", order_xml(order_id))).returncode == 0

        # The demo server is shared: other tests' orders of the moment may come too.
        def ours() -> list[dict[str, Any]]:
            events = [json.loads(body) for body in list(bodies)]
            return [e for e in events if e["data"]["order"]["clientOrderId"] == order_id]

        deadline = time.monotonic() + 30
        while not ours() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ours()[0]["type"] == "order.accepted"

        log = run(demo, "webhooks", "deliveries", "--endpoint", endpoint, "--state", "delivered")
        assert log.returncode == 0, log.stderr
        assert "order.accepted" in log.stdout
        assert "#1 204" in log.stdout
        event_id = log.stdout.split()[0]
        again = run(demo, "webhooks", "redeliver", endpoint, "--event", event_id)
        assert again.stdout.strip() == "1 event(s) queued again"
        rotated = run(demo, "webhooks", "rotate", endpoint, "--overlap", "1h")
        assert "whsec_" in rotated.stdout
        listed = run(demo, "webhooks", "list")
        assert endpoint in listed.stdout
        assert "[order.accepted] enabled" in listed.stdout
        assert run(demo, "webhooks", "delete", endpoint).returncode == 0
        assert endpoint not in run(demo, "webhooks", "list").stdout
    finally:
        server.shutdown()


def test_goods_in_from_the_shell(demo: DemoServer, tmp_path: Path) -> None:
    """A purchase order received short with a damaged piece and closed; a shipped order
    returned, received and triaged; a warehouse count reconciled as a dry run."""
    po = f"PO-{uuid.uuid4().hex[:6]}"
    created = run(
        demo,
        "purchase-orders",
        "create",
        po,
        "SKU-1005=10@2026-12-20",
        "--supplier",
        "Porzellan AG",
        "--location",
        "WH-MAIN",
        key=demo.admin_key,
    )
    assert created.returncode == 0, created.stderr
    assert f"{po} OPEN from Porzellan AG to WH-MAIN" in created.stdout
    stock = run(demo, "stock", "SKU-1005")
    assert "on order 10 (first 2026-12-20)" in stock.stdout
    received = run(demo, "purchase-orders", "receive", po, "1=6+1", key=demo.warehouse_key)
    assert received.returncode == 0, received.stderr
    assert "PARTLY_RECEIVED" in received.stdout
    assert "DAMAGED line 1 x1" in received.stdout
    assert "quarantine 1" in run(demo, "stock", "SKU-1005").stdout
    closed = run(
        demo,
        "--json",
        "purchase-orders",
        "close",
        po,
        "--reason",
        "rest cancelled",
        key=demo.admin_key,
    )
    assert closed.returncode == 0, closed.stderr
    variances = json.loads(closed.stdout)["variances"]
    assert [(v["kind"], v["quantity"]) for v in variances] == [("DAMAGED", "1"), ("UNDER", "3")]
    assert (
        po in run(demo, "purchase-orders", "list", "--state", "CLOSED", key=demo.admin_key).stdout
    )

    order_id = f"CLI-R-{uuid.uuid4().hex[:6]}"
    submitted = run(
        demo, "--json", "submit", write(tmp_path, "r.xml", order_xml(order_id, quantity=3))
    )
    server_id = json.loads(submitted.stdout)["order"]["id"]
    for state in ("PICKING", "PICKED", "PACKED"):
        assert run(demo, "transition", server_id, state, key=demo.warehouse_key).returncode == 0
    shipped = run(
        demo, "ship", server_id, "--carrier", "DHL", "--tracking", "JJD0001", key=demo.warehouse_key
    )
    assert shipped.returncode == 0, shipped.stderr
    rma = f"RMA-{uuid.uuid4().hex[:6]}"
    too_many = run(demo, "returns", "create", rma, server_id, "1=4", "--reason", "too many")
    assert too_many.returncode == 3
    assert "RETURN_EXCEEDS_SHIPPED" in too_many.stderr
    authorized = run(demo, "returns", "create", rma, server_id, "1=2", "--reason", "too many")
    assert authorized.returncode == 0, authorized.stderr
    assert f"{rma} AUTHORIZED" in authorized.stdout
    got = run(demo, "returns", "receive", rma, "WH-MAIN", key=demo.warehouse_key)
    assert "RECEIVED" in got.stdout, got.stderr
    triaged = run(
        demo,
        "returns",
        "triage",
        rma,
        "1=RESTOCK:1",
        "1=DISPOSE:1",
        "--reason",
        "chipped",
        key=demo.warehouse_key,
    )
    assert triaged.returncode == 0, triaged.stderr
    assert f"{rma} COMPLETED" in triaged.stdout
    assert "credit note RMA-" in triaged.stdout

    counts = tmp_path / "counts.csv"
    counts.write_text("code,location,quantity\nSKU-1001,WH-MAIN,1\nSKU-1002,WH-MAIN,300\n")
    report = run(
        demo, "reconcile", str(counts), "--dry-run", "--source", "stocktake", key=demo.admin_key
    )
    assert report.returncode == 1, report.stderr  # a divergence
    assert "SKU-1001@WH-MAIN" in report.stdout
    assert "DIVERGED" in report.stdout
    assert "dry run: nothing changed" in report.stdout
