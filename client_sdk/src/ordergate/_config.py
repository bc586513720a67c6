"""How to reach a server: the connection settings and the channels built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio


def _read(value: bytes | str | Path | None) -> bytes | None:
    """PEM material given inline (bytes) or as a file path (str or Path)."""
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


@dataclass(frozen=True)
class ConnectionConfig:
    """Where the server is and how to talk to it.

    TLS is on when `tls` is true or any of the PEM fields is given; `root_certificates` None
    means the system's trust store. `certificate_chain` and `private_key` are for mutual TLS.
    """

    target: str = "127.0.0.1:50051"
    api_key: str = ""
    tls: bool = False
    root_certificates: bytes | str | Path | None = None
    certificate_chain: bytes | str | Path | None = None
    private_key: bytes | str | Path | None = None
    # Ping an idle connection every so often, so a dead peer is noticed before the next call.
    keepalive_time_s: float = 30.0
    keepalive_timeout_s: float = 10.0
    max_message_bytes: int = 16 * 1024 * 1024
    extra_options: tuple[tuple[str, int | str], ...] = field(default=())

    @property
    def uses_tls(self) -> bool:
        return self.tls or any(
            v is not None
            for v in (self.root_certificates, self.certificate_chain, self.private_key)
        )

    def _options(self) -> list[tuple[str, int | str]]:
        return [
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            # The SDK retries itself (retry=...), with backoff and the request_id rules.
            ("grpc.enable_retries", 0),
            # Reconnect soon after a lost connection, so that the SDK's retries find a fresh one
            # rather than a channel still waiting out gRPC's default one-second backoff.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 5000),
            *self.extra_options,
        ]

    def _credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.root_certificates),
            private_key=_read(self.private_key),
            certificate_chain=_read(self.certificate_chain),
        )

    def channel(self) -> grpc.Channel:
        if self.uses_tls:
            return grpc.secure_channel(self.target, self._credentials(), options=self._options())
        return grpc.insecure_channel(self.target, options=self._options())

    def aio_channel(self) -> grpc.aio.Channel:
        if self.uses_tls:
            return grpc.aio.secure_channel(
                self.target, self._credentials(), options=self._options()
            )
        return grpc.aio.insecure_channel(self.target, options=self._options())
