"""`ordergate serve | migrate | keys create|list|revoke|rotate |
users create|list|disable|enable|reset | load | import-dir | prune`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from . import __version__
from .config import Settings, SettingsError, database_path
from .demo import DEMO_CATALOG, DEMO_CLIENT, DEMO_STAFF_CLIENT
from .domain.access import Role
from .filedrop import DropSettings, FilePoller
from .observability import configure_logging, configure_tracing, first_line
from .service import api_keys, retention, staff
from .service.auth import create_api_key
from .service.catalog_load import KINDS, CatalogFileError, load_catalog, read_catalog_file
from .service.errors import ServiceError
from .storage import Database, open_database
from .workers import StartupError, claim_address, run_workers

DEMO_DATABASE = Path(".ordergate") / "demo.sqlite3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ordergate",
        description="Ordergate order-ingestion server",
        epilog="Settings come from ORDERGATE_* environment variables (README.md); "
        "`ordergate config` prints the effective ones.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--database-url", help="overrides ORDERGATE_DATABASE_URL")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("config", help="print the effective settings (secrets masked) and exit")
    health = commands.add_parser(
        "health", help="ask a running server's gRPC health service; exit 0 if SERVING"
    )
    health.add_argument("--target", help="host:port (default: ORDERGATE_LISTEN)")
    health.add_argument("--timeout", type=float, default=5.0)

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

    users = commands.add_parser("users", help="manage the console's staff accounts")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    user_create = user_commands.add_parser(
        "create", help="create a person's account (password from stdin, or generated and printed)"
    )
    user_create.add_argument("username")
    user_create.add_argument("--role", required=True, choices=[r.value for r in staff.STAFF_ROLES])
    user_create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_commands.add_parser("list", help="list accounts")
    user_disable = user_commands.add_parser("disable", help="disable an account; signs it out")
    user_disable.add_argument("username")
    user_disable.add_argument("--reason", default="", help="recorded in the audit log")
    user_enable = user_commands.add_parser("enable", help="enable a disabled or locked account")
    user_enable.add_argument("username")
    user_reset = user_commands.add_parser(
        "reset", help="a new password (from stdin, or generated and printed); signs it out"
    )
    user_reset.add_argument("username")
    user_reset.add_argument("--password-stdin", action="store_true")

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

    prune_command = commands.add_parser(
        "prune",
        help="remove the documents and old events of orders finished long ago (docs/operations.md)",
    )
    prune_command.add_argument(
        "--dry-run", action="store_true", help="count what would be removed; change nothing"
    )
    prune_command.add_argument(
        "--delivered-days", type=float, help="DELIVERED orders (default: ORDERGATE_RETENTION_...)"
    )
    prune_command.add_argument("--cancelled-days", type=float, help="CANCELLED orders")
    prune_command.add_argument("--webhook-days", type=float, help="finished webhook deliveries")

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
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"ordergate: error: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if args.command == "config":
        print("\n".join(settings.shown()))
        return 0
    if args.command == "health":
        return _health(args.target or settings.listen, args.timeout)
    try:
        if demo:
            for leftover in DEMO_DATABASE.parent.glob(DEMO_DATABASE.name + "*"):
                leftover.unlink()
        db = open_database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            read_threads=settings.db_read_threads,
            pii_key=settings.pii_key,
        )
        try:
            return _run(args, settings, db, demo)
        finally:
            db.dispose()
    except StartupError as exc:
        print(f"ordergate: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, DBAPIError) as exc:
        # The database or the address cannot be used: a read-only or full disk, a server that is
        # down or refuses us, a port already taken. One line, no traceback.
        print(f"ordergate: error: {_startup_problem(exc, settings)}", file=sys.stderr)
        return 1


def _prune(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    def given(value: float | None, default: float) -> float:
        return default if value is None else value

    days = {
        "DELIVERED": given(args.delivered_days, settings.retention_delivered_days),
        "CANCELLED": given(args.cancelled_days, settings.retention_cancelled_days),
    }
    webhook_days = given(args.webhook_days, settings.retention_webhook_days)
    if any(value < 0 for value in (*days.values(), webhook_days)):
        print("error: retention days are 0 (keep) or more", file=sys.stderr)
        return 2
    done = retention.prune(db, days_by_state=days, webhook_days=webhook_days, dry_run=args.dry_run)
    verb = "would be removed (dry run: nothing changed)" if done.dry_run else "removed"
    for state, value in days.items():
        kept = "kept forever" if value == 0 else f"older than {value:g} days"
        print(f"{state}: {done.orders.get(state, 0)} orders {kept}")
    print(
        f"{done.documents} documents ({done.document_bytes:,} bytes stored), {done.events} "
        f"order events, {done.webhook_deliveries} webhook deliveries {verb}"
    )
    return 0


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
    if args.command == "users":
        db.migrate()
        try:
            return _users(args, db)
        except ServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
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
    if args.command == "prune":
        db.migrate()
        return _prune(args, settings, db)

    # serve
    from .api.server import serve_until_signalled  # grpc imports only where a server is made

    workers = settings.workers or os.cpu_count() or 1
    # One server per address: refused before anything else is done (workers.py).
    listen, hold = claim_address(settings.listen, shared=workers > 1)
    holds = [hold] if hold is not None else []
    http_listen = settings.http_listen
    if demo and not http_listen:  # the demo shows HTTP too: beside gRPC, on 8080
        host = listen.rpartition(":")[0]
        http_listen = f"{host}:{0 if settings.listen.endswith(':0') else 8080}"
    if http_listen:
        http_listen, http_hold = claim_address(http_listen, shared=workers > 1)
        holds += [http_hold] if http_hold is not None else []
    settings = settings.with_changes(listen=listen, http_listen=http_listen)
    if demo and not settings.webhook_allowed_networks:
        # The demo's webhooks may go to a receiver on this machine (docs/webhooks.md).
        settings = settings.with_changes(webhook_allowed_networks="127.0.0.0/8,::1/128")
    db.migrate()
    demo_keys: list[str] = []
    demo_people: list[tuple[str, str, str]] = []
    if demo:
        demo_keys = [
            create_api_key(db, DEMO_CLIENT, Role.WEBSITE, "demo"),  # the customers' client
            create_api_key(db, DEMO_STAFF_CLIENT, Role.MANAGER, "demo"),  # staff: the queue
        ]
        load_catalog(db, read_catalog_file(DEMO_CATALOG))
        demo_people = demo_staff(db)

    def announce(port: int, http_port: int) -> None:
        host = settings.listen.rsplit(":", 1)[0]
        print(
            f"Ordergate is serving on {host}:{port} (database {settings.database_url}, "
            f"{workers} worker{'s' if workers > 1 else ''})",
            flush=True,
        )
        if http_port:
            http_host = settings.http_listen.rsplit(":", 1)[0]
            scheme = "https" if settings.tls_cert_file else "http"
            print(
                f"HTTP (Connect, gRPC-Web, POST /v1/orders) on {scheme}://{http_host}:{http_port}",
                flush=True,
            )
            if settings.console_enabled:
                print(f"Console on {scheme}://{http_host}:{http_port}/console/", flush=True)
                for username, role, password in demo_people:
                    print(f"  demo staff: {username} ({role}), password {password}", flush=True)
        if demo_keys:
            website, staff = demo_keys
            print(
                f"Demo API key for client {DEMO_CLIENT!r} (website role: submits orders):\n"
                f"  {website}\n"
                f"Demo API key for client {DEMO_STAFF_CLIENT!r} (manager role: works the queue):"
                f"\n  {staff}\n"
                "Try: .venv/bin/ordergate-client --api-key <website key> submit examples/*.xml\n"
                "     .venv/bin/ordergate-client --api-key <manager key> list-held",
                flush=True,
            )

    if workers > 1:
        db.dispose()  # the workers open their own connections
        return run_workers(settings, workers, announce, db, holds)
    configure_tracing(db)  # before the server is made (workers do their own)
    asyncio.run(serve_until_signalled(settings.with_changes(workers=1), db, announce))
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


# The demo's people, one per role that works in the console: (username, role).
DEMO_STAFF = (("ana", Role.MANAGER), ("omar", Role.OPERATIONS), ("wes", Role.WAREHOUSE))


def demo_staff(db: Database) -> list[tuple[str, str, str]]:
    """The demo's staff accounts, each with a new password: (username, role, password)."""
    made = []
    for username, role in DEMO_STAFF:
        password = staff.new_password()
        if any(user.username == username for user in staff.list_users(db)):
            staff.reset_password(db, username, password, actor="ordergate serve --demo")
        else:
            staff.create_user(db, username, role, password, actor="ordergate serve --demo")
        made.append((username, role.value, password))
    return made


