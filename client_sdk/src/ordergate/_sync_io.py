"""What the sync client does its own way: blocking channel, sleep and bulk stream.

The sync client (_client.py) is generated from the async one (scripts/unasync.py), which imports
these names from _async_io; the generated code imports them from here. Keep both modules' names
and signatures the same.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from ._common import BulkResult, Metadata, OrderDocument, bulk_result
from ._config import ConnectionConfig
from ._errors import from_rpc_error
from ._retry import RetryPolicy
from .v1 import order_service_pb2, order_service_pb2_grpc

Documents = Iterable[OrderDocument]


def open_channel(config: ConnectionConfig) -> grpc.Channel:
    return config.channel()


def close_channel(channel: grpc.Channel) -> None:
    channel.close()


def end_stream(call: Any) -> None:
    """Cancel a server stream the caller stopped reading (a no-op once it has ended), rather
    than leave it open, holding one of the key's stream slots on the server, until the call
    object is collected."""
    call.cancel()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def bulk_submit(
    stub: order_service_pb2_grpc.OrderServiceStub,
    documents: Documents,
    prepare: Callable[[OrderDocument], order_service_pb2.SubmitOrderRequest],
    window: int,
    metadata: Metadata,
    policy: RetryPolicy,
    sleep_or_raise: Callable[..., None],
) -> Iterator[BulkResult]:
    """One SubmitOrders session: `documents` read lazily, at most `window` unanswered, and a
    broken stream resumed on a new one with the unanswered orders (their request_ids make that
    safe)."""
    return _BulkStream(stub, (prepare(d) for d in documents), window, metadata, policy).results(
        sleep_or_raise
    )


class _BulkStream:
    def __init__(
        self,
        stub: order_service_pb2_grpc.OrderServiceStub,
        source: Iterator[order_service_pb2.SubmitOrderRequest],
        window: int,
        metadata: Metadata,
        policy: RetryPolicy,
    ) -> None:
        self._stub = stub
        self._source = source
        self._window = max(1, window)
        self._metadata = metadata
        self._policy = policy
        self._pending: deque[order_service_pb2.SubmitOrderRequest] = deque()  # sent, unanswered
        self._lock = threading.Lock()

    def results(self, sleep_or_raise: Callable[..., None]) -> Iterator[BulkResult]:
        backoffs = self._policy.backoffs()
        resend: list[order_service_pb2.SubmitOrderRequest] = []
        while True:
            attempt = _Attempt(self._window)
            requests = self._requests(attempt, resend)
            try:
                for reply in self._stub.SubmitOrders(requests, metadata=self._metadata):
                    self._pending.popleft()
                    attempt.slots.release()
                    yield bulk_result(reply)
                return
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            finally:
                with self._lock:
                    attempt.closed = True
                    resend = list(self._pending)
                for _ in range(self._window):  # wake a feeder waiting for a slot, so it ends
                    attempt.slots.release()
            sleep_or_raise(error, self._policy, backoffs, None)

    def _requests(
        self, attempt: _Attempt, resend: list[order_service_pb2.SubmitOrderRequest]
    ) -> Iterator[order_service_pb2.SubmitOrdersRequest]:
        # Runs on gRPC's sending thread; gRPC pulls only as fast as flow control allows.
        for request in resend:
            attempt.slots.acquire()
            if attempt.closed:
                return
            yield order_service_pb2.SubmitOrdersRequest(order=request)
        while True:
            attempt.slots.acquire()
            with self._lock:
                if attempt.closed:
                    return
                upcoming = next(self._source, None)
                if upcoming is None:
                    return
                self._pending.append(upcoming)
            yield order_service_pb2.SubmitOrdersRequest(order=upcoming)


class _Attempt:
    def __init__(self, window: int) -> None:
        self.slots = threading.Semaphore(window)
        self.closed = False
