"""WebhookService: proto in -> service call -> proto out."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any, TypeAlias

import grpc

from ordergate.v1 import webhook_service_pb2 as pb
from ordergate.v1 import webhook_service_pb2_grpc

from ..service.errors import ErrorKind, FieldViolation, ServiceError
from ..service.webhooks import deliveries, endpoints
from ..service.webhooks.targets import Networks
from ..storage import Database
from ..storage import webhooks as store
from .calls import current_principal
from .convert import timestamp
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

DEFAULT_OVERLAP = timedelta(hours=24)
_UPDATABLE = ("url", "event_types", "description", "enabled")
_STATE_TO_PROTO = {
    store.PENDING: pb.WEBHOOK_DELIVERY_STATE_PENDING,
    store.DELIVERED: pb.WEBHOOK_DELIVERY_STATE_DELIVERED,
    store.FAILED: pb.WEBHOOK_DELIVERY_STATE_FAILED,
}
_STATE_FROM_PROTO = {value: key for key, value in _STATE_TO_PROTO.items()}


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    def __init__(self, db: Database, run: Runner, allowed: Networks) -> None:
        self._db = db
        self._run = run
        self._allowed = allowed

    async def CreateWebhookEndpoint(
        self, request: pb.CreateWebhookEndpointRequest, context: Context
    ) -> pb.CreateWebhookEndpointResponse:
        endpoint, secret = await self._run(
            endpoints.create_endpoint,
            self._db,
            current_principal(),
            client=request.client,
            url=request.url,
            event_types=list(request.event_types),
            description=request.description,
            allowed=self._allowed,
        )
        return pb.CreateWebhookEndpointResponse(endpoint=_endpoint(endpoint), secret=secret)

    async def ListWebhookEndpoints(
        self, request: pb.ListWebhookEndpointsRequest, context: Context
    ) -> pb.ListWebhookEndpointsResponse:
        found = await self._run(
            endpoints.list_endpoints, self._db, current_principal(), request.client
        )
        return pb.ListWebhookEndpointsResponse(endpoints=[_endpoint(e) for e in found])

    async def UpdateWebhookEndpoint(
        self, request: pb.UpdateWebhookEndpointRequest, context: Context
    ) -> pb.UpdateWebhookEndpointResponse:
        paths = set(request.update_mask.paths) or set(_UPDATABLE)
        unknown = sorted(paths - set(_UPDATABLE))
        if unknown:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "UPDATE_MASK_INVALID",
                f"Only {', '.join(_UPDATABLE)} can be changed.",
                field_violations=[FieldViolation("update_mask", f"{unknown[0][:64]} cannot")],
            )
        given = request.endpoint
        changed = await self._run(
            endpoints.update_endpoint,
            self._db,
            current_principal(),
            given.id,
            url=given.url if "url" in paths else None,
            event_types=list(given.event_types) if "event_types" in paths else None,
            description=given.description if "description" in paths else None,
            enabled=given.enabled if "enabled" in paths else None,
            allowed=self._allowed,
        )
        return pb.UpdateWebhookEndpointResponse(endpoint=_endpoint(changed))

    async def DeleteWebhookEndpoint(
        self, request: pb.DeleteWebhookEndpointRequest, context: Context
    ) -> pb.DeleteWebhookEndpointResponse:
        await self._run(endpoints.delete_endpoint, self._db, current_principal(), request.id)
        return pb.DeleteWebhookEndpointResponse()

    async def RotateWebhookSecret(
        self, request: pb.RotateWebhookSecretRequest, context: Context
    ) -> pb.RotateWebhookSecretResponse:
        overlap = request.overlap.ToTimedelta() if request.HasField("overlap") else DEFAULT_OVERLAP
        endpoint, secret = await self._run(
            endpoints.rotate_secret, self._db, current_principal(), request.id, overlap
        )
        return pb.RotateWebhookSecretResponse(endpoint=_endpoint(endpoint), secret=secret)

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Context
    ) -> pb.ListWebhookDeliveriesResponse:
        found, token = await self._run(
            deliveries.list_deliveries,
            self._db,
            current_principal(),
            endpoint_id=request.endpoint_id,
            event_id=request.event_id,
            state=_STATE_FROM_PROTO.get(request.state, ""),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[_delivery(d) for d in found], next_page_token=token
        )

    async def RedeliverWebhookEvents(
        self, request: pb.RedeliverWebhookEventsRequest, context: Context
    ) -> pb.RedeliverWebhookEventsResponse:
        count = await self._run(
            deliveries.redeliver,
            self._db,
            current_principal(),
            request.endpoint_id,
            event_id=request.event_id,
            since=request.start_time.ToDatetime(tzinfo=UTC)
            if request.HasField("start_time")
            else None,
            until=request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else None,
        )
        return pb.RedeliverWebhookEventsResponse(events=count)


def _endpoint(endpoint: store.Endpoint) -> pb.WebhookEndpoint:
    return pb.WebhookEndpoint(
        id=endpoint.id,
        client=endpoint.client,
        url=endpoint.url,
        event_types=endpoint.event_types,
        description=endpoint.description,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=timestamp(endpoint.failing_since),
        previous_secret_expire_time=timestamp(endpoint.previous_secret_until)
        if endpoint.previous_secret
        else None,
        create_time=timestamp(endpoint.created_at),
        update_time=timestamp(endpoint.updated_at),
    )


def _delivery(delivery: store.Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        state=_STATE_TO_PROTO.get(delivery.state, pb.WEBHOOK_DELIVERY_STATE_UNSPECIFIED),
        next_attempt_time=timestamp(delivery.next_attempt_at)
        if delivery.state == store.PENDING
        else None,
        create_time=timestamp(delivery.created_at),
        deliver_time=timestamp(delivery.delivered_at),
        attempts=[
            pb.WebhookAttempt(
                number=a.number,
                attempt_time=timestamp(a.at),
                status_code=a.status_code or 0,
                latency_ms=a.latency_ms,
                error=a.error,
            )
            for a in delivery.log
        ],
    )
