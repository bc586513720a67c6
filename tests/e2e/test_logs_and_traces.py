"""What the server writes for its operators: one access-log line per RPC, as JSON or text, with
no personal data; and OpenTelemetry traces through the standard OTEL_* settings, with each log
line naming its trace."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc

from ..support import EXAMPLES, auth
from .test_cli import ORDERGATE

# Personal data in examples/full-order.xml: none of it may reach a log line.
PERSONAL = ("Lindner", "Lindenstraße", "Hamburg", "123-4567", "goods-in@", "rear entrance")


def _serve(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], int, list[str], Path]:
    """`ordergate serve --demo`, one worker; stdout and stderr to files of their own."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERGATE_", "OTEL_"))}
    process = subprocess.Popen(
        [ORDERGATE, "serve", "--demo", "--listen", "127.0.0.1:0", "--workers", "1"],
        cwd=tmp_path,
        env={**environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    deadline = time.monotonic() + 60
    while not (found := re.search(r"serving on 127\.0\.0\.1:(\d+)", out.read_text())) or (
        "Try:" not in out.read_text()
    ):
        assert process.poll() is None, err.read_text()
        assert time.monotonic() < deadline, out.read_text() + err.read_text()
        time.sleep(0.05)
    keys = re.findall(r"^\s+(og_\S+)$", out.read_text(), re.M)
    return process, int(found.group(1)), keys, err


def _calls(port: int, website_key: str) -> tuple[str, str]:
    """An order in, that order read back, a call with an unknown key; the request_id and the
    order's id."""
    request_id = str(uuid.uuid4())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        orders = order_service_pb2_grpc.OrderServiceStub(channel)
        order = orders.SubmitOrder(
            pb.SubmitOrderRequest(
                request_id=request_id,
                order_xml=(EXAMPLES / "full-order.xml").read_bytes(),
            ),
            metadata=auth(website_key),
        ).order
        orders.GetOrder(pb.GetOrderRequest(id=order.id), metadata=auth(website_key))
        with pytest.raises(grpc.RpcError):
            orders.GetOrder(pb.GetOrderRequest(id=order.id), metadata=auth("og_x_y"))
    return request_id, order.id


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def _spans(text: str) -> list[dict[str, Any]]:
    """The spans OTEL_TRACES_EXPORTER=console printed: one JSON object after another."""
    decoder = json.JSONDecoder()
    spans, at = [], 0
    while (start := text.find("{", at)) >= 0:
        span, length = decoder.raw_decode(text[start:])
        spans.append(span)
        at = start + length
    return spans


def test_json_access_log_with_trace_ids_and_no_personal_data(tmp_path: Path) -> None:
    process, port, keys, stderr = _serve(
        tmp_path,
        ORDERGATE_LOG_FORMAT="json",
        OTEL_TRACES_EXPORTER="console",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    request_id, order_id = _calls(port, keys[0])
    _stop(process)

    text = stderr.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message", "process_name"} <= set(x) for x in lines)
    access = [x for x in lines if x["logger"] == "ordergate.access"]
    assert [(x["method"], x["code"]) for x in access] == [
        ("OrderService/SubmitOrder", "OK"),
        ("OrderService/GetOrder", "OK"),
        ("OrderService/GetOrder", "UNAUTHENTICATED"),
    ]
    submitted, read, refused = access
    assert (submitted["client"], submitted["request_id"]) == ("demo-shop", request_id)
    assert submitted["order_id"] == read["order_id"] == refused["order_id"] == order_id
    assert refused["client"] == ""  # no key was accepted
    assert all(x["duration_ms"] > 0 and x["peer"].startswith("ipv4:127.0.0.1:") for x in access)
    assert not [word for word in PERSONAL if word in text]

    # Each call is a trace; its log line names it, and the SQL it ran is in it.
    spans = _spans((tmp_path / "stdout").read_text())  # after the announcement (no braces)
    by_trace: dict[str, list[str]] = {}
    for span in spans:
        by_trace.setdefault(span["context"]["trace_id"], []).append(span["name"])
    submit_trace = by_trace[f"0x{submitted['trace_id']}"]
    assert "/ordergate.v1.OrderService/SubmitOrder" in submit_trace
    assert any(name.startswith("INSERT") for name in submit_trace)
    assert "/ordergate.v1.OrderService/GetOrder" in by_trace[f"0x{refused['trace_id']}"]
    assert not [word for word in PERSONAL if word in json.dumps(spans)]


def test_text_access_log_by_default_and_none_when_turned_off(tmp_path: Path) -> None:
    process, port, keys, stderr = _serve(tmp_path)
    _, order_id = _calls(port, keys[0])
    _stop(process)
    access = [line for line in stderr.read_text().splitlines() if "ordergate.access" in line]
    assert len(access) == 3
    assert re.search(
        r" INFO main ordergate\.access OrderService/SubmitOrder OK duration_ms=[\d.]+ "
        rf"client=demo-shop request_id=\S+ order_id={order_id} "
        r"peer=ipv4:127\.0\.0\.1:\d+ via=grpc$",
        access[0],
    ), access[0]
    assert "trace_id" not in stderr.read_text()  # no tracing asked for

    quiet = tmp_path / "quiet"
    quiet.mkdir()
    process, port, keys, stderr = _serve(quiet, ORDERGATE_ACCESS_LOG="false")
    _calls(port, keys[0])
    _stop(process)
    assert "ordergate.access" not in stderr.read_text()
