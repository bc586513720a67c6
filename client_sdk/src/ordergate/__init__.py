"""Ordergate client SDK.

`ordergate.v1` holds the generated protobuf and gRPC modules for the `ordergate.v1` contract.
"""

__version__ = "0.1.0"
