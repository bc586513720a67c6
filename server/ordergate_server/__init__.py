"""Ordergate server: gRPC order ingestion with XML validation, rules, allocation and a SQL store."""

__version__ = "0.1.0"
