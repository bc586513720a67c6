"""The HTTP listener of one server process: uvicorn, as a library, in the event loop grpc.aio
runs in, on a socket this module makes (shared by the workers of `serve --workers`, as the gRPC
port is)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ssl import CERT_REQUIRED

import uvicorn
from starlette.types import ASGIApp

MAX_CONNECTIONS = 4096


class _Server(uvicorn.Server):
    # The process handles SIGTERM itself (serve_until_signalled): uvicorn's own handlers would
    # re-raise the signal once it stopped, before gRPC drained.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listening_socket(listen: str, *, shared: bool) -> socket.socket:
    """A TCP socket bound to `listen` (host:port) and listening; with `shared`, SO_REUSEPORT.

    Made with IPPROTO_TCP explicitly: with protocol 0 asyncio does not recognise it as TCP,
    sets no TCP_NODELAY, and each keep-alive request then waits ~40 ms for delayed ACKs."""
    host, _, port = listen.rpartition(":")
    family, _, _, _, address = socket.getaddrinfo(
        host.strip("[]"), int(port), type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on ORDERGATE_HTTP_LISTEN={listen}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


# uvicorn tells at INFO that it started and stopped, as the server's own lines do already.
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


@dataclass(frozen=True)
class HttpTls:
    """The gRPC port's certificate settings, for HTTPS on this listener too: the same
    certificate and key, and with a client CA, the same demand for a client certificate."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


class HttpListener:
    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        grace_seconds: float,
        tls: HttpTls | None = None,
    ) -> None:
        tls_options: dict[str, object] = {}
        if tls is not None:
            tls_options = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}
            if tls.client_ca_file:
                tls_options |= {"ssl_ca_certs": tls.client_ca_file, "ssl_cert_reqs": CERT_REQUIRED}
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,  # calls are logged by the call handling, as gRPC's are
            server_header=False,
            # Longer than the idle timeout of the balancers in front (AWS ALB and GCP: 60 s),
            # so that it is they who close an idle connection, never us under their feet.
            timeout_keep_alive=75,
            # Connections (idle keep-alive ones too) and calls at once per process; past it,
            # 503. Calls themselves are capped by ORDERGATE_MAX_CONCURRENT_RPCS as on gRPC;
            # this bounds what many open connections can hold (memory, descriptors).
            limit_concurrency=MAX_CONNECTIONS,
            timeout_graceful_shutdown=max(1, int(grace_seconds)),
            **tls_options,  # type: ignore[arg-type]
        )
        config.load()  # the TLS context now: a certificate that cannot be read ends the start
        self._server = _Server(config)
        self._sock = sock
        self._task: asyncio.Task[None] | None = None
        self.port = int(sock.getsockname()[1])

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # its start-up failed: raise that
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop taking connections; calls in progress finish within the grace period."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task
