"""Typed settings, read from ORDERGATE_* environment variables and validated at start.

Every setting has its type and its range here (pydantic-settings); a bad value is refused before
anything starts, one line per variable naming the variable, the value and what is allowed
(`SettingsError`, which `ordergate` prints and exits 2 on). An ORDERGATE_* variable that is no
setting is refused too, with the nearest name: a misspelt ORDERGATE_DATABSE_URL once made the
server start on a new, empty database. README.md's configuration table lists them all;
`ordergate config` prints the effective ones, secrets masked.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .domain.webhooks import DEFAULT_RETRY_SCHEDULE, parse_networks, parse_schedule
from .formats import DocumentLimits
from .service.submit import SubmitLimits

# A revoked or rotated-out key stops working within this many seconds (docs/security.md).
MAX_AUTH_CACHE_SECONDS = 1.0

# ORDERGATE_* variables that are not the server's: ordergate-client's, and the test suite's and
# benchmarks' own. They may be set in the same shell; the server leaves them alone.
NOT_SERVER_SETTINGS = frozenset(
    {
        "ORDERGATE_TARGET",
        "ORDERGATE_API_KEY",
        "ORDERGATE_TEST_POSTGRES_URL",
        "ORDERGATE_BENCH_POSTGRES_URL",
        "ORDERGATE_SERVER_BIN",
        "ORDERGATE_KEEP_METRICS_DIR",
    }
)

PREFIX = "ORDERGATE_"
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]


class SettingsError(ValueError):
    """Settings that cannot be used, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid")

    # SQLAlchemy URL: sqlite:///path/to/file.sqlite3 or postgresql+psycopg://user@host/db
    database_url: str = "sqlite:///ordergate.sqlite3"
    # Address the gRPC server listens on (host:port); port 0 picks a free port.
    listen: str = "127.0.0.1:50051"
    # TLS on the gRPC port: PEM files of the server's certificate chain and private key. With a
    # client CA as well, clients must present a certificate signed by it (mutual TLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # Per API key and process: calls per second (token bucket), the burst above it, and streams
    # open at once. 0 turns a limit off. Refusals are RESOURCE_EXHAUSTED with a RetryInfo.
    rate_limit_per_second: NonNegative = 1000.0
    rate_limit_burst: Count = 2000
    max_streams_per_key: Count = 16
    # Server processes sharing the port (`serve --workers`); 0: one per CPU.
    workers: Annotated[int, Field(ge=0, le=256)] = 0
    # Largest accepted order document, in bytes (larger: RESOURCE_EXHAUSTED).
    max_order_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # Deepest element nesting and most elements accepted in one document.
    max_xml_depth: Annotated[int, Field(ge=4, le=256)] = 32
    max_xml_elements: Annotated[int, Field(ge=10, le=10_000_000)] = 50_000
    # Seconds a verified API key is remembered by a worker, 0 to 1 (MAX_AUTH_CACHE_SECONDS): a
    # revoked or rotated-out key stops working within this time on every connection and worker.
    auth_cache_seconds: Annotated[float, Field(ge=0, le=MAX_AUTH_CACHE_SECONDS)] = 1.0
    # Seconds in-flight calls get to finish on SIGTERM before the server stops.
    shutdown_grace_seconds: NonNegative = 10.0
    # Connections per process to PostgreSQL (and as many again in overflow).
    db_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    # Threads per process that run database transactions; 0 runs them inline on the event loop;
    # -1 picks by database: inline on SQLite, 4 threads on PostgreSQL (bench/README.md).
    db_threads: Annotated[int, Field(ge=-1, le=256)] = -1
    # Threads per process for read-only calls (stock levels, prices, locations, watches); 0 runs
    # them inline on the event loop. Reads never wait for a lock, so inline costs only the round
    # trips: on PostgreSQL next to the server that is cheaper than a thread hop (bench/README.md);
    # on a distant one (a millisecond or more per round trip) give them threads.
    db_read_threads: Annotated[int, Field(ge=0, le=256)] = 0
    # Submissions stored in one transaction at most (group commit).
    submit_batch_max: Annotated[int, Field(ge=1, le=10_000)] = 64
    # Items of one SubmitOrders stream in the server at once (read, queued, being stored); past
    # this many unanswered the next is not read. 1: one at a time.
    stream_window: Annotated[int, Field(ge=1, le=10_000)] = 16
    # Calls served at once per process; past this, calls are refused rather than queued. 0: off.
    max_concurrent_rpcs: Count = 256
    # host:port of the HTTP listener: every RPC over Connect (JSON or binary) and gRPC-Web, and
    # POST /v1/orders (docs/http.md); empty: none. `serve --demo` listens on 127.0.0.1:8080.
    http_listen: str = ""
    # Origins whose browser pages may call the HTTP listener (CORS), comma-separated, such as
    # https://shop.example.com; empty: none (same-origin and non-browser clients need none).
    http_cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # The operations console (docs/console.md) on the HTTP listener, under /console/: off with
    # false. A session ends after this many idle minutes, and after console_session_hours in all.
    console_enabled: bool = True
    console_idle_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30.0
    console_session_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 12.0
    # Webhooks (docs/webhooks.md). The waits between a failed delivery's attempts, comma-separated
    # (s, m, h, d), each jittered by ±20%; past the last the delivery is FAILED. The default is
    # the Standard Webhooks schedule carried on to about three days.
    webhook_retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    # Seconds a receiver has to answer one delivery (connect, send, answer).
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    # An endpoint that has not taken a delivery for this long is disabled, with a
    # WEBHOOK_ENDPOINT_DISABLED alert; its pending deliveries wait until it is enabled again.
    webhook_disable_after_hours: Positive = 72.0
    # Networks webhooks may go to although they are private, loopback or link-local (CIDRs,
    # comma-separated), such as 10.20.0.0/16 for a receiver inside your own network; empty: none.
    webhook_allowed_networks: str = ""
    # How often each process turns new events into deliveries and looks for deliveries due.
    webhook_poll_seconds: Positive = 1.0
    # stock.changed: at most one per product per this many seconds.
    webhook_stock_debounce_seconds: NonNegative = 5.0
    # stock.low: sent when a product's available stock at a location falls to this or below.
    webhook_stock_low_at: Annotated[int, Field(ge=0)] = 5
    # `ordergate prune`: the documents and old events of DELIVERED / CANCELLED orders last
    # changed longer ago than this many days go; finished webhook deliveries after their own
    # days. 0: kept forever (the default: nothing goes until you choose).
    retention_delivered_days: NonNegative = 0.0
    retention_cancelled_days: NonNegative = 0.0
    retention_webhook_days: NonNegative = 0.0
    # ReconcileStock: a count differing from ours by more than this percentage raises an
    # INVENTORY_DIVERGENCE alert (a call may set its own threshold).
    divergence_threshold_percent: Annotated[float, Field(gt=0, le=1000)] = 5.0
    # Deliveries each process sends at once.
    webhook_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    # host:port of the Prometheus metrics endpoint (/metrics); empty: no endpoint.
    metrics_listen: str = ""
    # An order PICKING this long without a change, or DISPATCHED this long without delivery,
    # is stuck: counted in ordergate_stuck_orders and raised as a STUCK alert.
    stuck_picking_hours: Positive = 4.0
    stuck_dispatched_hours: Positive = 72.0
    # How often the stuck-order check runs, in seconds.
    stuck_check_seconds: Positive = 300.0
    # A shipment handed over without a tracking number raises TRACKING_MISSING after this long.
    tracking_missing_hours: Positive = 24.0
    # How often the stock re-check looks for stock that rose (it also runs at once after a
    # stock-raising call served by the same process).
    recheck_seconds: Positive = 2.0
    # How often each worker checks that its database answers (health goes NOT_SERVING while it
    # does not).
    health_check_seconds: Positive = 2.0
    # The seller party named in UBL OrderResponse documents (docs/ubl.md).
    seller_name: Annotated[str, Field(min_length=1, max_length=200)] = "Ordergate"
    # File drop (docs/file-drop.md): the drop root with one folder per client; empty: no polling
    # inside `serve` (`ordergate import-dir` takes the root as an argument instead).
    import_dir: str = ""
    # Seconds between passes over the inboxes.
    import_poll_seconds: Positive = 300.0
    # A file without a done-marker is taken once its size and mtime are this old and unchanged.
    import_settle_seconds: NonNegative = 30.0
    # Largest file taken from an inbox (a batch may hold many orders); larger ones go to problem/.
    import_max_file_bytes: Annotated[int, Field(ge=1)] = 64 * 1024 * 1024
    # Folder for the stock snapshot CSV; empty: no snapshots.
    stock_snapshot_dir: str = ""
    # Seconds between stock snapshots.
    stock_snapshot_seconds: Positive = 900.0
    # Base64 of 32 random bytes (`openssl rand -base64 32`): personal data (delivery address,
    # phone, e-mail, the submitted documents) is then encrypted at rest with AES-256-GCM.
    pii_key: str = Field(default="", repr=False)
    # Python log level, and the lines' format: text for people, json for log collectors.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # One access-log line per RPC (method, code, duration, client, request_id, order id, peer).
    access_log: bool = True
    # Allocations between the garbage collector's young-generation passes in a serving process;
    # 0 keeps Python's default (700). Objects built at start-up are frozen out of its passes
    # either way (gc_tuning.py).
    gc_threshold: Count = 10_000

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case_insensitive(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return value.lower() if value.lower() in ("text", "json") else value.upper()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a URL such as sqlite:///path or postgresql+psycopg://..."
            ) from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            if url.database in (None, "", ":memory:"):
                raise ValueError("a SQLite URL names a file: sqlite:///path/to/ordergate.sqlite3")
        elif backend != "postgresql":
            raise ValueError("sqlite:///path or postgresql+psycopg://user@host/db")
        try:
            driver = url.get_driver_name()
        except Exception:  # NoSuchModuleError: a driver SQLAlchemy does not know
            driver = url.drivername.partition("+")[2]
        # The drivers Ordergate installs (and is tested with): pysqlite, psycopg 3.
        if driver not in ("pysqlite", "psycopg"):
            raise ValueError(f"the {driver} driver is not supported: use {backend}+psycopg://")
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _address(value)

    @field_validator("metrics_listen", "http_listen")
    @classmethod
    def _optional_address(cls, value: str) -> str:
        return _address(value) if value else value

    @field_validator("http_cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for origin in value if isinstance(value, tuple | list) else ():
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", str(origin)):
                raise ValueError("origins such as https://shop.example.com, comma-separated")
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _retry_schedule(cls, value: str) -> str:
        parse_schedule(value)  # a ValueError names the part that is not a wait
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError:
            raise ValueError("CIDRs such as 10.0.0.0/8,127.0.0.1/32, comma-separated") from None
        return value

    @field_validator("pii_key")
    @classmethod
    def _pii_key(cls, value: str) -> str:
        if not value:
            return value
        try:
            key = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("base64 of 32 random bytes (openssl rand -base64 32)") from None
        if len(key) != 32:
            raise ValueError("base64 of 32 random bytes (openssl rand -base64 32)")
        return value

    @field_validator("tls_cert_file", "tls_key_file", "tls_client_ca_file")
    @classmethod
    def _readable(cls, value: str) -> str:
        if value and not os.access(value, os.R_OK):
            raise ValueError("a readable PEM file")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("TLS needs both ORDERGATE_TLS_CERT_FILE and ORDERGATE_TLS_KEY_FILE")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("ORDERGATE_TLS_CLIENT_CA_FILE needs a server certificate and key")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ORDERGATE_<FIELD> variables of `environ` (os.environ by default),
        then `overrides` (command-line flags; None means not given). Raises SettingsError."""
        environ = os.environ if environ is None else environ
        problems = [f"{name} is not a setting{_nearest(name)}" for name in _unknown(environ)]
        values: dict[str, Any] = {
            name: environ[PREFIX + name.upper()]
            for name in cls.model_fields
            if PREFIX + name.upper() in environ
        }
        given = {name: value for name, value in overrides.items() if value is not None}
        values.update(given)
        try:
            settings = cls.model_validate(values)
        except ValidationError as invalid:
            problems += [_problem(error, values, given) for error in invalid.errors()]
        if problems:
            raise SettingsError(problems)
        return settings

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated again."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def shown(self) -> list[str]:
        """The effective settings as ORDERGATE_* lines, secrets masked (`ordergate config`)."""
        lines = []
        for name, value in self.model_dump().items():
            if name == "pii_key" and value:
                value = "****"
            elif name == "database_url":
                value = make_url(value).render_as_string(hide_password=True)
            elif isinstance(value, bool):
                value = str(value).lower()
            elif isinstance(value, tuple):
                value = ",".join(value)
            lines.append(f"{PREFIX}{name.upper()}={value}")
        return lines


def _address(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("host:port, such as 127.0.0.1:50051 or [::]:50051")
    return value


def _unknown(environ: Mapping[str, str]) -> list[str]:
    known = {PREFIX + name.upper() for name in Settings.model_fields} | NOT_SERVER_SETTINGS
    return sorted(name for name in environ if name.startswith(PREFIX) and name not in known)


def _nearest(name: str) -> str:
    names = [PREFIX + field.upper() for field in Settings.model_fields]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def _problem(error: Any, values: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    """One line: the variable (or flag), the value given, and what is allowed."""
    name = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not name:  # a rule over several settings
        return message
    source = f"--{name.replace('_', '-')}" if name in given else PREFIX + name.upper()
    shown = "****" if name == "pii_key" else values.get(name, "")
    return f"{source}={shown!r} is not allowed: {message}"


def submit_limits(settings: Settings) -> SubmitLimits:
    """The limits every order submission is held to, whichever channel it came in by."""
    return SubmitLimits(
        max_payload_bytes=settings.max_order_bytes,
        document=DocumentLimits(settings.max_xml_depth, settings.max_xml_elements),
    )


def database_path(settings: Settings) -> Path | None:
    """The SQLite file, if the database is one."""
    url = make_url(settings.database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
