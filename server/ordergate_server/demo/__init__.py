"""Demo data for `ordergate serve --demo` (the same file documents the catalog JSON format)."""

from pathlib import Path

DEMO_CATALOG = Path(__file__).resolve().parent / "catalog.json"
DEMO_CLIENT = "demo-shop"
DEMO_STAFF_CLIENT = "demo-office"  # the demo's staff key: a manager, who works the queue
