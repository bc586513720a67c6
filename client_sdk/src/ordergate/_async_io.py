"""What the async client does its own way: asyncio channel, sleep and bulk stream.

_async_client.py imports these; the sync client generated from it (scripts/unasync.py) imports
the same names from _sync_io. Keep both modules' names and signatures the same.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
import grpc.aio

from ._common import BulkResult, Metadata, OrderDocument, bulk_result
from ._config import ConnectionConfig
from ._errors import from_rpc_error
from ._retry import RetryPolicy
from .v1 import order_service_pb2, order_service_pb2_grpc

T = TypeVar("T")
Documents = Iterable[OrderDocument] | AsyncIterable[OrderDocument]


def open_channel(config: ConnectionConfig) -> grpc.aio.Channel:
    return config.aio_channel()


async def close_channel(channel: grpc.aio.Channel) -> None:
    await channel.close(None)


def end_stream(call: Any) -> None:
    """Cancel a server stream the caller stopped reading (a no-op once it has ended). Leaving
    an `async for` does not end a gRPC call: it would stay open, and hold one of the key's
    stream slots on the server, until the call object is collected."""
    call.cancel()


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def bulk_submit(
    stub: order_service_pb2_grpc.OrderServiceAsyncStub,
    documents: Documents,
    prepare: Callable[[OrderDocument], order_service_pb2.SubmitOrderRequest],
    window: int,
    metadata: Metadata,
    policy: RetryPolicy,
    sleep_or_raise: Callable[..., Awaitable[None]],
) -> AsyncIterator[BulkResult]:
    """One SubmitOrders session: `documents` read lazily, at most `window` unanswered, and a
    broken stream resumed on a new one with the unanswered orders (their request_ids make that
    safe)."""
    source = _aiter(documents)
    backoffs = policy.backoffs()
    pending: deque[order_service_pb2.SubmitOrderRequest] = deque()
    exhausted = False
    while True:
        call = stub.SubmitOrders(metadata=metadata)  # type: ignore[call-arg]
        slots = asyncio.Semaphore(max(1, window))
        resend = list(pending)

        async def feed(
            call: Any = call, slots: asyncio.Semaphore = slots, resend: list[Any] = resend
        ) -> None:
            nonlocal exhausted
            for request in resend:
                await slots.acquire()
                await call.write(order_service_pb2.SubmitOrdersRequest(order=request))
            while not exhausted:
                await slots.acquire()
                try:
                    document = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                request = prepare(document)
                pending.append(request)
                await call.write(order_service_pb2.SubmitOrdersRequest(order=request))
            await call.done_writing()

        feeder = asyncio.create_task(feed())
        try:
            async for reply in call:
                pending.popleft()
                slots.release()
                yield bulk_result(reply)
            await feeder
            return
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
        finally:
            if not feeder.done():
                feeder.cancel()
        await sleep_or_raise(error, policy, backoffs, None)


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
