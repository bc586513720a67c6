"""Generated code for the `ordergate.v1` contract (see protos/ and scripts/gen_protos.py)."""
