"""Server assembly: servicers, interceptors, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.reflection import aio as reflection_aio  # type: ignore[attr-defined]

from ordergate.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    exception_queue_service_pb2,
    exception_queue_service_pb2_grpc,
    fulfillment_service_pb2,
    fulfillment_service_pb2_grpc,
    inbound_service_pb2,
    inbound_service_pb2_grpc,
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_service_pb2,
    order_service_pb2_grpc,
    pricing_service_pb2,
    pricing_service_pb2_grpc,
    return_service_pb2,
    return_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)

from ..config import Settings, submit_limits
from ..domain.records import OrderRecord
from ..domain.webhooks import parse_networks, parse_schedule
from ..filedrop import DropSettings, FilePoller
from ..gc_tuning import tune_for_serving
from ..observability import tracing_configured
from ..service import monitoring
from ..service.auth import Authenticator
from ..service.rate_limits import KeyLimits
from ..service.submit_queue import SubmitQueue
from ..service.webhooks.sender import Sender
from ..storage import Database
from . import calls
from .audit_servicer import AuditServicer
from .background import (
    Rechecker,
    WebhookDispatcher,
    WebhookSettings,
    check_stuck_orders,
    poll_drop_folders,
    watch_database,
)
from .catalog_servicer import CatalogServicer
from .convert import order_to_proto
from .exception_queue_servicer import ExceptionQueueServicer
from .fulfillment_servicer import FulfillmentServicer
from .inbound_servicer import InboundServicer
from .interceptors import AuthInterceptor, ErrorInterceptor, InFlightInterceptor, LimitInterceptor
from .inventory_servicer import InventoryServicer
from .metrics import Metrics
from .order_servicer import OrderServicer
from .outcomes import OutcomeInterceptor
from .pricing_servicer import PricingServicer
from .return_servicer import ReturnServicer
from .runner import Runner, inline, thread_pool
from .webhook_servicer import WebhookServicer

if TYPE_CHECKING:
    from .http.listener import HttpListener

log = logging.getLogger(__name__)

# Each service of the API: its descriptor, and how its servicer joins a gRPC server.
SERVICES: dict[str, tuple[Any, Callable[[Any, grpc.aio.Server], None]]] = {
    service.full_name: (service, add)
    for service, add in (
        (
            order_service_pb2.DESCRIPTOR.services_by_name["OrderService"],
            order_service_pb2_grpc.add_OrderServiceServicer_to_server,
        ),
        (
            inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"],
            inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server,
        ),
        (
            catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"],
            catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server,
        ),
        (
            pricing_service_pb2.DESCRIPTOR.services_by_name["PricingService"],
            pricing_service_pb2_grpc.add_PricingServiceServicer_to_server,
        ),
        (
            fulfillment_service_pb2.DESCRIPTOR.services_by_name["FulfillmentService"],
            fulfillment_service_pb2_grpc.add_FulfillmentServiceServicer_to_server,
        ),
        (
            exception_queue_service_pb2.DESCRIPTOR.services_by_name["ExceptionQueueService"],
            exception_queue_service_pb2_grpc.add_ExceptionQueueServiceServicer_to_server,
        ),
        (
            audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"],
            audit_service_pb2_grpc.add_AuditServiceServicer_to_server,
        ),
        (
            webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"],
            webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server,
        ),
        (
            inbound_service_pb2.DESCRIPTOR.services_by_name["InboundService"],
            inbound_service_pb2_grpc.add_InboundServiceServicer_to_server,
        ),
        (
            return_service_pb2.DESCRIPTOR.services_by_name["ReturnService"],
            return_service_pb2_grpc.add_ReturnServiceServicer_to_server,
        ),
    )
}
SERVICE_NAMES = tuple(SERVICES)
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
    http: HttpListener | None = None

    @property
    def http_port(self) -> int:
        """The HTTP listener's port; 0 without one."""
        return self.http.port if self.http is not None else 0

    async def stop(self, grace: float) -> None:
        """Drain: NOT_SERVING first so balancers stop sending, then finish in-flight calls."""
        await self.health.enter_graceful_shutdown()
        for task in self.background:
            task.cancel()
        if self.http is not None:
            await asyncio.gather(self.server.stop(grace), self.http.stop())
        else:
            await self.server.stop(grace)
        await self.submit_queue.close()
        self.metrics.stop()


