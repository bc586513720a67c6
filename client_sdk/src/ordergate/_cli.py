"""`ordergate-client`: submit and inspect orders from a shell or a cron job.

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
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from ._client import Client
from ._config import ConnectionConfig
from ._errors import DeadlineExceededError, OrdergateError, UnavailableError
from .v1 import order_pb2

EXIT_OK, EXIT_HELD, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordergate-client", description="Talk to an Ordergate server."
    )
    parser.add_argument(
        "--target", default=os.environ.get("ORDERGATE_TARGET", "127.0.0.1:50051"), help="host:port"
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

    get = commands.add_parser("get", help="show one order")
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", default="", help="the server's order id")
    which.add_argument("--order-id", default="", help="your own order id")

    listing = commands.add_parser("list", help="list orders (all pages)")
    listing.add_argument("--state", help="e.g. ACCEPTED, ON_HOLD")
    listing.add_argument("--customer", default="", help="customer account")

    commands.add_parser("list-held", help="list orders on hold, oldest first")

    prices = commands.add_parser("prices", help="a customer's prices: CODE=QUANTITY ...")
    prices.add_argument("customer")
    prices.add_argument("items", nargs="+", metavar="CODE=QUANTITY")

    watch = commands.add_parser("watch", help="stream live stock changes (Ctrl-C to stop)")
    watch.add_argument("codes", nargs="+")
    watch.add_argument("--location", action="append", default=[], help="only this location")
    watch.add_argument("--after", type=int, default=0, help="resume after this change id")
    watch.add_argument("--max-changes", type=int, default=0, help="stop after this many")

    stock = commands.add_parser("stock", help="live stock of SKUs, aliases or barcodes")
    stock.add_argument("codes", nargs="+")
    stock.add_argument("--location", action="append", default=[], help="only this location")
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
            return _run(client, args)
    except (UnavailableError, DeadlineExceededError) as exc:
        print(f"error: cannot reach {args.target}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except OrdergateError as exc:
        _print_error(exc)
        return EXIT_REFUSED
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(client: Client, args: argparse.Namespace) -> int:
    if args.command == "submit":
        return _submit(client, args)
    if args.command == "prices":
        return _prices(client, args)
    if args.command == "watch":
        return _watch(client, args)
    if args.command == "stock":
        return _stock(client, args)
    if args.command == "get":
        _show(client.get_order(id=args.id, client_order_id=args.order_id), args.json)
        return EXIT_OK
    state = "ON_HOLD" if args.command == "list-held" else args.state
    for order in client.iter_orders(state=state, customer_account=getattr(args, "customer", "")):
        _show(order, args.json)
    return EXIT_OK


def _submit(client: Client, args: argparse.Namespace) -> int:
    for path in args.files:
        if not path.is_file():
            print(f"error: {path} is not a file", file=sys.stderr)
            return EXIT_USAGE
    exit_code = EXIT_OK
    if args.bulk:
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
        reply = client.submit_order(path, validate_only=args.validate_only)
        exit_code = max(exit_code, _show_submitted(path, reply, args.json))
    return exit_code


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
            print(f"{item.requested_code} ({item.sku}): available {item.total.available} [{where}]")
    return EXIT_OK if all(item.found for item in items) else EXIT_HELD


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


def _show(order: order_pb2.Order, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_dict(order)))
        return
    print(
        f"{order.id} {order.client_order_id or '-'} {_state(order.state)} "
        f"customer={order.customer_account or '-'} lines={len(order.lines)}"
    )
    for reason in order.hold_reasons:
        print(f"    {reason.code} {reason.field}: {reason.message}")


def _print_error(error: OrdergateError, path: Path | None = None) -> None:
    where = f"{path}: " if path else ""
    print(f"{where}refused: {error.code.name} {error.reason}: {error.message}", file=sys.stderr)
    for violation in error.field_violations:
        print(f"    {violation.field}: {violation.description}", file=sys.stderr)


def _state(value: int) -> str:
    return order_pb2.OrderState.Name(value).removeprefix("ORDER_STATE_")  # type: ignore[arg-type]


def _dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


if __name__ == "__main__":
    sys.exit(main())
