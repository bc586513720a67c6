"""The SDK's shape: every RPC of the contract has a method, with the options every call takes."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import MethodDescriptor

import ordergate
from ordergate import AsyncClient, Client
from ordergate.v1 import order_service_pb2


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def all_rpcs() -> dict[str, MethodDescriptor]:
    """Every RPC of every ordergate.v1 service the generated code defines, by full name."""
    rpcs: dict[str, MethodDescriptor] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("ordergate.v1.") or not name.endswith("_pb2"):
            continue
        for service in module.DESCRIPTOR.services_by_name.values():
            rpcs |= {f"{service.full_name}.{m.name}": m for m in service.methods}
    return rpcs


def test_every_proto_file_is_imported_by_the_sdk() -> None:
    generated = Path(order_service_pb2.__file__).parent
    modules = {p.stem for p in generated.glob("*_pb2.py")}
    imported = {name.rsplit(".", 1)[-1] for name in sys.modules if name.startswith("ordergate.v1.")}
    assert modules <= imported


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_the_client_exposes_every_rpc(client_class: type) -> None:
    rpcs = all_rpcs()
    assert "ordergate.v1.OrderService.SubmitOrder" in rpcs
    missing = [rpc for rpc, d in rpcs.items() if not hasattr(client_class, snake(d.name))]
    assert missing == []


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_every_rpc_method_takes_the_call_options_keyword_only(client_class: type) -> None:
    for rpc, descriptor in all_rpcs().items():
        parameters = inspect.signature(getattr(client_class, snake(descriptor.name))).parameters
        streaming = descriptor.client_streaming or descriptor.server_streaming
        # A stream has no overall timeout: a bulk upload or a watch may rightly run for hours.
        for option in ("metadata", "retry") if streaming else ("timeout", "metadata", "retry"):
            assert option in parameters, (rpc, option)
            assert parameters[option].kind is inspect.Parameter.KEYWORD_ONLY, (rpc, option)


def test_the_sdk_imports_nothing_of_the_server() -> None:
    check = (
        "import sys, ordergate, ordergate._cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'ordergate_server', 'sqlalchemy', 'lxml', 'alembic', 'psycopg'}); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_public_api_is_what_the_docs_name() -> None:
    assert set(ordergate.__all__) >= {
        "Client",
        "AsyncClient",
        "ConnectionConfig",
        "RetryPolicy",
        "errors",
    }
    assert issubclass(ordergate.errors.AlreadyExistsError, ordergate.OrdergateError)
