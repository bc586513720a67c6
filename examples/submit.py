"""Submit order files to a running Ordergate server and print each answer.

    python examples/submit.py --key og_... examples/full-order.xml examples/invalid/*.xml

Uses only the SDK's generated code (pip install ./client_sdk). The request_id is derived from
the file's content, so running it twice replays instead of creating a second order.
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

import grpc
from google.protobuf import json_format

from ordergate.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--target", default=os.environ.get("ORDERGATE_TARGET", "127.0.0.1:50051"))
    parser.add_argument("--key", default=os.environ.get("ORDERGATE_API_KEY", ""))
    parser.add_argument("--json", action="store_true", help="print the whole response as JSON")
    args = parser.parse_args()

    with grpc.insecure_channel(args.target) as channel:
        orders = order_service_pb2_grpc.OrderServiceStub(channel)
        for path in args.files:
            payload = path.read_bytes()
            request = order_service_pb2.SubmitOrderRequest(
                request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, payload.hex())), order_xml=payload
            )
            try:
                reply = orders.SubmitOrder(
                    request, metadata=(("authorization", f"Bearer {args.key}"),)
                )
            except grpc.RpcError as error:
                print(f"{path}: refused: {error.code().name}: {error.details()}")
                continue
            if args.json:
                print(json_format.MessageToJson(reply))
                continue
            order = reply.order
            state = order_pb2.OrderState.Name(order.state).removeprefix("ORDER_STATE_")
            replay = " (replayed)" if reply.replayed else ""
            print(f"{path}: {state}{replay} id={order.id} order_id={order.client_order_id}")
            for reason in order.hold_reasons:
                print(f"    {reason.code} {reason.field}: {reason.message}")


if __name__ == "__main__":
    main()
