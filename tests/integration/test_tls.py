"""TLS and mutual TLS on the gRPC port, with certificates made for the test, through the SDK;
HTTPS on the HTTP listener (the console, Connect) with the same certificate."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ordergate
from ordergate.v1 import order_pb2
from ordergate_server.storage import Database

from ..support import Keys, ServerThread, order_xml
from ..tls_certs import Authority


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority("Ordergate test CA")


def _server(db: Database, tmp_path: Path, authority: Authority, *, mutual: bool) -> ServerThread:
    cert, key = authority.issue("ordergate-server", server=True).write(tmp_path, "server")
    settings: dict[str, object] = {"tls_cert_file": str(cert), "tls_key_file": str(key)}
    if mutual:
        ca = tmp_path / "clients-ca.pem"
        ca.write_bytes(authority.pem)
        settings["tls_client_ca_file"] = str(ca)
    return ServerThread(db, **settings)


@pytest.fixture
def tls_server(db: Database, tmp_path: Path, authority: Authority) -> Iterator[ServerThread]:
    server = _server(db, tmp_path, authority, mutual=False)
    yield server
    server.stop()


@pytest.fixture
def mtls_server(db: Database, tmp_path: Path, authority: Authority) -> Iterator[ServerThread]:
    server = _server(db, tmp_path, authority, mutual=True)
    yield server
    server.stop()


def _client(target: str, key: str, **tls: object) -> ordergate.Client:
    config = ordergate.ConnectionConfig(target=target, api_key=key, **tls)  # type: ignore[arg-type]
    return ordergate.Client(config, timeout=10, retry=ordergate.NO_RETRY)


def _submits(client: ordergate.Client, order_id: str) -> bool:
    with client:
        reply = client.submit_order(order_xml(order_id))
    return reply.order.state == order_pb2.ORDER_STATE_ACCEPTED


def test_tls_serves_clients_that_trust_the_server(
    tls_server: ServerThread, keys: Keys, authority: Authority
) -> None:
    client = _client(tls_server.target, keys.shop, root_certificates=authority.pem)
    assert _submits(client, "TLS-1")


def test_a_plaintext_client_cannot_talk_to_a_tls_server(
    tls_server: ServerThread, keys: Keys
) -> None:
    with pytest.raises(ordergate.errors.UnavailableError):
        _submits(_client(tls_server.target, keys.shop), "TLS-2")


def test_a_client_that_does_not_trust_the_server_certificate_refuses_it(
    tls_server: ServerThread, keys: Keys
) -> None:
    stranger = Authority("Some other CA")
    with pytest.raises(ordergate.errors.UnavailableError):
        _submits(_client(tls_server.target, keys.shop, root_certificates=stranger.pem), "TLS-3")


def test_mutual_tls_serves_a_client_with_a_certificate_from_the_client_ca(
    mtls_server: ServerThread, keys: Keys, authority: Authority
) -> None:
    issued = authority.issue("shop-a", server=False)
    client = _client(
        mtls_server.target,
        keys.shop,
        root_certificates=authority.pem,
        certificate_chain=issued.certificate_pem,
        private_key=issued.key_pem,
    )
    assert _submits(client, "MTLS-1")


def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_server: ServerThread, keys: Keys, authority: Authority
) -> None:
    client = _client(mtls_server.target, keys.shop, root_certificates=authority.pem)
    with pytest.raises(ordergate.errors.UnavailableError):
        _submits(client, "MTLS-2")


def test_mutual_tls_refuses_a_certificate_from_another_ca(
    mtls_server: ServerThread, keys: Keys, authority: Authority
) -> None:
    issued = Authority("Some other CA").issue("shop-a", server=False)
    client = _client(
        mtls_server.target,
        keys.shop,
        root_certificates=authority.pem,
        certificate_chain=issued.certificate_pem,
        private_key=issued.key_pem,
    )
    with pytest.raises(ordergate.errors.UnavailableError):
        _submits(client, "MTLS-3")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_http_listener_serves_https_with_the_same_certificate(
    db: Database, tmp_path: Path, authority: Authority, keys: Keys
) -> None:
    cert, key = authority.issue("ordergate-server", server=True).write(tmp_path, "server")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(authority.pem)
    server = ServerThread(
        db, tls_cert_file=str(cert), tls_key_file=str(key), http_listen="127.0.0.1:0"
    )
    try:
        port = server.running.http_port
        trusted = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                str(ca),
                f"https://127.0.0.1:{port}/console/sign-in",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert trusted.stdout == "200", trusted.stderr
        plaintext = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", f"http://127.0.0.1:{port}/console/sign-in"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert plaintext.returncode != 0  # no page over plaintext
        untrusted = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", f"https://127.0.0.1:{port}/console/sign-in"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert untrusted.returncode == 60  # curl: the peer's certificate is not trusted
    finally:
        server.stop()
