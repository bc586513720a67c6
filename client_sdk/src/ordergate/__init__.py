"""Ordergate client SDK.

    from ordergate import Client
    with Client(target="127.0.0.1:50051", api_key="og_...") as client:
        reply = client.submit_order(pathlib.Path("order.xml"))
        print(reply.order.state, [r.code for r in reply.order.hold_reasons])

`Client` (sync) and `AsyncClient` (asyncio) have one method per RPC; errors are the
OrdergateError tree in `ordergate.errors`; `ordergate.v1` is the generated code.
"""

from . import _errors as errors
from ._async_client import AsyncClient
from ._client import Client
from ._common import BulkResult, OrderDocument
from ._config import ConnectionConfig
from ._errors import OrdergateError
from ._request_id import derive_request_id
from ._retry import DEFAULT, NO_RETRY, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "DEFAULT",
    "NO_RETRY",
    "AsyncClient",
    "BulkResult",
    "Client",
    "ConnectionConfig",
    "OrderDocument",
    "OrdergateError",
    "RetryPolicy",
    "derive_request_id",
    "errors",
]
