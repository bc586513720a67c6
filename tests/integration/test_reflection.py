"""Server reflection in both versions: v1 (asked first by grpcurl and buf curl) and v1alpha."""

from __future__ import annotations

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from ..support import ServerThread


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_the_services_and_serves_their_files(
    server: ServerThread, version: str
) -> None:
    with grpc.insecure_channel(server.target) as channel:
        # v1's messages are v1alpha's under another package: the same bytes on the wire.
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        listed, described = call(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol="ordergate.v1.OrderService"
                    ),
                ]
            ),
            timeout=10,
        )
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "ordergate.v1.OrderService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    files = described.file_descriptor_response.file_descriptor_proto
    assert any(b"ordergate/v1/order_service.proto" in f for f in files)
