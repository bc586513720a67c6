"""Group commit: the SubmitOrder calls of one process share their transactions.

A call reads its document where it runs (`prepare_submission`: CPU only) and queues it. One
flusher task takes everything waiting, up to `max_batch`, stores it with `store_submissions`
(one transaction for the lot) and answers each caller. Nothing waits on a timer to fill a batch:
while one batch is being written the next one gathers, so under light load a batch is a single
submission and under heavy load the cost per order falls (bench/submit_orders.py).

Where the batch is written depends on the database (measured, bench/README.md):
- SQLite has one writer at a time across all worker processes. The flusher first lets the
  event loop turn a few times, so that what has already arrived joins the batch; then it takes
  that write lock at once if it is free, and otherwise waits for it in a thread, so the event
  loop goes on reading requests meanwhile. Then it writes the batch on the event loop itself:
  while it holds the lock no other thread of this process competes with it for the GIL, so the
  lock is held as briefly as possible.
- PostgreSQL writes concurrently; the batch goes to a thread, so the event loop goes on while
  the statements make their round trips.

An answer is given only after its transaction committed. A call cancelled while still queued
(its deadline passed, the client went away) is dropped unstored: its client retries with the
same request_id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from ..storage import Database
from .submit import PreparedSubmission, SubmitResult
from .submit_batch import Outcome, store_submissions

DEFAULT_MAX_BATCH = 64
_GATHER_TURNS = 4  # turns of the event loop before a SQLite batch is taken (see _flush_forever)

_Waiting = tuple[PreparedSubmission, "asyncio.Future[SubmitResult]"]


class SubmitQueue:
    def __init__(self, db: Database, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._waiting: deque[_Waiting] = deque()
        self._arrived = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Submissions queued and not yet taken into a batch."""
        return len(self._waiting)

    async def submit(self, prepared: PreparedSubmission) -> SubmitResult:
        """Store `prepared` with whatever else is waiting; its answer once committed. Raises
        what `store_submission` would (ServiceError for a refused submission)."""
        loop = asyncio.get_running_loop()
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_forever(), name="submit-queue")
        done: asyncio.Future[SubmitResult] = loop.create_future()
        self._waiting.append((prepared, done))
        self._arrived.set()
        return await done

    async def close(self) -> None:
        """Stop the flusher (after the server drained: nothing is waiting any more)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def _flush_forever(self) -> None:
        while True:
            await self._arrived.wait()
            if self._db.write_gate is not None:
                # SQLite writes the batch on this loop, which reads nothing meanwhile. A few
                # turns of the loop first let in what has already arrived: a SubmitOrders
                # stream's next items come one per turn, and without them each of its orders
                # was a batch, and a commit, of its own (bench/README.md, "Many orders in
                # flight on one stream"). The write lock is not held meanwhile.
                for _ in range(_GATHER_TURNS):
                    await asyncio.sleep(0)
            batch: list[_Waiting] = []
            try:
                async with self._db.write_turn() as holding_write_lock:
                    self._arrived.clear()
                    batch = self._take()  # taken only now: more gathered while waiting
                    prepared = [item for item, _ in batch]
                    if not prepared:
                        outcomes: list[Outcome] = []
                    elif holding_write_lock:
                        outcomes = store_submissions(self._db, prepared)
                    else:
                        outcomes = await asyncio.to_thread(store_submissions, self._db, prepared)
            except Exception as failure:  # no turn (lock file), or the batch not stored at all
                batch = batch or self._take()
                outcomes = [failure] * len(batch)
            _answer(batch, outcomes)
            if self._waiting:
                self._arrived.set()

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        while self._waiting and len(batch) < self._max_batch:
            item = self._waiting.popleft()
            if not item[1].done():  # a caller cancelled while queued withdraws its submission
                batch.append(item)
        return batch


def _answer(batch: list[_Waiting], outcomes: list[Outcome]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():
            continue  # cancelled while being stored: a retry of its request_id replays it
        if isinstance(outcome, Exception):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
