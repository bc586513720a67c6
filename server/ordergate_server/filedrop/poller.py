"""The file-drop poller: every few minutes, import complete files from each client's inbox and
write the stock snapshot when it is due. Runs as `ordergate import-dir`, or inside `serve`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..config import Settings, submit_limits
from ..domain.access import Principal, Role
from ..service.file_import import (
    FILE_PROCESSED,
    FileResult,
    import_file,
    oversize_file,
    principal_for_folder,
)
from ..service.inbound.csv_drop import import_csv
from ..service.submit import SubmitLimits
from ..storage import Database
from .inbox import SettleWatch, client_folders, is_goods_in_file, is_order_file, move_out
from .outbox import write_stock_snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DropSettings:
    root: Path | None  # the drop root; None: no inbox polling (a snapshot-only poller)
    poll_seconds: float = 300.0
    settle_seconds: float = 30.0
    outbox: Path | None = None  # where stock snapshots go; None: no snapshots
    snapshot_seconds: float = 900.0
    max_file_bytes: int = 64 * 1024 * 1024
    limits: SubmitLimits = field(default_factory=SubmitLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> DropSettings:
        return cls(
            root=Path(settings.import_dir) if settings.import_dir else None,
            poll_seconds=settings.import_poll_seconds,
            settle_seconds=settings.import_settle_seconds,
            outbox=Path(settings.stock_snapshot_dir) if settings.stock_snapshot_dir else None,
            snapshot_seconds=settings.stock_snapshot_seconds,
            max_file_bytes=settings.import_max_file_bytes,
            limits=submit_limits(settings),
        )

    @property
    def enabled(self) -> bool:
        return self.root is not None or self.outbox is not None


@dataclass
class PassSummary:
    processed: int = 0
    problem: int = 0
    waiting: int = 0  # order files not yet complete (still uploading, or settling)
    snapshot: Path | None = None


class FilePoller:
    def __init__(
        self, db: Database, settings: DropSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.settings = settings
        self._clock = clock
        self._watch = SettleWatch(settings.settle_seconds)
        self._next_poll = self._next_snapshot = clock()
        self._unknown_clients: set[str] = set()

    def run_due(self, stop: threading.Event | None = None) -> PassSummary:
        """Do whatever is due now: a pass over the inboxes, a stock snapshot, or both."""
        summary = PassSummary()
        now = self._clock()
        if self.settings.root is not None and now >= self._next_poll:
            self._next_poll = now + self.settings.poll_seconds
            summary = self.poll_inboxes(stop)
        if self.settings.outbox is not None and now >= self._next_snapshot:
            self._next_snapshot = now + self.settings.snapshot_seconds
            summary.snapshot = write_stock_snapshot(
                self.db, self.settings.outbox, datetime.now(UTC)
            )
            log.info("stock snapshot written: %s", summary.snapshot)
        return summary

    def seconds_until_due(self) -> float:
        due = []
        if self.settings.root is not None:
            due.append(self._next_poll)
        if self.settings.outbox is not None:
            due.append(self._next_snapshot)
        return max(0.0, min(due, default=self._clock() + 3600) - self._clock())

    def run_until(self, stop: threading.Event) -> None:
        """Poll on schedule until `stop` is set; a failing pass is logged and retried."""
        while not stop.is_set():
            try:
                self.run_due(stop)
            except Exception:  # a database outage must not end the poller; files stay put
                log.exception("file-drop pass failed; retrying at the next poll")
            stop.wait(self.seconds_until_due())

    def poll_inboxes(self, stop: threading.Event | None = None) -> PassSummary:
        """One pass: every complete file in every client inbox, imported and moved out."""
        assert self.settings.root is not None
        summary = PassSummary()
        for folder in client_folders(self.settings.root):
            principal = principal_for_folder(self.db, folder.client)
            if principal is None:
                if folder.client not in self._unknown_clients:
                    log.warning(
                        "drop folder %s has no client of that name; its files wait", folder.path
                    )
                    self._unknown_clients.add(folder.client)
                continue
            # Orders come only from websites' folders (another client's XML files wait); any
            # client's folder takes goods-in CSV files, as far as its role allows.
            wanted = is_drop_file if principal.role is Role.WEBSITE else is_goods_in_file
            files, waiting = self._watch.complete_files(folder.inbox, wanted)
            summary.waiting += waiting
            for path in files:
                if stop is not None and stop.is_set():
                    return summary
                result = self._import(principal, path)
                if result is None:
                    continue
                try:
                    moved = move_out(path, folder.out(result.folder), result.report)
                except FileNotFoundError:
                    continue  # another poller imported the same file and moved it first
                self._watch.forget(path)
                if result.folder == FILE_PROCESSED:
                    summary.processed += 1
                else:
                    summary.problem += 1
                log.info("imported %s -> %s", path, moved)
        return summary

    def _import(self, principal: Principal, path: Path) -> FileResult | None:
        """Import one complete file; None when it is gone (another poller took it) or was
        written to again after it settled (it waits to settle anew)."""
        limit = self.settings.max_file_bytes
        try:
            size = path.stat().st_size
            if size > limit:  # set aside unread: reading it could exhaust memory
                return oversize_file(principal, path.name, size, limit)
            content = path.read_bytes()
        except FileNotFoundError:
            return None
        if _changed_since_read(path, content):
            return None
        if is_goods_in_file(path.name):
            return import_csv(self.db, principal, path.name, content)
        return import_file(self.db, principal, path.name, content, limits=self.settings.limits)


def is_drop_file(name: str) -> bool:
    return is_order_file(name) or is_goods_in_file(name)


def _changed_since_read(path: Path, content: bytes) -> bool:
    try:
        return path.stat().st_size != len(content)
    except FileNotFoundError:
        return True
