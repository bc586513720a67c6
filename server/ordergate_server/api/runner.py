"""Where blocking service calls (database transactions) run: inline on the event loop, or on a
small thread pool so that transactions overlap.

Inline costs the least CPU per call (DESIGN.md: ~15-25 % less than a thread hop) but serves one
transaction at a time per process: fine on SQLite, where writers queue on one lock anyway, but
on PostgreSQL every round trip and commit flush then stalls the whole process. A pool lets
PostgreSQL work on several transactions at once (and group their commits).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Runner(Protocol):
    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


async def inline(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    return fn(*args, **kwargs)


def thread_pool(threads: int) -> Runner:
    # grpc.aio does not propagate contextvars into executors; the servicers read everything
    # they need (the caller's identity) before handing the call over.
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ordergate-db")

    async def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        call: Callable[[], Any] = functools.partial(fn, *args, **kwargs)
        result: T = await loop.run_in_executor(executor, call)
        return result

    return run
