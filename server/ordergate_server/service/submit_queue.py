"""Group commit: the SubmitOrder calls of one process share their transactions.

A call reads its document where it runs (`prepare_submission`: CPU only) and queues it; one
writer thread takes everything waiting, up to `max_batch`, stores it with `store_submissions`
(one transaction for the lot) and answers each caller. Nothing waits to fill a batch: under
light load a batch is a single submission, under heavy load the queue fills while the previous
batch is written, so the cost per order falls as the load rises (bench/submit_orders.py).

An answer is given only after its transaction committed. A call cancelled while still queued
(its deadline passed, the client went away) is dropped unstored: its client retries with the
same request_id.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import Future

from ..storage import Database
from .submit import PreparedSubmission, SubmitResult
from .submit_batch import store_submissions

DEFAULT_MAX_BATCH = 64


class SubmitQueue:
    def __init__(self, db: Database, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._waiting: deque[tuple[PreparedSubmission, Future[SubmitResult]]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._writer = threading.Thread(
            target=self._write, name="ordergate-submit-writer", daemon=True
        )
        self._writer.start()

    async def submit(self, prepared: PreparedSubmission) -> SubmitResult:
        """Store `prepared` with whatever else is waiting; its answer once committed. Raises
        what `store_submission` would (ServiceError for a refused submission)."""
        done: Future[SubmitResult] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the submit queue is closed")
            self._waiting.append((prepared, done))
            self._wake.notify()
        return await asyncio.wrap_future(done)

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._writer.join()

    def _write(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if not self._waiting:
                    return  # closed and drained
                taken = [
                    self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))
                ]
            # From here on a caller's cancellation no longer withdraws its submission.
            batch = [
                (prepared, done) for prepared, done in taken if done.set_running_or_notify_cancel()
            ]
            if batch:
                self._store(batch)

    def _store(self, batch: list[tuple[PreparedSubmission, Future[SubmitResult]]]) -> None:
        try:
            outcomes = store_submissions(self._db, [prepared for prepared, _ in batch])
        except Exception as failure:  # the batch could not be stored at all (database down)
            for _, done in batch:
                done.set_exception(failure)
            return
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)
