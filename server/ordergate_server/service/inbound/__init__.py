"""Goods coming in: purchase orders and receipts, returns with triage, and the CSV file drop
that brings both (docs/inbound.md, docs/returns.md)."""
