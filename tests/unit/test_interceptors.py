"""The interceptors' guarded handlers: made once per method, never shared across methods."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from ordergate_server.api.interceptors import ErrorInterceptor

ORDERS = "/ordergate.v1.OrderService/SubmitOrder"
STOCK = "/ordergate.v1.InventoryService/GetStockLevels"
HEALTH = "/grpc.health.v1.Health/Check"


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _handler() -> Any:
    return grpc.unary_unary_rpc_method_handler(lambda request, context: request)


def _intercept(interceptor: ErrorInterceptor, method: str, handler: Any) -> Any:
    async def continuation(_details: Any) -> Any:
        return handler

    return asyncio.run(interceptor.intercept_service(continuation, _Details(method)))


def test_a_method_is_wrapped_once_and_again_only_for_another_handler() -> None:
    interceptor = ErrorInterceptor()
    orders, stock = _handler(), _handler()

    first = _intercept(interceptor, ORDERS, orders)
    assert first is not orders  # guarded
    assert _intercept(interceptor, ORDERS, orders) is first  # kept, not wrapped per call
    assert _intercept(interceptor, STOCK, stock) not in (first, stock)  # its own wrapper

    replaced = _handler()
    again = _intercept(interceptor, ORDERS, replaced)
    assert again not in (first, replaced)  # a new handler for the method gets its own wrapper


def test_public_and_unknown_methods_pass_untouched() -> None:
    interceptor = ErrorInterceptor()
    health = _handler()
    assert _intercept(interceptor, HEALTH, health) is health
    assert _intercept(interceptor, HEALTH, health) is health
    assert _intercept(interceptor, "/no.Such/Method", None) is None
    assert "/no.Such/Method" not in interceptor._guarded  # nothing kept for made-up names
