"""`ordergate-client`: submit, inspect and work orders from a shell or a cron job.

The target and key come from --target/--api-key, or ORDERGATE_TARGET/ORDERGATE_API_KEY.

Exit codes (also in docs/sdk.md):
  0  done; every submitted order ACCEPTED
  1  done, but at least one submitted order is ON_HOLD (or a bulk item was refused, or a
     stock code is unknown, or an item has no price)
  2  usage error (bad arguments, unreadable file)
  3  the server refused the request (bad key, role, request_id reused, duplicate order ...)
  4  the server could not be reached or did not answer in time
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from . import __version__
from ._client import Client
from ._config import ConnectionConfig
from ._errors import (
    DeadlineExceededError,
    OrdergateError,
    PermissionDeniedError,
    UnavailableError,
)
from .v1 import inbound_service_pb2, order_pb2, return_service_pb2, webhook_service_pb2

EXIT_OK, EXIT_HELD, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4

# The RPCs each command calls; every RPC of the contract is here or in MACHINE_ONLY (a test
# checks), so that people who are not Python programmers can do everything staff do.
COMMAND_RPCS: dict[str, tuple[str, ...]] = {
    "submit": ("OrderService.SubmitOrder", "OrderService.SubmitOrders"),
    "get": ("OrderService.GetOrder",),
    "document": ("OrderService.GetOrderDocument",),
    "list": ("OrderService.ListOrders",),
    "events": ("OrderService.WatchOrderEvents",),
    "cancel": ("OrderService.CancelOrder",),
    "cancel-lines": ("OrderService.CancelOrderLines",),
    "list-held": ("ExceptionQueueService.ListHeldOrders", "OrderService.ListOrders"),
    "correct": ("ExceptionQueueService.CorrectOrder",),
    "release": ("ExceptionQueueService.ReleaseOrder",),
    "hold": ("ExceptionQueueService.HoldOrder",),
    "recheck": ("ExceptionQueueService.RecheckOrders",),
    "accept-short": ("ExceptionQueueService.AcceptShort",),
    "transition": ("FulfillmentService.TransitionOrder",),
    "ship": ("FulfillmentService.CreateShipment",),
    "update-shipment": ("FulfillmentService.UpdateShipment",),
    "stock": ("InventoryService.GetStockLevels",),
    "watch": ("InventoryService.WatchStockLevels",),
    "adjust-stock": ("InventoryService.AdjustStock",),
    "count": ("InventoryService.RecordStockCount",),
    "locations": ("InventoryService.ListLocations",),
    "prices": ("PricingService.GetCustomerPrices",),
    "credit-notes": ("PricingService.ListCreditNotes",),
    "audit": ("AuditService.ListAuditEntries",),
    "webhooks": tuple(
        f"WebhookService.{rpc}"
        for rpc in (
            "CreateWebhookEndpoint",
            "ListWebhookEndpoints",
            "UpdateWebhookEndpoint",
            "DeleteWebhookEndpoint",
            "RotateWebhookSecret",
            "ListWebhookDeliveries",
            "RedeliverWebhookEvents",
        )
    ),
    "reconcile": ("InventoryService.ReconcileStock",),
    "purchase-orders": tuple(
        f"InboundService.{rpc}"
        for rpc in (
            "CreatePurchaseOrder",
            "ListPurchaseOrders",
            "GetPurchaseOrder",
            "RecordReceipt",
            "ClosePurchaseOrder",
        )
    ),
    "returns": tuple(
        f"ReturnService.{rpc}"
        for rpc in ("CreateReturn", "ListReturns", "GetReturn", "ReceiveReturn", "TriageReturn")
    ),
}
# Machine-to-machine calls: the ERP pushes its catalog (or an admin loads it with `ordergate
# load` on the server), so they have no command here.
MACHINE_ONLY = frozenset(
    {
        "CatalogService.UpsertLocations",
        "CatalogService.UpsertProducts",
        "CatalogService.RenameSku",
        "CatalogService.UpsertCustomers",
        "CatalogService.UpsertPriceLists",
        "CatalogService.UpsertContractPrices",
        "CatalogService.UpsertCreditNotes",
    }
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordergate-client",
        description="Talk to an Ordergate server.",
        epilog="Environment: ORDERGATE_TARGET (host:port, default 127.0.0.1:50051) and "
        "ORDERGATE_API_KEY give --target and --api-key.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--target",
        default=os.environ.get("ORDERGATE_TARGET", "127.0.0.1:50051"),
        help="host:port (default: $ORDERGATE_TARGET, else 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ORDERGATE_API_KEY", ""),
        help="API key (default: $ORDERGATE_API_KEY)",
    )
    parser.add_argument("--tls", action="store_true", help="use TLS (system trust store)")
    parser.add_argument("--ca", type=Path, help="PEM file of the CA to trust (implies TLS)")
    parser.add_argument("--cert", type=Path, help="client certificate PEM for mutual TLS")
    parser.add_argument("--key", type=Path, help="client private key PEM for mutual TLS")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    parser.add_argument("--json", action="store_true", help="print results as JSON lines")
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="submit order files (one call each, or --bulk)")
    submit.add_argument("files", nargs="+", type=Path)
    submit.add_argument("--validate-only", action="store_true", help="check; store nothing")
    submit.add_argument("--bulk", action="store_true", help="send all files over one stream")
    submit.add_argument(
        "--on-behalf-of",
        default="",
        metavar="CLIENT",
        help="staff: enter the orders for this client (phone and e-mail orders: source MANUAL)",
    )

    get = commands.add_parser("get", help="show one order")
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", default="", help="the server's order id")
    which.add_argument("--order-id", default="", help="the shop's own order number")
    get.add_argument("--client", default="", help="with --order-id: this API client's")
    get.add_argument("--customer", default="", help="with --order-id: this buyer's")

    document = commands.add_parser("document", help="the document an order came from, as sent")
    document.add_argument("id", help="the server's order id")
    document.add_argument("--output", type=Path, help="write it here instead of to stdout")

    listing = commands.add_parser("list", help="list orders (all pages)")
    listing.add_argument("--state", help="e.g. ACCEPTED, ON_HOLD, PARTLY_DISPATCHED")
    listing.add_argument("--customer", default="", help="customer account")
    listing.add_argument("--client", default="", help="API client (staff)")
    listing.add_argument("--hold-reason", default="", help="held with this code")
    listing.add_argument("--source", help="API, FILE_DROP or MANUAL")
    listing.add_argument("--created-after", type=_moment, help="ISO time")
    listing.add_argument("--created-before", type=_moment, help="ISO time")
    listing.add_argument("--updated-after", type=_moment, help="ISO time")
    listing.add_argument("--updated-before", type=_moment, help="ISO time")

    held = commands.add_parser("list-held", help="orders on hold, oldest first, with their age")
    held.add_argument("--reason", default="", help="a hold reason code, e.g. PHONE_INVALID")
    held.add_argument("--customer", default="", help="customer account")
    held.add_argument("--client", default="", help="API client (staff)")
    held.add_argument("--min-age", type=_age, help="held at least this long: 30m, 4h, 2d")

    events = commands.add_parser("events", help="follow order events as they happen (Ctrl-C)")
    events.add_argument("--after", default="", help="resume after this event id")
    events.add_argument("--max-events", type=int, default=0, help="stop after this many")

    for name, what in (
        ("cancel", "cancel an order (ON_HOLD or ACCEPTED)"),
        ("release", "release a held order (manager): override, or lift a manual hold"),
        ("hold", "put an accepted order on a manual hold (manager)"),
        ("accept-short", "accept a stock-held order with what there is"),
    ):
        command = commands.add_parser(name, help=what)
        command.add_argument("id", help="the server's order id")
        command.add_argument("--reason", required=True)

    lines = commands.add_parser("cancel-lines", help="cancel lines or pieces: LINE=KEEP ...")
    lines.add_argument("id", help="the server's order id")
    lines.add_argument("lines", nargs="+", metavar="LINE=KEEP", help="pieces to keep (0: all)")
    lines.add_argument("--reason", required=True)

    correct = commands.add_parser("correct", help="replace a held order's document")
    correct.add_argument("id", help="the held order's server id")
    correct.add_argument("file", type=Path, help="the corrected document")

    recheck = commands.add_parser("recheck", help="re-check stock-held orders now")
    recheck.add_argument("id", nargs="?", default="", help="one order (default: all)")

    transition = commands.add_parser("transition", help="move an order on (warehouse)")
    transition.add_argument("id", help="the server's order id")
    transition.add_argument(
        "state", help="PICKING, PICKED, PACKED, DISPATCHED, DELIVERED, ACCEPTED"
    )
    transition.add_argument("--carrier", default="")
    transition.add_argument("--tracking", default="", help="tracking number")
    transition.add_argument("--delivered-at", type=_moment, help="ISO time (DELIVERED)")
    transition.add_argument("--note", default="", help="free text; the reason of an un-pick")

    ship = commands.add_parser("ship", help="record a shipment: [LINE=PIECES ...] (warehouse)")
    ship.add_argument("id", help="the server's order id")
    ship.add_argument("lines", nargs="*", metavar="LINE=PIECES", help="default: all left")
    ship.add_argument("--carrier", required=True)
    ship.add_argument("--tracking", default="", help="tracking number")
    ship.add_argument("--tracking-url", default="")
    ship.add_argument(
        "--without-tracking", action="store_true", help="handed over without a number"
    )

    update = commands.add_parser("update-shipment", help="shipment in transit, delivered, tracked")
    update.add_argument("shipment_id")
    update.add_argument("--state", help="IN_TRANSIT or DELIVERED")
    update.add_argument("--tracking", default="", help="a tracking number added later")
    update.add_argument("--tracking-url", default="")
    update.add_argument("--delivered-at", type=_moment, help="ISO time (DELIVERED)")

    stock = commands.add_parser("stock", help="live stock of SKUs, aliases or barcodes")
    stock.add_argument("codes", nargs="+")
    stock.add_argument("--location", action="append", default=[], help="only this location")

    watch = commands.add_parser("watch", help="stream live stock changes (Ctrl-C to stop)")
    watch.add_argument("codes", nargs="+")
    watch.add_argument("--location", action="append", default=[], help="only this location")
    watch.add_argument("--after", type=int, default=0, help="resume after this change id")
    watch.add_argument("--max-changes", type=int, default=0, help="stop after this many")

    adjust = commands.add_parser("adjust-stock", help="change on hand by a delta (manager)")
    adjust.add_argument("code")
    adjust.add_argument("location")
    adjust.add_argument("delta", type=int)
    adjust.add_argument("--reason-code", required=True, help="POS_SALE, DAMAGED, FOUND ...")
    adjust.add_argument("--note", default="")
    adjust.add_argument("--bucket", default="", help="quarantine (default: the sellable stock)")

    count = commands.add_parser("count", help="record a physical count (manager)")
    count.add_argument("code")
    count.add_argument("location")
    count.add_argument("counted", type=int)
    count.add_argument("--reason", required=True)
    count.add_argument("--bucket", default="", help="quarantine (default: the sellable stock)")

    reconcile = commands.add_parser(
        "reconcile", help="compare a warehouse count CSV (code,location,quantity) with ours"
    )
    reconcile.add_argument("file", type=Path, help="CSV with a header: code,location,quantity")
    reconcile.add_argument("--source", default="", help="where the counts come from")
    reconcile.add_argument("--threshold", type=float, default=0, help="percent (default: 5)")
    reconcile.add_argument("--dry-run", action="store_true", help="report; change nothing")

    pos = commands.add_parser("purchase-orders", help="purchase orders and receipts")
    po_actions = pos.add_subparsers(dest="action", required=True)
    po_create = po_actions.add_parser("create", help="a purchase order: CODE=QTY@YYYY-MM-DD ...")
    po_create.add_argument("po_number")
    po_create.add_argument("lines", nargs="+", metavar="CODE=QTY@DATE")
    po_create.add_argument("--supplier", required=True)
    po_create.add_argument("--location", required=True)
    po_create.add_argument("--notes", default="")
    po_list = po_actions.add_parser("list", help="purchase orders, newest first")
    po_list.add_argument("--state", default="", help="OPEN, PARTLY_RECEIVED, RECEIVED, CLOSED")
    po_list.add_argument("--supplier", default="")
    po_actions.add_parser("get", help="one purchase order").add_argument("po_number")
    po_receive = po_actions.add_parser("receive", help="a receipt: LINE=GOOD[+DAMAGED] ...")
    po_receive.add_argument("po_number")
    po_receive.add_argument("lines", nargs="+", metavar="LINE=GOOD[+DAMAGED]")
    po_receive.add_argument("--reason", default="", help="why more came (an over-receipt)")
    po_receive.add_argument("--note", default="")
    po_close = po_actions.add_parser("close", help="nothing more is expected")
    po_close.add_argument("po_number")
    po_close.add_argument("--reason", default="")

    rmas = commands.add_parser("returns", help="returns (RMAs) with triage")
    rma_actions = rmas.add_subparsers(dest="action", required=True)
    rma_create = rma_actions.add_parser("create", help="authorize a return: [LINE=QTY ...]")
    rma_create.add_argument("rma_id")
    rma_create.add_argument("order_id")
    rma_create.add_argument("lines", nargs="*", metavar="LINE=QTY", help="none: all shipped")
    rma_create.add_argument("--reason", required=True)
    rma_list = rma_actions.add_parser("list", help="returns, newest first")
    rma_list.add_argument("--state", default="", help="AUTHORIZED, RECEIVED, TRIAGED, COMPLETED")
    rma_list.add_argument("--order", default="", help="one order's (server id)")
    rma_get = rma_actions.add_parser("get", help="one return")
    rma_get.add_argument("rma_id")
    rma_get.add_argument("--client", default="")
    rma_receive = rma_actions.add_parser("receive", help="into quarantine: [LINE=QTY ...]")
    rma_receive.add_argument("rma_id")
    rma_receive.add_argument("location")
    rma_receive.add_argument("lines", nargs="*", metavar="LINE=QTY", help="none: all authorized")
    rma_receive.add_argument("--client", default="")
    rma_receive.add_argument("--note", default="")
    rma_triage = rma_actions.add_parser(
        "triage", help="LINE=RESTOCK|REWORK|DISPOSE[:QTY] ... (DISPOSE needs --reason)"
    )
    rma_triage.add_argument("rma_id")
    rma_triage.add_argument("decisions", nargs="+", metavar="LINE=DECISION[:QTY]")
    rma_triage.add_argument("--reason", default="")
    rma_triage.add_argument(
        "--withhold-credit", action="store_true", help="no credit for the disposed pieces"
    )
    rma_triage.add_argument("--client", default="")

    commands.add_parser("locations", help="stock locations in allocation priority order")

    prices = commands.add_parser("prices", help="a customer's prices: CODE=QUANTITY ...")
    prices.add_argument("customer")
    prices.add_argument("items", nargs="+", metavar="CODE=QUANTITY")

    notes = commands.add_parser("credit-notes", help="a customer's open credit notes")
    notes.add_argument("customer")

    audit = commands.add_parser("audit", help="the audit log, oldest first")
    audit.add_argument("--order", default="", help="entries about this order (server id)")
    audit.add_argument("--subject", default="", help="e.g. product/SKU-1001")
    audit.add_argument("--actor", default="", help="who")
    audit.add_argument("--since", type=_moment, help="ISO time")
    audit.add_argument("--until", type=_moment, help="ISO time")

    hooks = commands.add_parser("webhooks", help="webhook endpoints and their deliveries")
    actions = hooks.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register an endpoint; prints its secret once")
    create.add_argument("url")
    create.add_argument("--event", action="append", default=[], help="an event type (none: all)")
    create.add_argument("--description", default="")
    create.add_argument("--client", default="", help="admin: the client whose endpoint it is")
    actions.add_parser("list", help="the endpoints").add_argument("--client", default="")
    change = actions.add_parser("update", help="change an endpoint, or enable it again")
    change.add_argument("id")
    change.add_argument("--url")
    change.add_argument("--event", action="append", help="the event types, replacing them")
    change.add_argument("--description")
    change.add_argument("--enable", dest="enabled", action="store_true", default=None)
    change.add_argument("--disable", dest="enabled", action="store_false")
    actions.add_parser("delete", help="delete an endpoint").add_argument("id")
    rotate = actions.add_parser("rotate", help="a new secret; the old one signs on for a while")
    rotate.add_argument("id")
    rotate.add_argument("--overlap", type=_age, help="e.g. 24h, 30m, 0s (default 24h)")
    log = actions.add_parser("deliveries", help="deliveries, newest first, with each attempt")
    log.add_argument("--endpoint", default="")
    log.add_argument("--event", default="", help="one event's deliveries (its webhook-id)")
    log.add_argument("--state", default="", help="PENDING, DELIVERED or FAILED")
    log.add_argument("--limit", type=int, default=50)
    again = actions.add_parser("redeliver", help="send one event, or a time range, again")
    again.add_argument("endpoint")
    again.add_argument("--event", default="", help="the event's id (webhook-id)")
    again.add_argument("--since", type=_moment, help="ISO time")
    again.add_argument("--until", type=_moment, help="ISO time")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = ConnectionConfig(
        target=args.target,
        api_key=args.api_key,
        tls=args.tls,
        root_certificates=args.ca,
        certificate_chain=args.cert,
        private_key=args.key,
    )
    try:
        with Client(config, timeout=args.timeout) as client:
            return _COMMANDS[args.command](client, args)
    except (UnavailableError, DeadlineExceededError) as exc:
        print(f"error: cannot reach {args.target}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except OrdergateError as exc:
        _print_error(exc)
        return EXIT_REFUSED
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


# --- orders ---------------------------------------------------------------------------------


def _submit(client: Client, args: argparse.Namespace) -> int:
    for path in args.files:
        if not path.is_file():
            print(f"error: {path} is not a file", file=sys.stderr)
            return EXIT_USAGE
    exit_code = EXIT_OK
    if args.bulk:
        if args.on_behalf_of:
            print("error: --bulk is for a client's own orders", file=sys.stderr)
            return EXIT_USAGE
        results = client.submit_orders(args.files, validate_only=args.validate_only)
        for path, result in zip(args.files, results, strict=True):
            if result.error is not None:
                _print_error(result.error, path)
                exit_code = EXIT_HELD
                continue
            assert result.response is not None
            exit_code = max(exit_code, _show_submitted(path, result.response, args.json))
        return exit_code
    for path in args.files:
        reply = client.submit_order(
            path, validate_only=args.validate_only, on_behalf_of_client=args.on_behalf_of
        )
        exit_code = max(exit_code, _show_submitted(path, reply, args.json))
    return exit_code


def _get(client: Client, args: argparse.Namespace) -> int:
    order = client.get_order(
        id=args.id,
        client_order_id=args.order_id,
        client=args.client,
        customer_account=args.customer,
    )
    _show(order, args.json, detail=True)
    return EXIT_OK


def _document(client: Client, args: argparse.Namespace) -> int:
    found = client.get_order_document(args.id)
    if args.output:
        args.output.write_bytes(found.document)
    if args.json:
        shown = _dict(found)
        shown.pop("document", None)
        print(json.dumps(shown))
    elif not args.output:
        sys.stdout.buffer.write(found.document)
        sys.stdout.flush()
    return EXIT_OK


def _list(client: Client, args: argparse.Namespace) -> int:
    for order in client.iter_orders(
        state=args.state,
        customer_account=args.customer,
        client=args.client,
        hold_reason=args.hold_reason,
        source=args.source,
        created_after=args.created_after,
        created_before=args.created_before,
        updated_after=args.updated_after,
        updated_before=args.updated_before,
    ):
        _show(order, args.json)
    return EXIT_OK


def _list_held(client: Client, args: argparse.Namespace) -> int:
    """The exception queue (staff); a website key lists its own held orders instead."""
    now = datetime.now(UTC)
    for order in _held_orders(client, args, now):
        held_for = now - order.create_time.ToDatetime(tzinfo=UTC)
        if args.json:
            print(json.dumps({**_dict(order), "age_seconds": int(held_for.total_seconds())}))
        else:
            _show(order, False, prefix=f"{_duration(held_for):>7} ")
    return EXIT_OK


def _held_orders(
    client: Client, args: argparse.Namespace, now: datetime
) -> Iterator[order_pb2.Order]:
    token = ""
    try:
        while True:
            page = client.list_held_orders(
                reason_code=args.reason,
                customer_account=args.customer,
                client=args.client,
                min_age=args.min_age,
                page_token=token,
            )
            yield from page.orders
            token = page.next_page_token
            if not token:
                return
    except PermissionDeniedError as denied:
        if denied.reason != "ROLE_NOT_ALLOWED" or token:
            raise
    yield from client.iter_orders(
        state="ON_HOLD",
        customer_account=args.customer,
        client=args.client,
        hold_reason=args.reason,
        created_before=now - args.min_age if args.min_age else None,
    )


def _events(client: Client, args: argparse.Namespace) -> int:
    seen = 0
    try:
        for item in client.watch_order_events(after_event_id=args.after):
            if args.json:
                print(json.dumps(_dict(item)), flush=True)
            else:
                event = item.event
                print(
                    f"{event.id} {item.client}/{item.client_order_id or '-'} {event.type} "
                    f"{_state(event.new_state)} by {event.actor}: {event.detail}",
                    flush=True,
                )
            seen += 1
            if args.max_events and seen >= args.max_events:
                return EXIT_OK
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _cancel(client: Client, args: argparse.Namespace) -> int:
    return _done(client.cancel_order(args.id, args.reason), args)


def _cancel_lines(client: Client, args: argparse.Namespace) -> int:
    keep = _pairs(args.lines, "LINE=KEEP")
    return _done(client.cancel_order_lines(args.id, keep, args.reason), args)


def _correct(client: Client, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"error: {args.file} is not a file", file=sys.stderr)
        return EXIT_USAGE
    reply = client.correct_order(args.id, args.file)
    return _show_submitted(args.file, reply, args.json)


def _release(client: Client, args: argparse.Namespace) -> int:
    return _done(client.release_order(args.id, args.reason), args)


def _hold(client: Client, args: argparse.Namespace) -> int:
    return _done(client.hold_order(args.id, args.reason), args)


def _accept_short(client: Client, args: argparse.Namespace) -> int:
    return _done(client.accept_short(args.id, args.reason), args)


def _recheck(client: Client, args: argparse.Namespace) -> int:
    reply = client.recheck_orders(args.id)
    if args.json:
        print(json.dumps(_dict(reply)))
    else:
        print(f"re-checked {reply.checked}, accepted {len(reply.accepted_order_ids)}")
        for order_id in reply.accepted_order_ids:
            print(f"    {order_id} ACCEPTED")
    return EXIT_OK


# --- warehouse ------------------------------------------------------------------------------


def _transition(client: Client, args: argparse.Namespace) -> int:
    order = client.transition_order(
        args.id,
        args.state,
        carrier=args.carrier,
        tracking_number=args.tracking,
        delivery_time=args.delivered_at,
        note=args.note,
    )
    return _done(order, args)


def _ship(client: Client, args: argparse.Namespace) -> int:
    reply = client.create_shipment(
        args.id,
        args.carrier,
        tracking_number=args.tracking,
        tracking_url=args.tracking_url,
        without_tracking=args.without_tracking,
        lines=_pairs(args.lines, "LINE=PIECES") or None,
    )
    if args.json:
        print(json.dumps(_dict(reply)))
    else:
        print(f"shipment {reply.shipment.id}: {_state(reply.order.state)}")
    return EXIT_OK


def _update_shipment(client: Client, args: argparse.Namespace) -> int:
    reply = client.update_shipment(
        args.shipment_id,
        state=args.state,
        tracking_number=args.tracking,
        tracking_url=args.tracking_url,
        delivery_time=args.delivered_at,
    )
    if args.json:
        print(json.dumps(_dict(reply)))
    else:
        state = order_pb2.ShipmentState.Name(reply.shipment.state)
        print(
            f"shipment {reply.shipment.id}: {state.removeprefix('SHIPMENT_STATE_')}; "
            f"order {_state(reply.order.state)}"
        )
    return EXIT_OK


# --- stock ----------------------------------------------------------------------------------


def _stock(client: Client, args: argparse.Namespace) -> int:
    """Exit 1 when a code is unknown, so a script notices."""
    items = client.get_stock_levels(args.codes, location_codes=args.location)
    for item in items:
        if args.json:
            print(json.dumps(_dict(item)))
        elif not item.found:
            print(f"{item.requested_code}: unknown")
        else:
            where = " ".join(f"{x.location_code}={x.available}/{x.on_hand}" for x in item.locations)
            total = item.total
            extra = f"; quarantine {total.quarantine}" if total.quarantine else ""
            if total.on_order:
                extra += f"; on order {total.on_order} (first {total.next_expected_date})"
            print(
                f"{item.requested_code} ({item.sku}): available {total.available} [{where}]{extra}"
            )
    return EXIT_OK if all(item.found for item in items) else EXIT_HELD


def _watch(client: Client, args: argparse.Namespace) -> int:
    """Print the snapshot and then each change as it comes; resumes by itself on a dropped
    connection. --after resumes where an earlier run stopped (its last change id)."""
    seen = 0
    stream = client.watch_stock_levels(
        args.codes, location_codes=args.location, after_change_id=args.after
    )
    try:
        for message in stream:
            if args.json:
                print(json.dumps(_dict(message)), flush=True)
            elif message.WhichOneof("event") == "snapshot":
                for item in message.snapshot.items:
                    state = f"available {item.total.available}" if item.found else "unknown"
                    print(f"{item.requested_code}: {state}", flush=True)
                print(f"-- watching after change {message.snapshot.change_id}", flush=True)
            else:
                c = message.change
                print(
                    f"#{c.change_id} {c.sku}@{c.level.location_code} {c.kind}: "
                    f"available {c.level.available} (on hand {c.level.on_hand}, "
                    f"allocated {c.level.allocated})",
                    flush=True,
                )
            if message.WhichOneof("event") == "change":
                seen += 1
                if args.max_changes and seen >= args.max_changes:
                    return EXIT_OK
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _adjust_stock(client: Client, args: argparse.Namespace) -> int:
    reply = client.adjust_stock(
        args.code,
        args.location,
        args.delta,
        args.reason_code,
        note=args.note,
        bucket=args.bucket or None,
    )
    return _stock_changed(reply, args)


def _count(client: Client, args: argparse.Namespace) -> int:
    reply = client.record_stock_count(
        args.code, args.location, args.counted, args.reason, bucket=args.bucket or None
    )
    return _stock_changed(reply, args)


def _stock_changed(reply: Any, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(_dict(reply)))
        return EXIT_OK
    level = reply.level
    print(
        f"{args.code}@{args.location}: on hand {level.on_hand}, allocated {level.allocated}, "
        f"available {level.available}"
        + (f", quarantine {level.quarantine}" if level.quarantine else "")
        + (" (replayed)" if reply.replayed else "")
    )
    for order_id in reply.oversold_order_ids:
        print(f"    {order_id} left short: back in the queue (STOCK_SHORT)")
    return EXIT_OK


def _locations(client: Client, args: argparse.Namespace) -> int:
    token = ""
    while True:
        page = client.list_locations(page_token=token)
        for location in page.locations:
            if args.json:
                print(json.dumps(_dict(location)))
            else:
                print(f"{location.code} {location.name} (priority {location.priority})")
        token = page.next_page_token
        if not token:
            return EXIT_OK


# --- prices and audit -----------------------------------------------------------------------


def _prices(client: Client, args: argparse.Namespace) -> int:
    """Exit 1 when an item has no price (unknown product or no rule), so a script notices."""
    items = []
    for item in args.items:
        code, _, quantity = item.rpartition("=")
        if not code or not quantity.isdigit():
            print(f"error: {item!r} is not CODE=QUANTITY", file=sys.stderr)
            return EXIT_USAGE
        items.append((code, int(quantity)))
    reply = client.get_customer_prices(args.customer, items)
    for price in reply.items:
        if args.json:
            print(json.dumps(_dict(price)))
        elif price.priced:
            print(
                f"{price.requested_code} x{price.quantity}: {price.unit_price} {price.currency} "
                f"({price.rule})"
            )
        else:
            missing = "no price" if price.found else "unknown"
            print(f"{price.requested_code} x{price.quantity}: {missing}")
    return EXIT_OK if all(price.priced for price in reply.items) else EXIT_HELD


def _credit_notes(client: Client, args: argparse.Namespace) -> int:
    token = ""
    while True:
        page = client.list_credit_notes(args.customer, page_token=token)
        for note in page.credit_notes:
            if args.json:
                print(json.dumps(_dict(note)))
            else:
                print(f"{note.id}: {note.remaining} of {note.amount} {note.currency}")
        if not token and not args.json:
            for balance in page.balances:
                print(f"    open: {balance.remaining} {balance.currency}")
        token = page.next_page_token
        if not token:
            return EXIT_OK


def _audit(client: Client, args: argparse.Namespace) -> int:
    token = ""
    while True:
        page = client.list_audit_entries(
            order_id=args.order,
            subject=args.subject,
            actor=args.actor,
            start_time=args.since,
            end_time=args.until,
            page_token=token,
        )
        for entry in page.entries:
            if args.json:
                print(json.dumps(_dict(entry)))
            else:
                when = entry.create_time.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")
                why = f": {entry.reason}" if entry.reason else ""
                print(f"{when} {entry.actor} ({entry.role}) {entry.action} {entry.subject}{why}")
        token = page.next_page_token
        if not token:
            return EXIT_OK


def _webhooks(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "create":
        made = client.create_webhook_endpoint(
            args.url, args.event, description=args.description, client=args.client
        )
        if args.json:
            print(json.dumps({"endpoint": _dict(made.endpoint), "secret": made.secret}))
        else:
            print(f"{made.endpoint.id} {made.endpoint.url}")
            print(f"signing secret (shown this once): {made.secret}")
    elif action == "list":
        for endpoint in client.list_webhook_endpoints(client=args.client):
            _show_endpoint(endpoint, args.json)
    elif action == "update":
        _show_endpoint(
            client.update_webhook_endpoint(
                args.id,
                url=args.url,
                event_types=args.event,
                description=args.description,
                enabled=args.enabled,
            ),
            args.json,
        )
    elif action == "delete":
        client.delete_webhook_endpoint(args.id)
    elif action == "rotate":
        rotated = client.rotate_webhook_secret(args.id, overlap=args.overlap)
        if args.json:
            print(json.dumps({"endpoint": _dict(rotated.endpoint), "secret": rotated.secret}))
        else:
            print(f"new signing secret (shown this once): {rotated.secret}")
    elif action == "deliveries":
        page = client.list_webhook_deliveries(
            endpoint_id=args.endpoint,
            event_id=args.event,
            state=args.state or 0,
            page_size=args.limit,
        )
        for delivery in page.deliveries:
            if args.json:
                print(json.dumps(_dict(delivery)))
                continue
            state = webhook_service_pb2.WebhookDeliveryState.Name(delivery.state)
            state = state.removeprefix("WEBHOOK_DELIVERY_STATE_")
            print(f"{delivery.event_id} {delivery.event_type} -> {delivery.endpoint_id}: {state}")
            for attempt in delivery.attempts:
                answer = attempt.status_code or attempt.error
                print(f"    #{attempt.number} {answer} in {attempt.latency_ms} ms")
    elif action == "redeliver":
        count = client.redeliver_webhook_events(
            args.endpoint, event_id=args.event, start_time=args.since, end_time=args.until
        )
        print(json.dumps({"events": count}) if args.json else f"{count} event(s) queued again")
    return EXIT_OK


# --- goods in: reconciliation, purchase orders, returns ---------------------------------------


def _reconcile(client: Client, args: argparse.Namespace) -> int:
    """Exit 1 when a count diverges beyond the threshold, so a script notices."""
    with args.file.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    try:
        counts = [(r["code"], r["location"], int(r["quantity"])) for r in rows]
    except (KeyError, TypeError, ValueError):
        print(f"error: {args.file} needs the columns code,location,quantity", file=sys.stderr)
        return EXIT_USAGE
    reply = client.reconcile_stock(
        counts, source=args.source, threshold_percent=args.threshold, dry_run=args.dry_run
    )
    if args.json:
        print(json.dumps(_dict(reply)))
    else:
        for d in reply.differences:
            flag = "  DIVERGED" if d.diverged else ""
            print(
                f"{d.sku}@{d.location_code}: ours {d.ours}, theirs {d.theirs} "
                f"({d.difference:+d}, {d.percent:.1f}%){flag}"
            )
        verb = "would be" if reply.dry_run else "were"
        print(
            f"{reply.compared} compared, {len(reply.differences)} differ, {reply.diverged} "
            f"beyond {reply.threshold_percent:g}%; stock counts {verb} applied"
            if not reply.dry_run
            else f"{reply.compared} compared, {len(reply.differences)} differ, "
            f"{reply.diverged} beyond {reply.threshold_percent:g}% (dry run: nothing changed)"
        )
        for order_id in reply.oversold_order_ids:
            print(f"    {order_id} left short: back in the queue (STOCK_SHORT)")
    return EXIT_HELD if reply.diverged else EXIT_OK


def _line_values(items: Sequence[str], shape: str) -> list[tuple[int, str]]:
    """LINE=VALUE arguments as (line, value); ValueError (exit 2) for anything else."""
    found = []
    for item in items:
        line, _, value = item.partition("=")
        if not line.isdigit() or not value:
            raise ValueError(f"{item!r} is not {shape}")
        found.append((int(line), value))
    return found


def _quantities(items: Sequence[str]) -> dict[int, int] | None:
    return _pairs(items, "LINE=QTY") or None


def _purchase_orders(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "create":
        lines = []
        for item in args.lines:
            code, _, rest = item.partition("=")
            quantity, _, expected = rest.partition("@")
            if not code or not quantity.isdigit() or not expected:
                print(f"error: {item!r} is not CODE=QTY@YYYY-MM-DD", file=sys.stderr)
                return EXIT_USAGE
            lines.append((code, int(quantity), expected))
        created = client.create_purchase_order(
            args.po_number, args.supplier, args.location, lines, notes=args.notes
        )
        _show_po(created.purchase_order, args.json, replayed=created.replayed)
    elif action == "list":
        token = ""
        while True:
            page = client.list_purchase_orders(
                state=args.state or None, supplier=args.supplier, page_token=token
            )
            for order in page.purchase_orders:
                _show_po(order, args.json, brief=True)
            token = page.next_page_token
            if not token:
                break
    elif action == "get":
        _show_po(client.get_purchase_order(args.po_number), args.json)
    elif action == "receive":
        received = []
        for line, value in _line_values(args.lines, "LINE=GOOD[+DAMAGED]"):
            good, _, damaged = value.partition("+")
            if not good.isdigit() or not (damaged or "0").isdigit():
                print(f"error: {line}={value} is not LINE=GOOD[+DAMAGED]", file=sys.stderr)
                return EXIT_USAGE
            received.append((line, int(good), int(damaged or 0)))
        reply = client.record_receipt(
            args.po_number, received, note=args.note, variance_reason=args.reason
        )
        if not args.json:
            print(f"receipt {reply.receipt.receipt_id}" + (" (replayed)" if reply.replayed else ""))
        _show_po(reply.purchase_order, args.json)
    elif action == "close":
        _show_po(client.close_purchase_order(args.po_number, args.reason), args.json)
    return EXIT_OK


def _show_po(order: Any, as_json: bool, *, replayed: bool = False, brief: bool = False) -> None:
    if as_json:
        print(json.dumps(_dict(order)))
        return
    state = inbound_service_pb2.PurchaseOrderState.Name(order.state).removeprefix(
        "PURCHASE_ORDER_STATE_"
    )
    print(
        f"{order.po_number} {state} from {order.supplier} to {order.location_code}"
        + (" (replayed)" if replayed else "")
    )
    if brief:
        return
    for line in order.lines:
        print(
            f"    line {line.line_number}: {line.sku} x{line.quantity} due {line.expected_date}, "
            f"received {line.received_quantity}, damaged {line.damaged_quantity}, "
            f"open {line.open_quantity}"
        )
    for v in order.variances:
        print(f"    {v.kind} line {v.line_number} x{v.quantity} by {v.actor}: {v.reason}")


def _returns(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "create":
        reply = client.create_return(
            args.rma_id, args.order_id, args.reason, lines=_quantities(args.lines)
        )
        _show_rma(reply.rma, args.json, replayed=reply.replayed)
    elif action == "list":
        token = ""
        while True:
            page = client.list_returns(
                state=args.state or None, order_id=args.order, page_token=token
            )
            for found in page.returns:
                _show_rma(found, args.json, brief=True)
            token = page.next_page_token
            if not token:
                break
    elif action == "get":
        _show_rma(client.get_return(args.rma_id, client=args.client), args.json)
    elif action == "receive":
        found = client.receive_return(
            args.rma_id,
            args.location,
            lines=_quantities(args.lines),
            client=args.client,
            note=args.note,
        )
        _show_rma(found, args.json)
    elif action == "triage":
        decisions = []
        for line, value in _line_values(args.decisions, "LINE=DECISION[:QTY]"):
            decision, _, quantity = value.partition(":")
            if (
                decision.upper() not in ("RESTOCK", "REWORK", "DISPOSE")
                or not (quantity or "0").isdigit()
            ):
                print(f"error: {line}={value} is not LINE=DECISION[:QTY]", file=sys.stderr)
                return EXIT_USAGE
            decisions.append(
                return_service_pb2.TriageLine(
                    line_number=line,
                    decision=return_service_pb2.TriageDecision.Value(
                        f"TRIAGE_DECISION_{decision.upper()}"
                    ),
                    quantity=int(quantity or 0),
                    reason=args.reason,
                    withhold_credit=args.withhold_credit and decision.upper() == "DISPOSE",
                )
            )
        _show_rma(client.triage_return(args.rma_id, decisions, client=args.client), args.json)
    return EXIT_OK


def _show_rma(found: Any, as_json: bool, *, replayed: bool = False, brief: bool = False) -> None:
    if as_json:
        print(json.dumps(_dict(found)))
        return
    state = return_service_pb2.ReturnState.Name(found.state).removeprefix("RETURN_STATE_")
    credit = f", credit note {found.credit_note_id}" if found.credit_note_id else ""
    print(
        f"{found.rma_id} {state} ({found.client}, order {found.client_order_id or found.order_id})"
        f"{credit}" + (" (replayed)" if replayed else "")
    )
    if brief:
        return
    for line in found.lines:
        print(
            f"    line {line.line_number}: {line.sku} x{line.quantity}, received "
            f"{line.received_quantity}: awaiting {line.awaiting_triage}, rework {line.in_rework}, "
            f"restocked {line.restocked}, disposed {line.disposed}"
        )


def _show_endpoint(endpoint: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_dict(endpoint)))
        return
    types = ",".join(endpoint.event_types) or "all events"
    state = "enabled" if endpoint.enabled else f"DISABLED ({endpoint.disabled_reason})"
    print(f"{endpoint.id} {endpoint.url} [{types}] {state}")


_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "submit": _submit,
    "get": _get,
    "document": _document,
    "list": _list,
    "list-held": _list_held,
    "events": _events,
    "cancel": _cancel,
    "cancel-lines": _cancel_lines,
    "correct": _correct,
    "release": _release,
    "hold": _hold,
    "recheck": _recheck,
    "accept-short": _accept_short,
    "transition": _transition,
    "ship": _ship,
    "update-shipment": _update_shipment,
    "stock": _stock,
    "watch": _watch,
    "adjust-stock": _adjust_stock,
    "count": _count,
    "locations": _locations,
    "prices": _prices,
    "credit-notes": _credit_notes,
    "audit": _audit,
    "webhooks": _webhooks,
    "reconcile": _reconcile,
    "purchase-orders": _purchase_orders,
    "returns": _returns,
}


# --- output ---------------------------------------------------------------------------------


def _done(order: order_pb2.Order, args: argparse.Namespace) -> int:
    """Show an order after a change; exit 1 when it is (still, or now) on hold."""
    _show(order, args.json, detail=True)
    return EXIT_HELD if order.state == order_pb2.ORDER_STATE_ON_HOLD else EXIT_OK


def _show_submitted(path: Path, reply: Any, as_json: bool) -> int:
    order = reply.order
    if as_json:
        print(json.dumps({"file": str(path), **_dict(reply)}))
    else:
        replay = " (replayed)" if reply.replayed else ""
        print(
            f"{path}: {_state(order.state)}{replay} id={order.id} order_id={order.client_order_id}"
        )
        for reason in order.hold_reasons:
            print(f"    {reason.code} {reason.field}: {reason.message}")
    return EXIT_HELD if order.state == order_pb2.ORDER_STATE_ON_HOLD else EXIT_OK


def _show(order: order_pb2.Order, as_json: bool, *, detail: bool = False, prefix: str = "") -> None:
    if as_json:
        print(json.dumps(_dict(order)))
        return
    print(
        f"{prefix}{order.id} {order.client_order_id or '-'} {_state(order.state)} "
        f"client={order.client} customer={order.customer_account or '-'} lines={len(order.lines)}"
    )
    for reason in order.hold_reasons:
        print(f"    {reason.code} {reason.field}: {reason.message}")
    if detail:
        for line in order.lines:
            notes = [
                f"cancelled {line.cancelled_quantity}" if line.cancelled_quantity else "",
                f"shipped {line.shipped_quantity}" if line.shipped_quantity else "",
            ]
            extra = ", ".join(n for n in notes if n)
            print(
                f"    line {line.line_number}: {line.sku or line.submitted_code} x{line.quantity}"
                + (f" ({extra})" if extra else "")
            )
        for shipment in order.shipments:
            state = order_pb2.ShipmentState.Name(shipment.state).removeprefix("SHIPMENT_STATE_")
            print(
                f"    shipment {shipment.id}: {shipment.carrier} "
                f"{shipment.tracking_number or '(no tracking yet)'} {state}"
            )


def _print_error(error: OrdergateError, path: Path | None = None) -> None:
    where = f"{path}: " if path else ""
    print(f"{where}refused: {error.code.name} {error.reason}: {error.message}", file=sys.stderr)
    for violation in error.field_violations:
        print(f"    {violation.field}: {violation.description}", file=sys.stderr)


def _state(value: int) -> str:
    return order_pb2.OrderState.Name(value).removeprefix("ORDER_STATE_")  # type: ignore[arg-type]


def _dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _pairs(items: Sequence[str], shape: str) -> dict[int, int]:
    """LINE=N arguments as {line: n}; ValueError (exit 2) for anything else."""
    pairs = {}
    for item in items:
        left, _, right = item.partition("=")
        if not left.isdigit() or not right.isdigit():
            raise ValueError(f"{item!r} is not {shape}")
        pairs[int(left)] = int(right)
    return pairs


_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _age(text: str) -> timedelta:
    match = _AGE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 30m, 4h or 2d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes // (24 * 60)}d{minutes // 60 % 24:02d}h"


if __name__ == "__main__":
    sys.exit(main())
