"""`ordergate serve | migrate | keys create | load`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .config import Settings
from .demo import DEMO_CATALOG, DEMO_CLIENT
from .domain.access import Role
from .service.auth import create_api_key
from .service.catalog_load import KINDS, CatalogFileError, load_catalog, read_catalog_file
from .storage import Database, open_database

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

    commands.add_parser("migrate", help="bring the database schema up to date")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--client", required=True, help="client name; created if new")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--label", default="", help="a note on what the key is for")

    load = commands.add_parser("load", help="load locations, products, stock, customers")
    load.add_argument("file", type=Path, help="a .json file, or a .csv file of one kind")
    load.add_argument("--kind", choices=KINDS, help="what a CSV file holds (default: its name)")

    args = parser.parse_args(argv)
    demo = args.command == "serve" and args.demo
    try:
        settings = Settings.from_env(
            database_url=f"sqlite:///{DEMO_DATABASE}" if demo else args.database_url,
            listen=getattr(args, "listen", None),
        )
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if demo:
        for leftover in DEMO_DATABASE.parent.glob(DEMO_DATABASE.name + "*"):
            leftover.unlink()
    db = open_database(settings.database_url, pool_size=settings.db_pool_size)
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
            key = create_api_key(db, args.client, Role(args.role), args.label)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(key)
        return 0
    if args.command == "load":
        db.migrate()
        try:
            counts = load_catalog(db, read_catalog_file(args.file, args.kind))
        except (CatalogFileError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(", ".join(f"{n} {kind}" for kind, n in counts.items()) + " loaded")
        return 0

    # serve
    from .api.server import serve_until_signalled  # grpc imports only where a server is made

    db.migrate()
    demo_key = ""
    if demo:
        demo_key = create_api_key(db, DEMO_CLIENT, Role.WEBSITE, "demo")  # the customers' client
        load_catalog(db, read_catalog_file(DEMO_CATALOG))

    def announce(port: int) -> None:
        host = settings.listen.rsplit(":", 1)[0]
        print(
            f"Ordergate is serving on {host}:{port} (database {settings.database_url})", flush=True
        )
        if demo_key:
            print(
                f"Demo API key for client {DEMO_CLIENT!r} (website role):\n  {demo_key}", flush=True
            )
            print(
                "Try: .venv/bin/ordergate-client --api-key <key> submit examples/*.xml",
                flush=True,
            )

    asyncio.run(serve_until_signalled(settings, db, announce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