# Calls gRPC may hold before this process takes them up (see start_server). One pending call
# holds its headers, a few KB: 10,000 are tens of MB, and a burst that size is far past what one
# process serves at once (ORDERGATE_MAX_CONCURRENT_RPCS, 256 by default).
MAX_PENDING_CALLS = 10_000
# Threads per process for the operations console's database work (api/console/).
CONSOLE_THREADS = 2


async def start_server(settings: Settings, db: Database) -> RunningServer:
    """Build and start the server on `settings.listen`; returns it with the bound port."""
    limits = submit_limits(settings)
    max_message = settings.max_order_bytes + _MESSAGE_OVERHEAD
    stuck_rules = monitoring.rules(settings.stuck_picking_hours, settings.stuck_dispatched_hours)
    metrics = Metrics(db, stuck_rules)
    metrics.in_flight_limit.set(settings.max_concurrent_rpcs)
    # One of each for every transport: the cap counts gRPC and HTTP calls together, a key's
    # rate limit is spent by either, and both are counted and logged alike (calls.py).
    in_flight = calls.InFlight(settings.max_concurrent_rpcs, metrics.in_flight)
    authenticator = Authenticator(db, settings.auth_cache_seconds)
    key_limits = KeyLimits(
        settings.rate_limit_per_second, settings.rate_limit_burst, settings.max_streams_per_key
    )
    outcomes = calls.Outcomes(metrics, traced=tracing_configured())
    server = grpc.aio.server(
        interceptors=[
            OutcomeInterceptor(metrics, outcomes),
            ErrorInterceptor(),
            InFlightInterceptor(in_flight),
            AuthInterceptor(authenticator),
            LimitInterceptor(key_limits),
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

    def make_servicers(run: Runner, read: Runner) -> dict[str, object]:
        return {
            "ordergate.v1.OrderService": OrderServicer(
                db,
                limits,
                run,
                metrics,
                submit_queue=submit_queue,
                stream_window=settings.stream_window,
                seller_name=settings.seller_name,
                stock_rose=rechecker.kick,
            ),
            "ordergate.v1.InventoryService": InventoryServicer(
                db,
                run,
                read,
                stock_rose=rechecker.kick,
                divergence_threshold=settings.divergence_threshold_percent,
            ),
            "ordergate.v1.InboundService": InboundServicer(db, run, stock_rose=rechecker.kick),
            "ordergate.v1.ReturnService": ReturnServicer(db, run, stock_rose=rechecker.kick),
            "ordergate.v1.CatalogService": CatalogServicer(db, run),
            "ordergate.v1.PricingService": PricingServicer(db, read),
            "ordergate.v1.FulfillmentService": FulfillmentServicer(db, run),
            "ordergate.v1.ExceptionQueueService": ExceptionQueueServicer(db, run),
            "ordergate.v1.AuditService": AuditServicer(db, run),
            "ordergate.v1.WebhookService": WebhookServicer(
                db, run, parse_networks(settings.webhook_allowed_networks)
            ),
        }

    servicers = make_servicers(run, read)
    order_servicer = servicers["ordergate.v1.OrderService"]
    assert isinstance(order_servicer, OrderServicer)
    for name, servicer in servicers.items():
        SERVICES[name][1](servicer, server)

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
    enable_reflection(server)

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
    background.append(asyncio.create_task(webhook_dispatcher(settings, db, metrics).run_forever()))
    drop = DropSettings.from_settings(settings)
    if drop.enabled:
        background.append(
            asyncio.create_task(poll_drop_folders(FilePoller(db, drop), metrics.file_drop_files))
        )
    http = None
    if settings.http_listen:
        from .http.app import build_app  # the HTTP stack only where it is wanted
        from .http.connect_calls import Gate, Messages, OutcomeStart
        from .http.listener import HttpListener, HttpTls, listening_socket
        from .http.orders_post import OrdersPost

        console = None
        if settings.console_enabled:
            from .console.acting import Caller
            from .console.app import Console

            # The console's database work on threads of its own, never inline on the event
            # loop: a page waiting for the database must not stall the loop's gRPC calls.
            console_run = thread_pool(CONSOLE_THREADS)
            console = Console(
                db,
                console_run,
                Caller(make_servicers(console_run, console_run), outcomes, key_limits),
                idle=timedelta(minutes=settings.console_idle_minutes),
                longest=timedelta(hours=settings.console_session_hours),
                metrics=metrics,
            ).app()
        app = build_app(
            {name: (servicers[name], SERVICES[name][0]) for name in servicers},
            [OutcomeStart(outcomes), Gate(authenticator, key_limits, in_flight), Messages()],
            OrdersPost(
                order_servicer,
                authenticator,
                key_limits,
                in_flight,
                outcomes,
                settings.max_order_bytes,
            ),
            read_max_bytes=max_message,
            cors_origins=settings.http_cors_origins,
            console=console,
        )
        sock = listening_socket(settings.http_listen, shared=settings.workers > 1)
        tls = (
            HttpTls(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
            if settings.tls_cert_file
            else None
        )
        http = HttpListener(app, sock, settings.shutdown_grace_seconds, tls)
        await http.start()
    return RunningServer(
        server, port, health_servicer, metrics, metrics_port, background, submit_queue, http
    )


def webhook_dispatcher(settings: Settings, db: Database, metrics: Metrics) -> WebhookDispatcher:
    # On threads of their own, whatever ORDERGATE_DB_THREADS says: a pass waiting for SQLite's
    # write lock must not hold up the calls on the event loop.
    return WebhookDispatcher(
        db,
        asyncio.to_thread,
        Sender(parse_networks(settings.webhook_allowed_networks), settings.webhook_timeout_seconds),
        render_order,
        WebhookSettings(
            schedule=parse_schedule(settings.webhook_retry_schedule),
            disable_after=timedelta(hours=settings.webhook_disable_after_hours),
            poll_seconds=settings.webhook_poll_seconds,
            stock_low_at=settings.webhook_stock_low_at,
            stock_debounce=timedelta(seconds=settings.webhook_stock_debounce_seconds),
            concurrency=settings.webhook_concurrency,
            timeout=settings.webhook_timeout_seconds,
        ),
        metrics.webhook_deliveries,
    )


def render_order(order: OrderRecord) -> dict[str, Any]:
    """An order as webhooks carry it: ordergate.v1.Order in the proto3 JSON mapping, as the
    HTTP API's JSON answers carry it."""
    return json_format.MessageToDict(order_to_proto(order))


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def enable_reflection(server: grpc.aio.Server) -> None:
    """Server reflection, both versions: v1 (what grpcurl and buf curl ask first) and v1alpha.

    grpcio-reflection serves only v1alpha; v1's messages are the same fields under another
    package name, identical on the wire, so v1 is the same servicer at the v1 method's path."""
    names = (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME, REFLECTION_V1)
    servicer = reflection_aio.ReflectionServicer(names)  # type: ignore[attr-defined]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                REFLECTION_V1,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            )
        ]
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
    if running.http is not None:
        http_host = settings.http_listen.rsplit(":", 1)[0]
        log.info("HTTP (Connect, gRPC-Web, POST /v1/orders) on %s:%d", http_host, running.http_port)
    if callable(on_ready):
        on_ready(running.port, running.http_port)
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
