"""Helpers for the SDK's tests: a demo server process and a TCP proxy that misbehaves on cue.

These tests use only the SDK and a server reached over the network, so they run in a virtual
environment that has the SDK and nothing of the server (ORDERGATE_SERVER_BIN points at the
`ordergate` executable of another environment).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def server_binary() -> str:
    candidates = [
        os.environ.get("ORDERGATE_SERVER_BIN", ""),
        str(Path(sys.executable).parent / "ordergate"),
        shutil.which("ordergate") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    message = "no `ordergate` server executable (set ORDERGATE_SERVER_BIN)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class DemoServer:
    process: subprocess.Popen[str]
    target: str
    key: str  # website role, printed by --demo
    admin_key: str  # made with `ordergate keys create` on the demo database
    manager_key: str
    warehouse_key: str

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_demo_server(folder: Path, settings: dict[str, str] | None = None) -> DemoServer:
    """`ordergate serve --demo` in `folder`; `settings` are extra ORDERGATE_* variables."""
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [server_binary(), "serve", "--demo", "--listen", "127.0.0.1:0"],
        cwd=folder,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(settings or {})},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    target = key = ""
    for line in process.stdout:
        if match := re.search(r"serving on (127\.0\.0\.1:\d+)", line):
            target = match.group(1)
        if (match := re.search(r"^\s+(og_\S+)$", line)) and not key:
            key = match.group(1)  # the first: the website's (the second is a manager's)
        if line.startswith("Try:"):
            break
    assert target, (folder / "server.log").read_text()
    assert key, (folder / "server.log").read_text()

    def make_key(client: str, role: str) -> str:
        database = f"sqlite:///{folder}/.ordergate/demo.sqlite3"
        command = ["keys", "create", "--client", client, "--role", role]
        return subprocess.run(
            [server_binary(), "--database-url", database, *command],
            capture_output=True,
            text=True,
            check=True,
            cwd=folder,
        ).stdout.strip()

    return DemoServer(
        process,
        target,
        key,
        make_key("sdk-admin", "admin"),
        make_key("sdk-manager", "manager"),
        make_key("sdk-warehouse", "warehouse"),
    )


def order_xml(order_id: str, sku: str = "SKU-1004", quantity: int = 1) -> str:
    """A native order that the demo catalog accepts (unless the SKU or quantity says otherwise)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Order xmlns="urn:ordergate:order:v1">
  <OrderId>{order_id}</OrderId>
  <OrderDate>2026-11-23</OrderDate>
  <CustomerAccount>C-1001</CustomerAccount>
  <Currency>EUR</Currency>
  <Delivery>
    <Address><Street>Lindenstraße 12</Street><City>Hamburg</City>
      <PostalCode>20095</PostalCode><Country>DE</Country></Address>
    <Contact><Phone>+49 40 1234567</Phone></Contact>
  </Delivery>
  <Lines><Line><LineNumber>1</LineNumber><Sku>{sku}</Sku><Quantity>{quantity}</Quantity></Line></Lines>
</Order>"""


class FlakyProxy:
    """Relays TCP between the client and the server, and can break connections on cue:

    - `refuse(n)`: close the next n connections as soon as they are accepted;
    - `cut_after(n)`: on the next connection, once the client has sent n bytes (the request is
      out), stop passing the server's answer back, then close both sides: the server did the
      work, the client never hears of it.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._refuse = 0
        self._cut_after: int | None = None
        self.accepted = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._closed = False
        self._live: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def refuse(self, connections: int) -> None:
        with self._lock:
            self._refuse = connections

    def cut_after(self, client_bytes: int) -> None:
        with self._lock:
            self._cut_after = client_bytes

    def drop_all(self) -> None:
        """Cut every open connection now, as a network failure would."""
        with self._lock:
            live, self._live = self._live, []
        self._close_both(*live)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                refuse = self._refuse > 0
                self._refuse -= refuse
                cut_after, self._cut_after = self._cut_after, None
            if refuse:
                client.close()
                continue
            server = socket.create_connection(self._upstream)
            with self._lock:
                self._live += [client, server]
            state = {"blackhole": False}
            threading.Thread(
                target=self._pump, args=(client, server, state, cut_after), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, state, None), daemon=True
            ).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        state: dict[str, bool],
        cut_after: int | None,
    ) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if state["blackhole"] and cut_after is None:
                    continue  # the server's answer is swallowed
                sink.sendall(data)
                sent += len(data)
                if cut_after is not None and sent >= cut_after and not state["blackhole"]:
                    state["blackhole"] = True
                    self.cuts += 1
                    threading.Timer(0.5, self._close_both, args=(source, sink)).start()
        except OSError:
            pass
        finally:
            if not state["blackhole"]:
                self._close_both(source, sink)

    @staticmethod
    def _close_both(*sockets: socket.socket) -> None:
        for each in sockets:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()


def wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
