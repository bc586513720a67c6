"""Typed settings, read from ORDERGATE_* environment variables (see the table in README.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from .formats import DocumentLimits
from .service.submit import SubmitLimits

# A revoked or rotated-out key stops working within this many seconds (docs/security.md).
MAX_AUTH_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Settings:
    # SQLAlchemy URL: sqlite:///path/to/file.sqlite3 or postgresql+psycopg://user@host/db
    database_url: str = "sqlite:///ordergate.sqlite3"
    # Address the gRPC server listens on; port 0 picks a free port.
    listen: str = "127.0.0.1:50051"
    # TLS on the gRPC port: PEM files of the server's certificate chain and private key. With a
    # client CA as well, clients must present a certificate signed by it (mutual TLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # Per API key and process: calls per second (token bucket), the burst above it, and streams
    # open at once. 0 turns a limit off. Refusals are RESOURCE_EXHAUSTED with a RetryInfo.
    rate_limit_per_second: float = 1000.0
    rate_limit_burst: int = 2000
    max_streams_per_key: int = 16
    # Server processes sharing the port (`serve --workers`); 0: one per CPU.
    workers: int = 0
    # Largest accepted order document, in bytes (larger: RESOURCE_EXHAUSTED).
    max_order_bytes: int = 1024 * 1024
    # Deepest element nesting and most elements accepted in one document.
    max_xml_depth: int = 32
    max_xml_elements: int = 50_000
    # Seconds a verified API key is remembered by a worker, 0 to 1 (MAX_AUTH_CACHE_SECONDS): a
    # revoked or rotated-out key stops working within this time on every connection and worker.
    auth_cache_seconds: float = 1.0
    # Seconds in-flight calls get to finish on SIGTERM before the server stops.
    shutdown_grace_seconds: float = 10.0
    # Connections per process to PostgreSQL (and as many again in overflow).
    db_pool_size: int = 10
    # Threads per process that run database transactions; 0 runs them inline on the event loop;
    # -1 picks by database: inline on SQLite, 4 threads on PostgreSQL (bench/README.md).
    db_threads: int = -1
    # Threads per process for read-only calls (stock levels, prices, locations, watches); 0 runs
    # them inline on the event loop. Reads never wait for a lock, so inline costs only the round
    # trips: on PostgreSQL next to the server that is cheaper than a thread hop (bench/README.md);
    # on a distant one (a millisecond or more per round trip) give them threads.
    db_read_threads: int = 0
    submit_batch_max: int = 64  # submissions stored in one transaction at most (group commit)
    # Items of one SubmitOrders stream in the server at once (read, queued, being stored); past
    # this many unanswered the next is not read. 1: one at a time.
    stream_window: int = 16
    # Calls served at once per process; past this, calls are refused rather than queued.
    max_concurrent_rpcs: int = 256
    # host:port of the Prometheus metrics endpoint (/metrics); empty: no endpoint.
    metrics_listen: str = ""
    # An order PICKING this long without a change, or DISPATCHED this long without delivery,
    # is stuck: counted in ordergate_stuck_orders and raised as a STUCK alert.
    stuck_picking_hours: float = 4.0
    stuck_dispatched_hours: float = 72.0
    # How often the stuck-order check runs, in seconds.
    stuck_check_seconds: float = 300.0
    # A shipment handed over without a tracking number raises TRACKING_MISSING after this long.
    tracking_missing_hours: float = 24.0
    # How often the stock re-check reads the stock log for stock that rose (it also runs at once
    # after a stock-raising call served by the same process).
    recheck_seconds: float = 2.0
    # The seller party named in UBL OrderResponse documents (docs/ubl.md).
    seller_name: str = "Ordergate"
    # File drop (docs/file-drop.md): the drop root with one folder per client; empty: no polling
    # inside `serve` (`ordergate import-dir` takes the root as an argument instead).
    import_dir: str = ""
    # Seconds between passes over the inboxes.
    import_poll_seconds: float = 300.0
    # A file without a done-marker is taken once its size and mtime are this old and unchanged.
    import_settle_seconds: float = 30.0
    # Largest file taken from an inbox (a batch may hold many orders); larger ones go to problem/.
    import_max_file_bytes: int = 64 * 1024 * 1024
    # Folder for the stock snapshot CSV; empty: no snapshots.
    stock_snapshot_dir: str = ""
    # Seconds between stock snapshots.
    stock_snapshot_seconds: float = 900.0
    # Base64 of 32 random bytes (`openssl rand -base64 32`): personal data (delivery address,
    # phone, e-mail, the submitted documents) is then encrypted at rest with AES-256-GCM.
    pii_key: str = field(default="", repr=False)
    # Python log level.
    log_level: str = "INFO"
    # Allocations between the garbage collector's young-generation passes in a serving process;
    # 0 keeps Python's default (700). Objects built at start-up are frozen out of its passes
    # either way (gc_tuning.py).
    gc_threshold: int = 10_000

    def __post_init__(self) -> None:
        if not 0 <= self.auth_cache_seconds <= MAX_AUTH_CACHE_SECONDS:
            raise ValueError(
                f"ORDERGATE_AUTH_CACHE_SECONDS={self.auth_cache_seconds} is not 0 to "
                f"{MAX_AUTH_CACHE_SECONDS}: a revoked key must stop working within a second"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ORDERGATE_<FIELD> variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"ORDERGATE_{f.name.upper()}")
            if raw is not None:
                kind = type(getattr(cls, f.name))
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    raise ValueError(
                        f"ORDERGATE_{f.name.upper()}={raw!r} is not a {kind.__name__}"
                    ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def submit_limits(settings: Settings) -> SubmitLimits:
    """The limits every order submission is held to, whichever channel it came in by."""
    return SubmitLimits(
        max_payload_bytes=settings.max_order_bytes,
        document=DocumentLimits(settings.max_xml_depth, settings.max_xml_elements),
    )
