"""A person's action in the console as a call of the API: the same servicer method, the same
role check (domain/permissions.py, one table for keys and people), limits, metrics and access log
as a gRPC or Connect call, with the person as the caller. The console adds no way to change an
order that the API does not have."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from ...service.errors import ServiceError
from ...service.rate_limits import KeyLimits
from ...service.staff import Session
from .. import calls, permissions
from ..request_checks import check_request


def allowed(session: Session, method: str) -> bool:
    """Whether the person's role may call `method` (Service/Method), as permissions.py says."""
    return session.role in permissions.ALLOWED_ROLES.get(f"/ordergate.v1.{method}", frozenset())


class Caller:
    """Calls the API's servicers as a signed-in person.

    At most `slots` console calls run at once in a process (the rest wait their turn): people
    browsing never take more of the server than that from the API's callers."""

    def __init__(
        self,
        servicers: Mapping[str, object],
        outcomes: calls.Outcomes,
        limits: KeyLimits,
        slots: int = 2,
    ) -> None:
        self._servicers = servicers
        self._outcomes = outcomes
        self._limits = limits
        self._slots = asyncio.Semaphore(slots)

    async def __call__(self, session: Session, method: str, request: Any, peer: str) -> Any:
        """`method` is Service/Method, such as ExceptionQueueService/ReleaseOrder. Raises the
        ServiceError the API would have answered."""
        path = f"/ordergate.v1.{method}"
        service, name = method.split("/")
        servicer = self._servicers[f"ordergate.v1.{service}"]
        record = calls.start_call_record(time.perf_counter(), via="console")
        principal = session.principal
        calls.note(client=principal.client_name)
        code = "OK"
        try:
            calls.check_role(principal, path)
            calls.set_principal(principal)
            self._limits.take(principal.key_id)
            check_request(request)
            calls.note_request(request)
            async with self._slots:
                response = await getattr(servicer, name)(request, calls.NO_CONTEXT)
            calls.note_response(response)
            return response
        except Exception as exc:
            error = calls.as_service_error(exc, path)
            if error is None:
                code = "CANCELLED"
                raise
            code = error.kind.value
            if error is exc:
                raise
            raise error from None
        finally:
            duration = time.perf_counter() - record.started
            self._outcomes.record(path, code, record, duration, peer)


__all__ = ["Caller", "ServiceError", "allowed"]
