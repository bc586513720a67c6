"""The google.rpc error details Ordergate sends, decoded for HTTP clients without the protos."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.rpc import error_details_pb2

# The detail messages an error of ours may carry (api/errors.py), by their full names.
DETAIL_TYPES: dict[str, Any] = {
    "google.rpc.ErrorInfo": error_details_pb2.ErrorInfo,
    "google.rpc.BadRequest": error_details_pb2.BadRequest,
    "google.rpc.RetryInfo": error_details_pb2.RetryInfo,
    "google.rpc.PreconditionFailure": error_details_pb2.PreconditionFailure,
}


def decoded(type_name: str, value: bytes) -> dict[str, Any] | None:
    """A detail's message as proto3 JSON (what Connect calls its `debug` form); None for a
    type that is not ours."""
    message_type = DETAIL_TYPES.get(type_name)
    if message_type is None:
        return None
    result: dict[str, Any] = json_format.MessageToDict(message_type.FromString(value))
    return result
