"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from ordergate_server.service.catalog_load import load_catalog
from ordergate_server.storage import Database

from ..support import Keys


@pytest.fixture
def ubl_catalog(db: Database, keys: Keys) -> None:
    """The products and buyers the two examples name, tied to website client shop-a."""
    load_catalog(
        db,
        {
            "products": [
                {"sku": "121212", "name": "Needle 4mm", "barcodes": ["7560000012345"]},
                {"sku": "SItemNo011", "name": "Wet tissues"},
                {"sku": "SItemNo001", "name": "Paint", "barcodes": ["1234567890123"]},
            ],
            "customers": [
                {"account": "7300010000001", "name": "Helseforetak", "currency": "NOK"}
                | {"client": "shop-a"},
                {"account": "7300070011115", "name": "Johnssons byggvaror", "currency": "SEK"}
                | {"client": "shop-a"},
            ],
            "stock": [
                {"sku": sku, "location": "WH-MAIN", "on_hand": 1000}
                for sku in ("121212", "SItemNo011", "SItemNo001")
            ],
        },
    )
