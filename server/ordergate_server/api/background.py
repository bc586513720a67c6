"""The work each server does besides answering calls, as asyncio tasks beside the gRPC server.

- Stock re-check (service/recheck.py): orders held for stock alone are accepted when stock
  rises. It runs every ORDERGATE_RECHECK_SECONDS and at once when a call served here raised
  stock (`Rechecker.kick`); the stock log and a durable cursor make sure nothing that rose is
  missed, even if this process dies after a commit.
- Stuck orders and shipments without tracking: STUCK and TRACKING_MISSING alerts.
- The file-drop poller, when a drop folder is configured.
- Webhooks: the fan-out turns new order events, stock changes and alerts into events and
  deliveries, and the dispatcher sends the deliveries due (service/webhooks/).
- The database watch: gRPC health goes NOT_SERVING while the database does not answer, so load
  balancers send the calls to replicas that can serve them, and SERVING when it answers again.

Every loop survives a failing pass (a database restart, say): it logs and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter

from ..filedrop import FilePoller
from ..observability import first_line, untraced
from ..service import monitoring, recheck, shipments
from ..service.webhooks import deliveries, fanout
from ..service.webhooks.sender import Sender
from ..storage import Database
from ..storage import webhooks as webhook_store
from .runner import Runner

log = logging.getLogger(__name__)


class Rechecker:
    def __init__(self, db: Database, run: Runner, every: float) -> None:
        self._db = db
        self._run = run
        self._every = every
        self._woken = asyncio.Event()

    def kick(self) -> None:
        """Re-check now: a call served here may have raised available stock."""
        self._woken.set()

    async def run_forever(self) -> None:
        while True:
            self._woken.clear()
            try:
                done = await self._run(recheck.after_stock_changes, self._db)
                if done.accepted:
                    log.info("stock re-check accepted %d held order(s)", len(done.accepted))
                if done.more:
                    continue  # a full batch of the stock log: read on at once
            except Exception:  # a database hiccup must not end the re-check
                log.exception("stock re-check failed; retrying at the next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=self._every)


async def check_stuck_orders(
    db: Database,
    run: Runner,
    stuck_rules: list[monitoring.StuckRule],
    tracking_missing_hours: float,
    every: float,
) -> None:
    """Raise STUCK and TRACKING_MISSING alerts periodically; one replica doing it twice at worst
    repeats nothing, as an order already marked STUCK (a shipment already alerted) is skipped."""
    while True:
        try:
            raised = await run(monitoring.raise_stuck_alerts, db, stuck_rules)
            if raised:
                log.warning("raised %d STUCK alert(s)", raised)
            raised = await run(shipments.raise_missing_tracking_alerts, db, tracking_missing_hours)
            if raised:
                log.warning("raised %d TRACKING_MISSING alert(s)", raised)
        except Exception:  # a database hiccup must not end the checker
            log.exception("stuck-order check failed")
        await asyncio.sleep(every)


async def poll_drop_folders(poller: FilePoller, counted: Counter) -> None:
    """The file-drop poller inside `serve`, on a worker thread: file imports are blocking
    database work and must not hold up the event loop. Several replicas may poll one folder:
    a file two of them take at once is still imported once (service/file_import.py)."""
    while True:
        try:
            summary = await asyncio.to_thread(poller.run_due)
            counted.labels("processed").inc(summary.processed)
            counted.labels("problem").inc(summary.problem)
        except Exception:  # a database hiccup must not end the poller; the files stay put
            log.exception("file-drop pass failed; retrying at the next poll")
        await asyncio.sleep(poller.seconds_until_due())


async def watch_database(
    db: Database,
    set_health: Callable[[bool], Awaitable[None]],
    every: float,
) -> None:
    """Check every `every` seconds that the database answers; tell `set_health` each change.

    The check runs on a thread of its own: a connection attempt to a database host that is down
    can take its whole connect timeout, and must not stall the event loop meanwhile. A check
    still running at the next tick counts as the database not answering."""
    loop = asyncio.get_running_loop()
    serving = True
    pending: asyncio.Future[None] | None = None
    while True:
        if pending is None or pending.done():
            pending = loop.run_in_executor(None, _ping_twice, db)
        try:
            await asyncio.wait_for(asyncio.shield(pending), timeout=every)
            answers, problem = True, ""
        except TimeoutError:
            answers, problem = False, f"no answer within {every:g}s"
        except Exception as exc:  # the database's own error: it is down, or refuses us
            answers, problem = False, first_line(exc)
        if answers != serving:
            serving = answers
            if answers:
                log.warning("the database answers again: health SERVING")
            else:
                log.error("the database does not answer (%s): health NOT_SERVING", problem)
            await set_health(answers)
        await asyncio.sleep(every if answers else min(every, 1.0))


def _ping_twice(db: Database) -> None:
    """A restart of the database breaks the pooled connections: the first ping after it fails
    and empties the pool, the second opens a fresh connection. Only both failing means down."""
    with untraced():
        try:
            db.ping()
        except Exception:
            db.ping()


@dataclass(frozen=True)
class WebhookSettings:
    schedule: list[timedelta]
    disable_after: timedelta
    poll_seconds: float
    stock_low_at: int
    stock_debounce: timedelta
    concurrency: int
    timeout: float


class WebhookDispatcher:
    """Every poll: one fan-out pass, then as many due deliveries as there are free slots (at
    most a quarter of them for one client), each sent on a task of its own so that a slow
    receiver holds up only its own slot. A delivery
    taken is leased for longer than its attempt may take; if this process dies meanwhile, the
    lease runs out and another process (or this one, restarted) takes it again."""

    def __init__(
        self,
        db: Database,
        run: Runner,
        sender: Sender,
        render_order: fanout.OrderRenderer,
        settings: WebhookSettings,
        outcomes: Counter,
    ) -> None:
        self._db = db
        self._run = run
        self._sender = sender
        self._render = render_order
        self._settings = settings
        self._outcomes = outcomes
        # The sender gives up at timeout + 5 s (sender.py); settling takes milliseconds.
        self._lease = timedelta(seconds=settings.timeout + 10)
        self._rng = random.Random()
        self._sending: set[asyncio.Task[None]] = set()
        self._per_client: dict[int, int] = {}  # deliveries being sent, by client

    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    await self._pass()
                except Exception:  # a database hiccup must not end webhooks
                    log.exception("webhook pass failed; retrying at the next poll")
                await asyncio.sleep(self._settings.poll_seconds)
        finally:
            for task in self._sending:
                task.cancel()
            await self._sender.close()

    async def _pass(self) -> None:
        settings = self._settings
        await self._run(
            fanout.fan_out,
            self._db,
            self._render,
            stock_low_at=settings.stock_low_at,
            stock_debounce=settings.stock_debounce,
        )
        free = settings.concurrency - len(self._sending)
        if free <= 0:
            return
        for due in await self._run(deliveries.claim_due, self._db, self._lease, self._room, free):
            client = due.endpoint.client_id
            self._per_client[client] = self._per_client.get(client, 0) + 1
            task = asyncio.create_task(self._deliver(due))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _room(self, client_id: int) -> int:
        """Slots a client may take more: a quarter of them in all, so that one client's slow
        or failing receivers (each holding a slot up to the timeout) leave the rest to others."""
        return max(1, self._settings.concurrency // 4) - self._per_client.get(client_id, 0)

    async def _deliver(self, due: webhook_store.Due) -> None:
        try:
            await self._attempt(due)
        finally:
            client = due.endpoint.client_id
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]

    async def _attempt(self, due: webhook_store.Due) -> None:
        sent = await self._sender.send(due)
        try:
            outcome = await self._run(
                deliveries.settle,
                self._db,
                due,
                sent,
                schedule=self._settings.schedule,
                disable_after=self._settings.disable_after,
                rng=self._rng,
            )
        except Exception:  # not recorded: the lease runs out and the delivery is sent again
            log.exception("webhook delivery %s: its attempt could not be recorded", due.delivery_id)
            return
        self._outcomes.labels(outcome).inc()
        if outcome != deliveries.DELIVERED:
            log.info(
                "webhook delivery %s to %s: %s (%s)",
                due.delivery_id,
                due.endpoint.url,
                outcome,
                sent.error or sent.status_code,
            )
