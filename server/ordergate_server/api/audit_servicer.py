"""AuditService: proto in -> service call -> proto out."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import audit_service_pb2 as pb
from ordergate.v1 import audit_service_pb2_grpc

from ..service import audit_log
from ..storage import Database, audit
from .page_budget import PageBudget
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, db: Database, run: Runner) -> None:
        self._db = db
        self._run = run

    async def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: Context
    ) -> pb.ListAuditEntriesResponse:
        budget = PageBudget(_entry)
        _, token = await self._run(
            audit_log.list_audit_entries,
            self._db,
            order_id=request.order_id,
            subject=request.subject,
            actor=request.actor,
            start=request.start_time.ToDatetime(tzinfo=UTC)
            if request.HasField("start_time")
            else None,
            end=request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else None,
            page_size=request.page_size,
            page_token=request.page_token,
            fits=budget.fits,
        )
        return pb.ListAuditEntriesResponse(entries=budget.messages, next_page_token=token)


def _entry(logged: tuple[int, audit.AuditEntry]) -> pb.AuditEntry:
    seq, entry = logged
    stamp = Timestamp()
    stamp.FromDatetime(entry.at)
    return pb.AuditEntry(
        id=seq,
        create_time=stamp,
        actor=entry.actor,
        role=entry.role,
        action=entry.action,
        subject=entry.subject,
        reason=entry.reason,
        before_json=json.dumps(entry.before) if entry.before is not None else "",
        after_json=json.dumps(entry.after) if entry.after is not None else "",
    )
