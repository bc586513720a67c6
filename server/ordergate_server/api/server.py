"""Server assembly: servicers, interceptors, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from ordergate.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    exception_queue_service_pb2,
    exception_queue_service_pb2_grpc,
    fulfillment_service_pb2,
    fulfillment_service_pb2_grpc,
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_service_pb2,
    order_service_pb2_grpc,
    pricing_service_pb2,
    pricing_service_pb2_grpc,
)

from ..config import Settings, submit_limits
from ..filedrop import DropSettings, FilePoller
from ..gc_tuning import tune_for_serving
from ..service import monitoring
from ..service.auth import Authenticator
from ..service.rate_limits import KeyLimits
from ..service.submit_queue import SubmitQueue
from ..storage import Database
from .audit_servicer import AuditServicer
from .background import Rechecker, check_stuck_orders, poll_drop_folders, watch_database
from .catalog_servicer import CatalogServicer
from .exception_queue_servicer import ExceptionQueueServicer
from .fulfillment_servicer import FulfillmentServicer
from .interceptors import AuthInterceptor, ErrorInterceptor, InFlightInterceptor, LimitInterceptor
from .inventory_servicer import InventoryServicer
from .metrics import Metrics
from .order_servicer import OrderServicer
from .outcomes import OutcomeInterceptor
from .pricing_servicer import PricingServicer
from .runner import inline, thread_pool

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
    inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name,
    catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    pricing_service_pb2.DESCRIPTOR.services_by_name["PricingService"].full_name,
    fulfillment_service_pb2.DESCRIPTOR.services_by_name["FulfillmentService"].full_name,
    exception_queue_service_pb2.DESCRIPTOR.services_by_name["ExceptionQueueService"].full_name,
    audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)
# Room above the order limit for the rest of the request, so an oversize order gets our own
# clear PAYLOAD_TOO_LARGE instead of the transport's generic error.
_MESSAGE_OVERHEAD = 64 * 1024


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped)
    metrics: Metrics
    metrics_port: int  # 0 when there is no metrics endpoint
    background: list[asyncio.Task[None]]
    submit_queue: SubmitQueue

    async def stop(self, grace: float) -> None:
        """Drain: NOT_SERVING first so balancers stop sending, then finish in-flight calls."""
        await self.health.enter_graceful_shutdown()
        for task in self.background:
            task.cancel()
        await self.server.stop(grace)
        await self.submit_queue.close()
        self.metrics.stop()


# Calls gRPC may hold before this process takes them up (see start_server). One pending call
# holds its headers, a few KB: 10,000 are tens of MB, and a burst that size is far past what one
# process serves at once (ORDERGATE_MAX_CONCURRENT_RPCS, 256 by default).
MAX_PENDING_CALLS = 10_000


async def start_server(settings: Settings, db: Database) -> RunningServer:
    """Build and start the server on `settings.listen`; returns it with the bound port."""
    limits = submit_limits(settings)
    max_message = settings.max_order_bytes + _MESSAGE_OVERHEAD
    stuck_rules = monitoring.rules(settings.stuck_picking_hours, settings.stuck_dispatched_hours)
    metrics = Metrics(db, stuck_rules)
    metrics.in_flight_limit.set(settings.max_concurrent_rpcs)
    server = grpc.aio.server(
        interceptors=[
            OutcomeInterceptor(metrics),
            ErrorInterceptor(),
            InFlightInterceptor(settings.max_concurrent_rpcs, metrics.in_flight),
            AuthInterceptor(Authenticator(db, settings.auth_cache_seconds)),
            LimitInterceptor(
                KeyLimits(
                    settings.rate_limit_per_second,
                    settings.rate_limit_burst,
                    settings.max_streams_per_key,
                )
            ),
        ],
        options=[
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            # Workers of `serve --workers` share the port; a lone server must not share it
            # with another process by accident.
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
            # Calls gRPC holds before this process takes them up. Past its default of 1,000 it
            # answers the newest CANCELLED, a code no client retries (a burst of 3,000 health
            # checks on one connection: 487 CANCELLED; 3,000 SubmitOrder calls: 726). Raised,
            # a burst waits its turn and is served or, past max_concurrent_rpcs, refused
            # SERVER_BUSY (UNAVAILABLE, retried).
            ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
            ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_CALLS),
        ],
    )
    threads = settings.db_threads
    if threads < 0:
        threads = 4 if db.dialect == "postgresql" else 0
    run = thread_pool(threads) if threads > 0 else inline
    read = thread_pool(settings.db_read_threads) if settings.db_read_threads > 0 else inline
    submit_queue = SubmitQueue(db, max_batch=settings.submit_batch_max)
    rechecker = Rechecker(db, run, settings.recheck_seconds)
    order_service_pb2_grpc.add_OrderServiceServicer_to_server(
        OrderServicer(
            db,
            limits,
            run,
            metrics,
            submit_queue=submit_queue,
            stream_window=settings.stream_window,
            seller_name=settings.seller_name,
            stock_rose=rechecker.kick,
        ),
        server,
    )
    inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server(
        InventoryServicer(db, run, read, stock_rose=rechecker.kick), server
    )
    catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(db, run), server)
    pricing_service_pb2_grpc.add_PricingServiceServicer_to_server(PricingServicer(db, read), server)
    fulfillment_service_pb2_grpc.add_FulfillmentServiceServicer_to_server(
        FulfillmentServicer(db, run), server
    )
    exception_queue_service_pb2_grpc.add_ExceptionQueueServiceServicer_to_server(
        ExceptionQueueServicer(db, run), server
    )
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(db, run), server)

    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    async def set_health(serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in (*SERVICE_NAMES, ""):
            await health_servicer.set(name, status)

    await set_health(True)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    credentials = server_credentials(settings)
    try:
        port = (
            server.add_secure_port(settings.listen, credentials)
            if credentials is not None
            else server.add_insecure_port(settings.listen)
        )
    except RuntimeError:  # gRPC's "Failed to bind": taken, or not an address of this machine
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {settings.listen}: in use, or not an address of this host")
    # /metrics first: an address it cannot have ends the start before any call is taken.
    metrics_port = metrics.serve(settings.metrics_listen) if settings.metrics_listen else 0
    try:
        await server.start()
    except BaseException:
        metrics.stop()
        raise
    background = [
        asyncio.create_task(
            check_stuck_orders(
                db,
                run,
                stuck_rules,
                settings.tracking_missing_hours,
                settings.stuck_check_seconds,
            )
        ),
        asyncio.create_task(rechecker.run_forever()),
        asyncio.create_task(watch_database(db, set_health, settings.health_check_seconds)),
    ]
    drop = DropSettings.from_settings(settings)
    if drop.enabled:
        background.append(
            asyncio.create_task(poll_drop_folders(FilePoller(db, drop), metrics.file_drop_files))
        )
    return RunningServer(
        server, port, health_servicer, metrics, metrics_port, background, submit_queue
    )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured PEM files; None for plaintext (no certificate set).

    With a client CA the handshake itself refuses a client without a certificate signed by it,
    before any call (and any API key) is looked at. The files were checked with the settings
    (config.py): both or neither of certificate and key, a client CA only with them."""
    if not settings.tls_cert_file:
        return None
    client_ca = (
        Path(settings.tls_client_ca_file).read_bytes() if settings.tls_client_ca_file else None
    )
    return grpc.ssl_server_credentials(
        [(Path(settings.tls_key_file).read_bytes(), Path(settings.tls_cert_file).read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


async def serve_until_signalled(settings: Settings, db: Database, on_ready: object = None) -> None:
    """Run until SIGTERM or SIGINT, then drain gracefully."""
    running = await start_server(settings, db)
    tune_for_serving(settings.gc_threshold)  # after start-up: what it built stays frozen
    host = settings.listen.rsplit(":", 1)[0]
    log.info("ordergate listening on %s:%d", host, running.port)
    if callable(on_ready):
        on_ready(running.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "shutting down: health NOT_SERVING, draining for up to %.0fs",
        settings.shutdown_grace_seconds,
    )
    await running.stop(settings.shutdown_grace_seconds)
    log.info("stopped")
