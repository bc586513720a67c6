"""Webhooks (docs/webhooks.md): a client's endpoints (endpoints.py, targets.py), the events the
logs become (fanout.py), and their delivery, signed and retried (deliveries.py, sender.py)."""
