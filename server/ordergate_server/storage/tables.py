"""The schema. Alembic migrations (storage/migrations) create it; a test keeps both in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (stored naive) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    # The public part of a key (og_<id>_<secret>); the secret is stored only as a SHA-256 hash.
    Column("id", String(32), primary_key=True),
    Column("client_id", ForeignKey("clients.id"), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    # The key stops working at this time (a rotation sets it on the old key); NULL: never.
    Column("expires_at", UtcDateTime, nullable=True),
    # Peer networks (CIDR strings) the key may be used from; empty: anywhere.
    Column("allowed_cidrs", JSON, nullable=False, default=list),
    # The key that replaced this one in a rotation.
    Column("replaced_by", String(32), nullable=True),
    # A role narrower than its client's (a website client's storefront key); NULL: the client's.
    Column("role", String(20), nullable=True),
)

# Staff: the people who sign in to the console. A person acts with a role of the API's own
# table (domain/permissions.py), and the audit log names them.
staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    # argon2id (argon2-cffi's PasswordHasher), parameters included.
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime, nullable=True),
    # Sign-in throttling: failures in a row, and no sign-in before this time after too many.
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime, nullable=True),
)

# Console sessions. The cookie carries a random token; only its SHA-256 is stored, so a copy of
# the database signs nobody in. `csrf_token` is the session's synchronizer token for forms.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("user_id", ForeignKey("staff_users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
)

locations = Table(
    "locations",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # Lower first: allocation tries locations in this order.
    Column("priority", Integer, nullable=False, default=100),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("requires_special_handling", Boolean, nullable=False, default=False),
    # The base list price (last in price precedence), a decimal string, and its currency.
    Column("list_price", String(32), nullable=True),
    Column("list_currency", String(3), nullable=True),
)

# A bundle (kit) is a product made of components; it has no stock of its own.
bundle_components = Table(
    "bundle_components",
    metadata,
    Column("bundle_sku", ForeignKey("products.sku"), primary_key=True),
    Column("component_sku", ForeignKey("products.sku"), primary_key=True),
    Column("quantity", Integer, nullable=False),
)

# Other codes that name a product: aliases (kind 'alias', matched against <Sku>), barcodes
# (kind 'barcode', matched against <Barcode>) and old SKUs after a rename (kind 'renamed',
# matched like aliases until valid_until). Each code names exactly one product.
product_codes = Table(
    "product_codes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("sku", ForeignKey("products.sku"), nullable=False, index=True),
    # For kind 'renamed' (an old SKU): it resolves until this moment, and is refused after.
    Column("valid_until", UtcDateTime, nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("requires_special_handling", Boolean, nullable=False, default=False),
    # The website client the customer buys through (NULL: not tied to one).
    Column("client_id", ForeignKey("clients.id"), nullable=True, index=True),
    Column("price_list", String(64), nullable=True),
)

price_lists = Table(
    "price_lists",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
)

# One price of a SKU on a price list: from `min_quantity` pieces up (a quantity break), valid
# from `valid_from` (inclusive) to `valid_to` (exclusive; NULL for open-ended).
price_list_entries = Table(
    "price_list_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("price_list", ForeignKey("price_lists.code"), nullable=False),
    Column("sku", ForeignKey("products.sku"), nullable=False),
    Column("min_quantity", Integer, nullable=False),
    Column("unit_price", String(32), nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_to", UtcDateTime, nullable=True),
    UniqueConstraint("price_list", "sku", "min_quantity", "valid_from"),
)

contract_prices = Table(
    "contract_prices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer", ForeignKey("customers.account"), nullable=False),
    Column("sku", ForeignKey("products.sku"), nullable=False),
    Column("unit_price", String(32), nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_to", UtcDateTime, nullable=True),
    UniqueConstraint("customer", "sku", "valid_from"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("id", String(64), primary_key=True),  # the ERP's credit note number
    Column("customer", ForeignKey("customers.account"), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", String(32), nullable=False),
    Column("remaining", String(32), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
)

# Who changed what, when and why. Written in the same transaction as the change.
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(60), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Index(None, "subject", "seq"),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", ForeignKey("products.sku"), primary_key=True),
    Column("location", ForeignKey("locations.code"), primary_key=True),
    # Sellable pieces physically there: what allocation draws on. Quarantined pieces are not in
    # it (kept as it was so that on_hand - allocated stays what is available, for every client).
    Column("on_hand", Integer, nullable=False, default=0, server_default="0"),
    Column("allocated", Integer, nullable=False, default=0),
    # Pieces there that must not be sold: returns awaiting triage or in rework, damaged
    # receipts. Physically there = on_hand + quarantine (docs/inbound.md).
    Column("quarantine", Integer, nullable=False, default=0, server_default="0"),
    # Open purchase order lines for this SKU and location (ordered, not yet received), and
    # the earliest expected date among them (ISO date); kept by service/inbound in the
    # transaction that changes a purchase order, so that a stock read costs no extra query.
    Column("on_order", Integer, nullable=False, default=0, server_default="0"),
    Column("next_expected", String(10), nullable=True),
)

orders = Table(
    "orders",
    metadata,
    # seq orders the rows for keyset pagination; id is the public identifier.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("client_id", ForeignKey("clients.id"), nullable=False),
    # NULL for a problem submission whose XML carried no readable order id; NULLs never clash.
    Column("client_order_id", String(64), nullable=True),
    # The buyer's account: with the client and the order id, the order's identity (a buyer's
    # order number is unique for that buyer, not across the buyers one client relays). NULL
    # when no buyer could be read: such an order never replaces, and is never replaced by,
    # another submission (NULLs never clash).
    Column("customer_account", String(64), nullable=True),
    Column("channel", String(64), nullable=False, default=""),
    Column("currency", String(3), nullable=False, default=""),
    Column("order_time", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("state", String(20), nullable=False),
    Column("hold_reasons", JSON, nullable=False),
    Column("delivery", JSON, nullable=False),
    Column("notes", Text, nullable=False, default=""),
    Column("allocation_location", String(64), nullable=True),
    Column("problem_submission", Boolean, nullable=False, default=False),
    Column("content_sha256", String(64), nullable=False),
    # How it came in: API (gRPC or HTTP), FILE_DROP, or MANUAL (entered by staff for a client).
    Column("source", String(16), nullable=False, default="API"),
    # For a MANUAL order: the person or key that entered it.
    Column("entered_by", String(100), nullable=True),
    # Held for stock alone (INSUFFICIENT_STOCK, STOCK_SHORT): re-checked when stock rises
    # (service/recheck.py).
    Column("stock_hold", Boolean, nullable=False, default=False),
    # On a manual hold (MANUAL_HOLD): the state it returns to when released.
    Column("held_from", String(20), nullable=True),
    # (client, order id, buyer) in this order: the index also finds an order id without its
    # buyer (GetOrder by the shop's order number).
    UniqueConstraint("client_id", "client_order_id", "customer_account"),
    Index(None, "state", "seq"),
    Index(None, "customer_account", "seq"),
    Index(None, "stock_hold", "seq"),
    Index(None, "updated_at", "seq"),  # ListOrders by update time (pollers)
    Index(None, "client_id", "seq"),  # a website's ListOrders and watch: its own, in order
    Index(None, "created_at", "seq"),  # ListOrders by receipt time
    Index(None, "source", "seq"),  # ListOrders by source (MANUAL orders are few)
)

# The hold reason codes of each order on hold (none for other orders): what the exception
# queue is filtered and counted by, without reading every held order's reasons.
order_holds = Table(
    "order_holds",
    metadata,
    Column("order_seq", ForeignKey("orders.seq"), primary_key=True),
    Column("code", String(40), primary_key=True),
    Index(None, "code", "order_seq"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_seq", ForeignKey("orders.seq"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("line_number", Integer, nullable=False),
    Column("submitted_code", String(64), nullable=False),
    Column("sku", String(64), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", String(32), nullable=True),
    # Pieces of the line cancelled since it was ordered (CancelOrderLines, accept short), and
    # shipped so far; what is allocated is quantity - cancelled - shipped.
    Column("cancelled_quantity", Integer, nullable=False, default=0),
    Column("shipped_quantity", Integer, nullable=False, default=0),
)

# What was handed to a carrier: one or more per order (split shipments).
shipments = Table(
    "shipments",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("order_seq", ForeignKey("orders.seq"), nullable=False, index=True),
    Column("carrier", String(100), nullable=False),
    Column("tracking_number", String(100), nullable=True),
    Column("tracking_url", String(500), nullable=True),
    # SHIPPED (handed to the carrier), IN_TRANSIT, DELIVERED
    Column("state", String(20), nullable=False),
    # Handed over without a tracking number, on purpose; alerted if none comes within a day.
    Column("without_tracking", Boolean, nullable=False, default=False),
    Column("tracking_alerted", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("actor", String(100), nullable=False),
    # Idempotency key of the CreateShipment that made it.
    Column("request_id", String(64), nullable=True, unique=True),
)

shipment_lines = Table(
    "shipment_lines",
    metadata,
    Column("shipment_seq", ForeignKey("shipments.seq"), primary_key=True),
    # The order line's position (order_lines.position).
    Column("position", Integer, primary_key=True),
    Column("quantity", Integer, nullable=False),
)

order_events = Table(
    "order_events",
    metadata,
    # seq gives events a global order, so a watcher can resume after the last one it saw.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("order_seq", ForeignKey("orders.seq"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("type", String(40), nullable=False),
    Column("old_state", String(20), nullable=True),
    Column("new_state", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

# Every authenticated submission, as received: the raw payload, who, when and what became of it.
# (client_id, request_id) is the idempotency key; claiming it is the first write of a submit.
submissions = Table(
    "submissions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", ForeignKey("clients.id"), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("order_id", String(36), nullable=True),
    # ACCEPTED / ON_HOLD / DUPLICATE (same content, existing order) / REJECTED_DUPLICATE_ORDER_ID
    Column("outcome", String(40), nullable=False),
    # How it was received: GRPC, HTTP, FILE_DROP or MANUAL.
    Column("channel", String(16), nullable=False, default="GRPC"),
    UniqueConstraint("client_id", "request_id"),
    # An order's documents (GetOrderDocument).
    Index(None, "order_id"),
)

# SKUs whose available stock rose since the stock re-check last looked (service/recheck.py):
# marked by every stock log write that raises what is available, in its transaction, and taken
# away by the re-check that handled them. Many rises of one SKU are one row.
stock_rises = Table(
    "stock_rises",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("rose_at", UtcDateTime, nullable=False),
    # The latest rise, in words, for the events of the orders it lets through.
    Column("cause", Text, nullable=False),
)


# Every change of a stock record, in commit order: what a stock watcher resumes from.
stock_changes = Table(
    "stock_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location", String(64), nullable=False),
    # ALLOCATION, RELEASE, COUNT, ADJUSTMENT, DISPATCH, RECEIPT, RETURN_RECEIPT, RESTOCK,
    # DISPOSAL, RECONCILIATION
    Column("kind", String(20), nullable=False),
    Column("on_hand_delta", Integer, nullable=False),
    Column("allocated_delta", Integer, nullable=False),
    Column("on_hand_after", Integer, nullable=False),
    Column("allocated_after", Integer, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("order_id", String(36), nullable=True),
    # Idempotency key of a manual correction (AdjustStock, RecordStockCount).
    Column("request_id", String(64), nullable=True, unique=True),
    # The quarantine bucket's change and level after it (returns, damaged receipts).
    Column("quarantine_delta", Integer, nullable=False, default=0, server_default="0"),
    Column("quarantine_after", Integer, nullable=False, default=0, server_default="0"),
    # Read by seq (watchers) and request_id (corrections) only. No index by SKU: it would put
    # each order's changes on scattered pages, written at every commit (migration 0006).
)

# Operational alerts, such as OVERSOLD (a store sale left web orders short).
alerts = Table(
    "alerts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("sku", String(64), nullable=True),
    Column("location", String(64), nullable=True),
    Column("message", Text, nullable=False),
    Column("order_ids", JSON, nullable=False),
    # The stock correction that raised it, if one did.
    Column("request_id", String(64), nullable=True, index=True),
    Index(None, "kind", "location"),  # divergences counted per location (metrics)
)

# Files taken from a client's drop folder (service/file_import.py), one row per distinct content.
# A copy of a file already imported is answered from here instead of being read again.
imported_files = Table(
    "imported_files",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("client_id", ForeignKey("clients.id"), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("imported_at", UtcDateTime, nullable=False),
    # The result file's content: per order its position, ids, state and reasons.
    Column("result", JSON, nullable=False),
    UniqueConstraint("client_id", "content_sha256"),
)

# --- webhooks (service/webhooks/, docs/webhooks.md) ----------------------------------------

# A client's endpoint: where its events are sent, signed with its secret.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", ForeignKey("clients.id"), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    # The event types it receives; empty: all.
    Column("event_types", JSON, nullable=False),
    Column("description", String(200), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False),
    # Why it was disabled, when the server did it (failing for too long); "" otherwise.
    Column("disabled_reason", Text, nullable=False, default=""),
    # The signing secret (whsec_...), sealed with ORDERGATE_PII_KEY when one is set; during a
    # rotation's overlap the previous one signs too.
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_until", UtcDateTime, nullable=True),
    # Since when every attempt has failed (NULL: the last one succeeded, or none was made).
    Column("failing_since", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# What happened, as sent: one row per event, its data rendered when it happened.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    # The webhook-id of every delivery of it, retries and redeliveries included.
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(40), nullable=False),
    # The client whose event it is; NULL: every client's (stock).
    Column("client_id", ForeignKey("clients.id"), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    Index(None, "occurred_at"),
)

# One event to one endpoint: tried until delivered or the retry schedule is spent.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_seq", ForeignKey("webhook_events.seq"), nullable=False),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id"), nullable=False),
    # PENDING, DELIVERED, FAILED (the schedule spent)
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    # A worker delivering it holds it until then; another may take it over after.
    Column("lease_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Index(None, "state", "next_attempt_at"),
    Index(None, "endpoint_id", "created_at"),
    Index(None, "event_seq"),
    Index(None, "created_at"),  # pruned by age (service/retention.py)
)

# Every attempt of a delivery: its answer or error, and how long it took.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("delivery_id", ForeignKey("webhook_deliveries.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),  # NULL: no HTTP answer at all
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=False, default=""),
)

# How far the fan-out has read each log it turns into webhook events.
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("log", String(20), primary_key=True),  # order_events, stock_changes, alerts
    Column("after_seq", Integer, nullable=False),
)


# --- goods coming in (service/inbound/, docs/inbound.md, docs/returns.md) ----------------------

# A purchase order: goods a supplier is to deliver to one location.
purchase_orders = Table(
    "purchase_orders",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("po_number", String(64), nullable=False, unique=True),
    Column("supplier", String(200), nullable=False),
    Column("location", ForeignKey("locations.code"), nullable=False),
    # OPEN, PARTLY_RECEIVED, RECEIVED (every line in full), CLOSED (by a person, short or not)
    Column("state", String(20), nullable=False),
    Column("notes", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("close_reason", Text, nullable=False, default=""),
    # What was asked for, so that the same CreatePurchaseOrder again is answered, not refused.
    Column("content_sha256", String(64), nullable=False),
    Index(None, "state", "seq"),
)

purchase_order_lines = Table(
    "purchase_order_lines",
    metadata,
    Column("po_seq", ForeignKey("purchase_orders.seq"), primary_key=True),
    Column("line_number", Integer, primary_key=True),
    Column("sku", ForeignKey("products.sku"), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("expected_date", String(10), nullable=False),  # ISO date
    Column("notes", Text, nullable=False, default=""),
    # Good pieces received into stock, and damaged ones received into quarantine.
    Column("received", Integer, nullable=False, default=0),
    Column("damaged", Integer, nullable=False, default=0),
)

# One delivery against a purchase order (several per order).
receipts = Table(
    "receipts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("po_seq", ForeignKey("purchase_orders.seq"), nullable=False, index=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

receipt_lines = Table(
    "receipt_lines",
    metadata,
    Column("receipt_seq", ForeignKey("receipts.seq"), primary_key=True),
    Column("line_number", Integer, primary_key=True),
    Column("received", Integer, nullable=False),
    Column("damaged", Integer, nullable=False),
)

# Where a purchase order's goods differ from what was ordered: OVER (more came), UNDER (closed
# short), DAMAGED; with who and why.
purchase_order_variances = Table(
    "purchase_order_variances",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("po_seq", ForeignKey("purchase_orders.seq"), nullable=False, index=True),
    Column("line_number", Integer, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("receipt_id", String(36), nullable=True),
)

# A return (RMA) of shipped goods. The RMA id is the client's, unique per client.
returns = Table(
    "returns",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("client_id", ForeignKey("clients.id"), nullable=False),
    Column("rma_id", String(64), nullable=False),
    Column("order_seq", ForeignKey("orders.seq"), nullable=False, index=True),
    # AUTHORIZED, RECEIVED, TRIAGED (some pieces in rework), COMPLETED
    Column("state", String(20), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("location", String(64), nullable=True),  # where it was received
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    # The credit note issued when it completed (docs/returns.md), if one was.
    Column("credit_note_id", String(64), nullable=True),
    UniqueConstraint("client_id", "rma_id"),
    Index(None, "rma_id"),
    Index(None, "state", "seq"),
)

return_lines = Table(
    "return_lines",
    metadata,
    Column("return_seq", ForeignKey("returns.seq"), primary_key=True),
    # The order line's position (order_lines.position).
    Column("position", Integer, primary_key=True),
    Column("line_number", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),  # authorized
    Column("received", Integer, nullable=False, default=0),
    # Of the received pieces: in rework, restocked, disposed (the rest await triage), and the
    # disposed pieces the buyer is not credited for.
    Column("rework", Integer, nullable=False, default=0),
    Column("restocked", Integer, nullable=False, default=0),
    Column("disposed", Integer, nullable=False, default=0),
    Column("not_credited", Integer, nullable=False, default=0),
)

# A stock reconciliation: the warehouse's (or ERP's) snapshot against ours, every difference.
reconciliations = Table(
    "reconciliations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("source", String(200), nullable=False, default=""),
    Column("threshold_percent", String(16), nullable=False),
    Column("compared", Integer, nullable=False),
)

reconciliation_lines = Table(
    "reconciliation_lines",
    metadata,
    Column("reconciliation_seq", ForeignKey("reconciliations.seq"), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("location", String(64), primary_key=True),
    Column("position", Integer, nullable=False),  # in the snapshot as sent
    Column("ours", Integer, nullable=False),  # on hand + quarantine before
    Column("theirs", Integer, nullable=False),
    Column("diverged", Boolean, nullable=False),
)


# How far `ordergate prune` has gone per final order state: orders in that state last changed
# up to `pruned_until` have had their documents and old events removed (service/retention.py).
retention_cursors = Table(
    "retention_cursors",
    metadata,
    Column("state", String(20), primary_key=True),
    Column("pruned_until", UtcDateTime, nullable=False),
)