def _users(args: argparse.Namespace, db: Database) -> int:
    actor = f"{getpass.getuser()} (ordergate users)"
    command = args.users_command
    if command in ("create", "reset"):
        generated = not args.password_stdin
        password = staff.new_password() if generated else sys.stdin.readline().rstrip("\r\n")
        if command == "create":
            staff.create_user(db, args.username, Role(args.role), password, actor=actor)
            print(f"user {args.username} created ({args.role})", file=sys.stderr)
        else:
            staff.reset_password(db, args.username, password, actor=actor)
            print(f"password of {args.username} reset; signed out everywhere", file=sys.stderr)
        if generated:
            print(password)  # the only time it is shown
    elif command == "list":
        now = datetime.now(UTC)
        print("username\trole\tstatus\tcreated")
        for user in staff.list_users(db):
            status = (
                "disabled"
                if user.disabled_at
                else "locked"
                if user.locked_until and user.locked_until > now
                else "active"
            )
            print(f"{user.username}\t{user.role.value}\t{status}\t{user.created_at:%Y-%m-%d}")
    elif command == "disable":
        staff.disable_user(db, args.username, actor=actor, reason=args.reason)
        print(f"user {args.username} disabled and signed out")
    else:
        staff.enable_user(db, args.username, actor=actor)
        print(f"user {args.username} enabled")
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


def _health(target: str, timeout: float) -> int:
    """A health check for container HEALTHCHECKs and scripts: 0 if the server says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    host, _, port = target.rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):
        host = "127.0.0.1"  # a server listening everywhere is asked on loopback
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError as exc:
            print(f"ordergate: {host}:{port} did not answer: {exc.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _startup_problem(exc: BaseException, settings: Settings) -> str:
    """What went wrong at start, in one line."""
    detail = first_line(exc)
    if isinstance(exc, DBAPIError):
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        path = database_path(settings)
        if path is not None and _read_only(path.parent):
            detail += " (its folder is on a read-only file system)"
        return f"cannot use the database {where}: {detail}"
    return detail


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
