"""Drop folders on disk: which files are complete, and moving them out with their result file.

Layout under the drop root, one folder per client (the folder name is the client name):

    <root>/<client>/inbox/       the client uploads here (SFTP/FTP chroot): order XML (website
                                 clients), goods-in CSV (docs/inbound.md)
    <root>/<client>/processed/   files whose orders were all accepted, each with <name>.result.json
    <root>/<client>/problem/     files with an order held, refused or unreadable, same sidecar

Nothing here is deleted: a file leaves the inbox only by a rename into processed/ or problem/.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DONE_SUFFIX = ".done"
RESULT_SUFFIX = ".result.json"
# Names that upload tools give a file while it is still being written (WinSCP .filepart,
# FileZilla/lftp .part, rsync's hidden .name.XXXXXX, browsers' .crdownload, ...).
_UPLOAD_TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload", ".uploading")


@dataclass(frozen=True)
class ClientFolder:
    client: str
    path: Path

    @property
    def inbox(self) -> Path:
        return self.path / "inbox"

    def out(self, folder: str) -> Path:
        return self.path / folder


def client_folders(root: Path) -> list[ClientFolder]:
    """Every client folder under `root` that has an inbox, by name."""
    if not root.is_dir():
        return []
    return [
        ClientFolder(child.name, child)
        for child in sorted(root.iterdir())
        if (child / "inbox").is_dir() and not child.name.startswith(".")
    ]


def is_order_file(name: str) -> bool:
    """An order file by its name: *.xml, not hidden, not an upload-temp name."""
    return name.lower().endswith(".xml") and _takeable(name)


def is_goods_in_file(name: str) -> bool:
    """A goods-in file (purchase orders, receipts, returns) by its name: *.csv, likewise."""
    return name.lower().endswith(".csv") and _takeable(name)


def _takeable(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(_UPLOAD_TEMP_SUFFIXES)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time this size and mtime were first seen


class SettleWatch:
    """Tells complete uploads from ones still being written.

    A file is complete when a done-marker `<name>.done` sits next to it, or when its size and
    modification time have not changed for `settle_seconds`: counted from the first scan that
    saw them, or from the mtime itself when that is older (a file already there at start-up).
    """

    def __init__(
        self,
        settle_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settle_seconds = settle_seconds
        self._monotonic = monotonic
        self._wall = wall
        self._seen: dict[Path, _Seen] = {}

    def complete_files(
        self, inbox: Path, wanted: Callable[[str], bool] = is_order_file
    ) -> tuple[list[Path], int]:
        """The complete files in `inbox` whose names are `wanted`, by name, and how many others
        are not complete yet (still uploading, or settling)."""
        ready = []
        present = set()
        for path in sorted(inbox.iterdir()):
            if not wanted(path.name):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # taken by another poller meanwhile
                continue
            present.add(path)
            if path.with_name(path.name + DONE_SUFFIX).exists():
                ready.append(path)
                continue
            now = self._monotonic()
            seen = self._seen.get(path)
            if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
                seen = self._seen[path] = _Seen(stat.st_size, stat.st_mtime_ns, now)
            unchanged_for = max(now - seen.since, self._wall() - stat.st_mtime_ns / 1e9)
            if unchanged_for >= self.settle_seconds:
                ready.append(path)
        for gone in [p for p in self._seen if p.parent == inbox and p not in present]:
            del self._seen[gone]
        return ready, len(present) - len(ready)

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)


def move_out(path: Path, destination: Path, report: dict[str, Any]) -> Path:
    """Write the result file, then move `path` (and its done-marker) into `destination`.

    In that order, so a crash in between leaves the file in the inbox, to be read again (and
    answered from the database) rather than a moved file without its result. Returns the new
    path; the name gets a short hash suffix if `destination` already holds that name.
    Raises FileNotFoundError if another poller moved the file first."""
    destination.mkdir(exist_ok=True)
    # An unread (oversize) file has no hash to tell copies apart by; "copy" does then.
    target = _free_name(destination, path.name, str(report.get("sha256") or "copy")[:8])
    write_atomically(
        destination / (target.name + RESULT_SUFFIX),
        (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode(),
    )
    os.replace(path, target)
    marker = path.with_name(path.name + DONE_SUFFIX)
    if marker.exists():
        os.replace(marker, destination / (target.name + DONE_SUFFIX))
    _fsync_directory(destination)
    _fsync_directory(path.parent)
    return target


def _free_name(directory: Path, name: str, tag: str) -> Path:
    candidate = directory / name
    stem, dot, suffix = name.rpartition(".")
    n = 1
    while candidate.exists():
        extra = f"-{tag}" if n == 1 else f"-{tag}-{n}"
        candidate = directory / (f"{stem}{extra}{dot}{suffix}" if dot else f"{name}{extra}")
        n += 1
    return candidate


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` under a hidden temporary name, flush it to disk, then rename it into place:
    a reader sees the whole file or none of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
