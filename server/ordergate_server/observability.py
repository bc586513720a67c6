"""Logs and traces: what a server tells its operators besides /metrics.

- Log lines as text (for people) or JSON (for log collectors), ORDERGATE_LOG_FORMAT; each names
  its process (supervisor or worker-N) and, while a trace is being recorded, its trace id.
- One access-log line per RPC (logger `ordergate.access`): method, status code, duration,
  client, request_id, order id, peer, and how it came (grpc, connect or http). Never personal
  data: no addresses, names, documents.
- Traces through OpenTelemetry's standard OTEL_* settings: with OTEL_TRACES_EXPORTER set to
  `otlp` (OTEL_EXPORTER_OTLP_ENDPOINT, ...) or `console`, every RPC and every SQL statement is a
  span. Unset (or `none`), nothing is instrumented: tracing off costs nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from .config import Settings
from .storage import Database

ACCESS = logging.getLogger("ordergate.access")
_TEXT = "%(asctime)s %(levelname)s %(process_name)s %(name)s %(message)s"
_JSON_FIELDS = ("asctime", "levelname", "process_name", "name", "message", "trace_id", "span_id")


class _Context(logging.Filter):
    """Adds the process's name and the current trace and span ids to every record."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process_name
        span = trace.get_current_span().get_span_context()
        trace_id = span_id = ""
        if span.is_valid:
            trace_id = format(span.trace_id, "032x")
            span_id = format(span.span_id, "016x")
        record.trace_id = trace_id
        record.span_id = span_id
        return True


class _TextFormatter(logging.Formatter):
    """For people: the line, and the trace id at its end while a trace is being recorded."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        return f"{line} trace_id={trace_id}" if trace_id else line


def configure_logging(settings: Settings, process_name: str = "main") -> None:
    """The root logger at ORDERGATE_LOG_LEVEL, in ORDERGATE_LOG_FORMAT, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context(process_name))
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                list(_JSON_FIELDS),
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(_TextFormatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    ACCESS.disabled = not settings.access_log


def log_access(
    method: str,
    code: str,
    duration_s: float,
    *,
    client: str,
    request_id: str,
    order_id: str,
    peer: str,
    via: str = "grpc",
) -> None:
    """The access-log line of one finished RPC; `via` is grpc, connect or http."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "method": method,
        "code": code,
        "duration_ms": round(duration_s * 1000, 2),
        "client": client,
        "request_id": request_id,
        "order_id": order_id,
        "peer": peer,
        "via": via,
    }
    text = " ".join(
        f"{k}={v}" for k, v in fields.items() if v != "" and k not in ("method", "code")
    )
    ACCESS.info("%s %s %s", method, code, text, extra=fields)


def first_line(exc: BaseException) -> str:
    """An error's message in one line (a database driver's own message if it wraps one)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def untraced() -> AbstractContextManager[object]:
    """A block whose database work is no trace of its own: the health watch's pings and the
    metrics' reads, every few seconds, would bury the traces of calls."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def tracing_configured() -> bool:
    """Whether the OTEL_* settings ask for traces (OTEL_TRACES_EXPORTER, not `none`)."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return (
        exporter not in ("", "none") and os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
    )


def configure_tracing(db: Database) -> bool:
    """Set up OpenTelemetry from the OTEL_* settings, and instrument the gRPC server and `db`'s
    engines; returns whether it did. Call before the server is made."""
    if not tracing_configured():
        return False
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    resource = Resource.create({"service.name": "ordergate"}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if os.environ["OTEL_TRACES_EXPORTER"].strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:  # otlp: endpoint, headers and protocol from OTEL_EXPORTER_OTLP_*
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    # The engines exist already (made with the name create_engine imported before any patch
    # could apply), so they are named: every statement a span. The instrumentation declares
    # SQLAlchemy < 2.1 but works with 2.1 (tests/e2e/test_logs_and_traces.py shows the spans).
    SQLAlchemyInstrumentor().instrument(engines=[db.engine, db.read_engine], skip_dep_check=True)
    return True
