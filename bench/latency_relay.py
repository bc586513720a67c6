"""A TCP relay that holds every chunk of bytes back for a fixed time, in each direction: a
database server made to look farther away (a round trip costs twice the delay more).

    python -m bench.latency_relay --target 127.0.0.1:5432 --delay-ms 0.5

prints the port it listens on (on 127.0.0.1), then relays until it is stopped. Each connection
gets a thread per direction that reads and one that sends what was read once it is due
(time.sleep, not the event loop's timers, which round up to a millisecond). Used by
`bench.submit_orders --db-delay-ms` (harness.latency_relay).
"""

from __future__ import annotations

import argparse
import queue
import socket
import threading
import time


def _forward(source: socket.socket, target: socket.socket, delay: float) -> None:
    due: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def send_when_due() -> None:
        while True:
            at, data = due.get()
            if not data:
                target.shutdown(socket.SHUT_WR)
                return
            if (wait := at - time.monotonic()) > 0:
                time.sleep(wait)
            target.sendall(data)

    sender = threading.Thread(target=send_when_due, daemon=True)
    sender.start()
    try:
        while data := source.recv(65536):
            due.put((time.monotonic() + delay, data))
    except OSError:
        pass
    due.put((0.0, b""))


def _relay(client: socket.socket, target: tuple[str, int], delay: float) -> None:
    server = socket.create_connection(target)
    for each in (client, server):
        each.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=_forward, args=(client, server, delay), daemon=True).start()
    threading.Thread(target=_forward, args=(server, client, delay), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--delay-ms", type=float, required=True, help="each way")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        _relay(client, (host, int(port)), args.delay_ms / 1000)


if __name__ == "__main__":
    main()
