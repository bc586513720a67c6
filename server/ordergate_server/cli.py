"""`ordergate serve | migrate | keys create|list|revoke|rotate | load | import-dir`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .config import Settings
from .demo import DEMO_CATALOG, DEMO_CLIENT
from .domain.access import Role
from .filedrop import DropSettings, FilePoller
from .service import api_keys
from .service.auth import create_api_key
from .service.catalog_load import KINDS, CatalogFileError, load_catalog, read_catalog_file
from .service.errors import ServiceError
from .storage import Database, open_database
from .workers import run_workers

DEMO_DATABASE = Path(".ordergate") / "demo.sqlite3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ordergate", description="Ordergate order-ingestion server"
    )
    parser.add_argument("--database-url", help="overrides ORDERGATE_DATABASE_URL")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and serve gRPC")
    serve.add_argument("--listen", help="host:port (overrides ORDERGATE_LISTEN)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help=f"start on a fresh SQLite file ({DEMO_DATABASE}) with demo data and print a demo key",
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port (default: one per CPU; ORDERGATE_WORKERS)",
    )
    serve.add_argument(
        "--import-dir",
        help="also poll this drop root for order files (overrides ORDERGATE_IMPORT_DIR)",
    )

    commands.add_parser("migrate", help="bring the database schema up to date")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--client", required=True, help="client name; created if new")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--label", default="", help="a note on what the key is for")
    create.add_argument("--expires-in-days", type=float, help="the key stops working after this")
    create.add_argument(
        "--allow-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="only accept the key from this network (repeatable), e.g. 203.0.113.0/24",
    )
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--client", default="", help="only this client's keys")
    revoke = key_commands.add_parser("revoke", help="revoke a key now")
    revoke.add_argument("key_id", help="the id part of og_<id>_<secret>")
    revoke.add_argument("--reason", default="", help="recorded in the audit log")
    rotate = key_commands.add_parser(
        "rotate", help="replace a key; the old one works for the overlap, then expires"
    )
    rotate.add_argument("key_id", help="the id part of og_<id>_<secret>")
    rotate.add_argument(
        "--overlap-hours", type=float, default=24.0, help="how long both keys work (default 24)"
    )

    load = commands.add_parser("load", help="load locations, products, stock, customers")
    load.add_argument("file", type=Path, help="a .json file, or a .csv file of one kind")
    load.add_argument("--kind", choices=KINDS, help="what a CSV file holds (default: its name)")

    import_dir = commands.add_parser(
        "import-dir",
        help="import order files dropped in client folders (see docs/file-drop.md)",
    )
    import_dir.add_argument("root", type=Path, help="drop root: <root>/<client>/inbox/*.xml")
    import_dir.add_argument("--once", action="store_true", help="one pass, then exit")
    import_dir.add_argument("--poll-seconds", type=float, help="seconds between passes")
    import_dir.add_argument(
        "--settle-seconds", type=float, help="age at which a file without a done-marker is taken"
    )
    import_dir.add_argument("--snapshot-dir", help="write stock snapshot CSVs to this folder")
    import_dir.add_argument("--snapshot-seconds", type=float, help="seconds between snapshots")

    args = parser.parse_args(argv)
    demo = args.command == "serve" and args.demo
    try:
        settings = Settings.from_env(
            database_url=f"sqlite:///{DEMO_DATABASE}" if demo else args.database_url,
            listen=getattr(args, "listen", None),
            import_dir=str(args.root)
            if args.command == "import-dir"
            else args.import_dir
            if args.command == "serve"
            else None,
            workers=getattr(args, "workers", None),
            import_poll_seconds=getattr(args, "poll_seconds", None),
            import_settle_seconds=getattr(args, "settle_seconds", None),
            stock_snapshot_dir=getattr(args, "snapshot_dir", None),
            stock_snapshot_seconds=getattr(args, "snapshot_seconds", None),
        )
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if demo:
        for leftover in DEMO_DATABASE.parent.glob(DEMO_DATABASE.name + "*"):
            leftover.unlink()
    try:
        db = open_database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            read_threads=settings.db_read_threads,
            pii_key=settings.pii_key,
        )
    except ValueError as exc:  # a malformed ORDERGATE_PII_KEY
        parser.error(str(exc))
    try:
        return _run(args, settings, db, demo)
    finally:
        db.dispose()


def _run(args: argparse.Namespace, settings: Settings, db: Database, demo: bool) -> int:
    if args.command == "migrate":
        db.migrate()
        print("database schema is up to date")
        return 0
    if args.command == "keys":
        db.migrate()
        try:
            return _keys(args, db)
        except (ValueError, ServiceError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "load":
        db.migrate()
        try:
            counts = load_catalog(db, read_catalog_file(args.file, args.kind))
        except (CatalogFileError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(", ".join(f"{n} {kind}" for kind, n in counts.items()) + " loaded")
        return 0

    if args.command == "import-dir":
        db.migrate()
        return _import_dir(settings, db, once=args.once)

    # serve
    from .api.server import serve_until_signalled  # grpc imports only where a server is made

    db.migrate()
    demo_key = ""
    if demo:
        demo_key = create_api_key(db, DEMO_CLIENT, Role.WEBSITE, "demo")  # the customers' client
        load_catalog(db, read_catalog_file(DEMO_CATALOG))

    workers = settings.workers or os.cpu_count() or 1

    def announce(port: int) -> None:
        host = settings.listen.rsplit(":", 1)[0]
        print(
            f"Ordergate is serving on {host}:{port} (database {settings.database_url}, "
            f"{workers} worker{'s' if workers > 1 else ''})",
            flush=True,
        )
        if demo_key:
            print(
                f"Demo API key for client {DEMO_CLIENT!r} (website role):\n  {demo_key}", flush=True
            )
            print(
                "Try: .venv/bin/ordergate-client --api-key <key> submit examples/*.xml",
                flush=True,
            )

    if workers > 1:
        db.dispose()  # the workers open their own connections
        return run_workers(settings, workers, announce, db)
    asyncio.run(serve_until_signalled(replace(settings, workers=1), db, announce))
    return 0


def _keys(args: argparse.Namespace, db: Database) -> int:
    # The audit log names the operating-system user who ran the command.
    actor = f"{getpass.getuser()} (ordergate keys)"
    if args.keys_command == "create":
        expires = (
            datetime.now(UTC) + timedelta(days=args.expires_in_days)
            if args.expires_in_days is not None
            else None
        )
        _, key = api_keys.create_key(
            db,
            args.client,
            Role(args.role),
            actor=actor,
            label=args.label,
            expires_at=expires,
            allowed_cidrs=args.allow_cidr,
        )
        print(key)
    elif args.keys_command == "list":
        now = datetime.now(UTC)
        print("key_id\tclient\trole\tstatus\tcreated\texpires\tallowed_cidrs\tlabel")
        for k in api_keys.list_keys(db, args.client, actor=actor):
            print(
                f"{k.key_id}\t{k.client}\t{k.role.value}\t{k.status(now)}\t"
                f"{k.created_at:%Y-%m-%dT%H:%M:%SZ}\t"
                f"{f'{k.expires_at:%Y-%m-%dT%H:%M:%SZ}' if k.expires_at else '-'}\t"
                f"{','.join(k.allowed_cidrs) or '-'}\t{k.label}"
            )
    elif args.keys_command == "revoke":
        api_keys.revoke_key(db, args.key_id, actor=actor, reason=args.reason)
        print(f"key {args.key_id} revoked")
    else:
        _, key = api_keys.rotate_key(
            db, args.key_id, actor=actor, overlap=timedelta(hours=args.overlap_hours)
        )
        print(key)
        print(
            f"the old key {args.key_id} keeps working for {args.overlap_hours:g} h",
            file=sys.stderr,
        )
    return 0


def _import_dir(settings: Settings, db: Database, *, once: bool) -> int:
    poller = FilePoller(db, DropSettings.from_settings(settings))
    if once:
        summary = poller.run_due()
        print(
            f"{summary.processed} processed, {summary.problem} problem, "
            f"{summary.waiting} not yet complete"
            + (f", snapshot {summary.snapshot}" if summary.snapshot else "")
        )
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"polling {settings.import_dir} every {settings.import_poll_seconds:g}s", flush=True)
    poller.run_until(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
