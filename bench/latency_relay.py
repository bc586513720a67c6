"""A TCP relay to a database server that holds every chunk of bytes back for a fixed time, in
each direction, and counts round trips: a server made to look farther away (a round trip costs
twice the delay more), and a way to see how often a client waits for it.

    python -m bench.latency_relay --target 127.0.0.1:5432 --delay-ms 0.5

prints the port it listens on (on 127.0.0.1), then relays until it is stopped. Used by
`bench.submit_orders --db-delay-ms` (harness.latency_relay), and in-process, with no delay, by
tests/integration/test_group_commit.py to count a batch's round trips to PostgreSQL.

Each direction of a connection has a thread that reads and one that sends what was read once it
is due (time.sleep, not the event loop's timers, which round up to a millisecond). When either
side ends the connection, both sides are shut down: a database session does not outlive its
client.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable


class Relay:
    """Listens on 127.0.0.1 (`port`) and relays each connection to `target`, `delay` seconds
    later each way. `round_trips`: the times a client sent something after the server had last
    answered it (or for the first time). A statement that waits for its answer before the next
    is sent makes one; statements sent together and answered together make one between them."""

    def __init__(self, target: tuple[str, int], delay: float = 0.0) -> None:
        self._target = target
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._round_trips = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._round_trips

    def reset(self) -> None:
        with self._lock:
            self._round_trips = 0

    def close(self) -> None:
        """Accept no more connections (those open end with their client)."""
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._relay(client, socket.create_connection(self._target))

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        for each in (client, server):
            each.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answered = threading.Event()  # set: the client's next bytes start a round trip
        answered.set()

        def client_spoke() -> None:  # only the client-to-server reader calls this
            if answered.is_set():
                answered.clear()
                with self._lock:
                    self._round_trips += 1

        def end() -> None:  # wakes both readers; the last of the two senders closes
            for each in (client, server):
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)

        def close() -> None:
            client.close()
            server.close()

        both_ended = threading.Barrier(2, action=close)
        directions = ((client, server, client_spoke), (server, client, answered.set))
        for source, target, on_read in directions:
            threading.Thread(
                target=self._forward,
                args=(source, target, on_read, end, both_ended),
                daemon=True,
            ).start()

    def _forward(
        self,
        source: socket.socket,
        target: socket.socket,
        on_read: Callable[[], None],
        end: Callable[[], None],
        both_ended: threading.Barrier,
    ) -> None:
        due: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

        def send_when_due() -> None:
            try:
                while (item := due.get())[1]:
                    if (wait := item[0] - time.monotonic()) > 0:
                        time.sleep(wait)
                    target.sendall(item[1])
            except OSError:
                pass
            finally:
                end()
                both_ended.wait()

        threading.Thread(target=send_when_due, daemon=True).start()
        try:
            while data := source.recv(65536):
                on_read()
                due.put((time.monotonic() + self._delay, data))
        except OSError:
            pass
        due.put((0.0, b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--delay-ms", type=float, required=True, help="each way")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    relay = Relay((host, int(port)), args.delay_ms / 1000)
    print(relay.port, flush=True)
    threading.Event().wait()  # until stopped


if __name__ == "__main__":
    main()
