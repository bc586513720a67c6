"""The message codecs of the Connect endpoints: binary protobuf, and JSON in the proto3 JSON
mapping, compact (connectrpc's google.protobuf codec indents every answer, a quarter of a
100-SKU stock answer's bytes) and strict: a field the message does not have is an
`invalid_argument` naming it, as connect-go and grpc-gateway answer, rather than silently
ignored (a misspelt `customerAcount` would otherwise become an empty account)."""

from __future__ import annotations

from typing import Any, TypeVar

from connectrpc.codec import Codec
from connectrpc.compat import google_protobuf_binary_codec
from google.protobuf import json_format
from google.protobuf.message import Message

from ...service.errors import ErrorKind, ServiceError
from .connect_calls import connect_error

M = TypeVar("M", bound=Message)


class StrictCompactJSON(Codec[Message, Any]):
    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return json_format.MessageToJson(message, indent=None).encode()

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        message = message_class()
        try:
            json_format.Parse(bytes(data), message, ignore_unknown_fields=False)
        except json_format.ParseError as bad:
            # json_format names the field and, for a bad value, the value: bounded here.
            raise connect_error(
                ServiceError(ErrorKind.INVALID_ARGUMENT, "REQUEST_MALFORMED", str(bad)[:300])
            ) from None
        return message


CODECS: list[Codec[Any, Any]] = [google_protobuf_binary_codec(), StrictCompactJSON()]
