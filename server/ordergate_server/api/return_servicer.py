"""ReturnService: proto in -> service call -> proto out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from ordergate.v1 import return_service_pb2 as pb
from ordergate.v1 import return_service_pb2_grpc

from ..service.inbound import returns
from ..storage import Database
from ..storage import returns as store
from .calls import current_principal
from .convert import timestamp
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_STATES = {
    returns.AUTHORIZED: pb.RETURN_STATE_AUTHORIZED,
    returns.RECEIVED: pb.RETURN_STATE_RECEIVED,
    returns.TRIAGED: pb.RETURN_STATE_TRIAGED,
    returns.COMPLETED: pb.RETURN_STATE_COMPLETED,
}
_STATE_NAMES = {value: key for key, value in _STATES.items()}
_DECISIONS = {
    pb.TRIAGE_DECISION_RESTOCK: returns.RESTOCK,
    pb.TRIAGE_DECISION_REWORK: returns.REWORK,
    pb.TRIAGE_DECISION_DISPOSE: returns.DISPOSE,
}


def return_to_proto(found: store.ReturnRecord) -> pb.Return:
    return pb.Return(
        rma_id=found.rma_id,
        client=found.client,
        order_id=found.order_id,
        client_order_id=found.client_order_id,
        state=_STATES[found.state],
        reason=found.reason,
        location_code=found.location,
        lines=[
            pb.ReturnLine(
                line_number=line.line_number,
                sku=line.sku,
                quantity=line.quantity,
                received_quantity=line.received,
                awaiting_triage=line.awaiting,
                in_rework=line.rework,
                restocked=line.restocked,
                disposed=line.disposed,
                not_credited=line.not_credited,
            )
            for line in found.lines
        ],
        create_time=timestamp(found.created_at),
        update_time=timestamp(found.updated_at),
        created_by=found.created_by,
        credit_note_id=found.credit_note_id,
    )


class ReturnServicer(return_service_pb2_grpc.ReturnServiceServicer):
    def __init__(
        self, db: Database, run: Runner, stock_rose: Callable[[], None] = lambda: None
    ) -> None:
        self._db = db
        self._run = run
        # A restock raises stock: the re-check of stock-held orders runs at once.
        self._stock_rose = stock_rose

    async def CreateReturn(
        self, request: pb.CreateReturnRequest, context: Context
    ) -> pb.CreateReturnResponse:
        found, replayed = await self._run(
            returns.create_return,
            self._db,
            current_principal(),
            rma_id=request.rma_id,
            order_ref=request.order_id,
            lines=[(line.line_number, line.quantity) for line in request.lines],
            reason=request.reason,
        )
        return pb.CreateReturnResponse(rma=return_to_proto(found), replayed=replayed)

    async def GetReturn(
        self, request: pb.GetReturnRequest, context: Context
    ) -> pb.GetReturnResponse:
        found = await self._run(
            returns.get_return,
            self._db,
            current_principal(),
            rma_id=request.rma_id,
            client=request.client,
        )
        return pb.GetReturnResponse(rma=return_to_proto(found))

    async def ListReturns(
        self, request: pb.ListReturnsRequest, context: Context
    ) -> pb.ListReturnsResponse:
        page = await self._run(
            returns.list_returns,
            self._db,
            current_principal(),
            state=_STATE_NAMES.get(request.state, ""),
            order_id=request.order_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListReturnsResponse(
            returns=[return_to_proto(r) for r in page.returns],
            next_page_token=page.next_page_token,
        )

    async def ReceiveReturn(
        self, request: pb.ReceiveReturnRequest, context: Context
    ) -> pb.ReceiveReturnResponse:
        found = await self._run(
            returns.receive_return,
            self._db,
            current_principal(),
            rma_id=request.rma_id,
            client=request.client,
            location=request.location_code,
            lines=[(line.line_number, line.quantity) for line in request.lines],
            note=request.note,
        )
        return pb.ReceiveReturnResponse(rma=return_to_proto(found))

    async def TriageReturn(
        self, request: pb.TriageReturnRequest, context: Context
    ) -> pb.TriageReturnResponse:
        found = await self._run(
            returns.triage_return,
            self._db,
            current_principal(),
            rma_id=request.rma_id,
            client=request.client,
            decisions=[
                returns.Decision(
                    line.line_number,
                    _DECISIONS.get(line.decision, ""),
                    line.quantity,
                    line.reason,
                    line.withhold_credit,
                )
                for line in request.lines
            ],
        )
        self._stock_rose()
        return pb.TriageReturnResponse(rma=return_to_proto(found))
