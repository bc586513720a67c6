"""gRPC entry points: thin servicers (proto -> service call -> proto), interceptors, assembly."""
