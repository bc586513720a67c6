"""What storage holds, as limits every input is checked against before anything is stored.

A value that storage cannot hold must be refused or held before its transaction: on PostgreSQL
it fails the statement (and with it every order stored in the same group commit), on SQLite it
is stored as given. The numbers are the columns' (storage/tables.py); a test keeps them in step.
docs/security.md lists the limit of every request field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from .model import MAX_LINE_QUANTITY, HoldCode, HoldReason, OrderDraft

# INTEGER columns (quantities, on hand, allocated, line numbers, priorities): 32-bit signed.
MAX_INTEGER = 2**31 - 1
# Pieces of one order line (model.whole_positive_quantity), of one stock record, of one
# correction.
MAX_PIECES = MAX_LINE_QUANTITY

CODE_CHARS = 64  # ids and codes: order ids, customer accounts, SKUs, locations, channels
CURRENCY_CHARS = 3  # ISO 4217
DECIMAL_CHARS = 32  # prices and amounts, kept as decimal text
NAME_CHARS = 200  # names, labels, audit subjects
TEXT_CHARS = 2000  # free text: reasons, notes

# Hold reasons kept per order: the first ones found, then one MORE_REASONS with the total. An
# order with 50,000 schema errors otherwise made an 8.8 MB answer and jammed every list page.
MAX_HOLD_REASONS = 100
# Longest hold reason message (a schema error quotes the offending value).
MAX_REASON_CHARS = 500

# How much of a client's value an error message or a hold reason repeats.
SHOWN_CHARS = 40


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """`value` quoted for a message, cut to `limit` characters (with its length when cut), so
    that no message repeats client input without bound."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def capped(reasons: Sequence[HoldReason]) -> list[HoldReason]:
    """At most MAX_HOLD_REASONS reasons, each message at most MAX_REASON_CHARS, then one
    MORE_REASONS saying how many there were in all."""
    kept = [
        reason
        if len(reason.message) <= MAX_REASON_CHARS
        else HoldReason(
            reason.code,
            reason.field[:NAME_CHARS],
            reason.message[:MAX_REASON_CHARS] + "…",
            reason.rule,
        )
        for reason in reasons[:MAX_HOLD_REASONS]
    ]
    if len(reasons) > MAX_HOLD_REASONS:
        kept.append(
            HoldReason(
                HoldCode.MORE_REASONS,
                "",
                f"{len(reasons) - MAX_HOLD_REASONS:,} more reasons are not listed "
                f"({len(reasons):,} in all). Fix the ones listed and send the order again.",
            )
        )
    return kept


def unstorable_reasons(draft: OrderDraft) -> list[HoldReason]:
    """What in a readable order storage cannot hold as given: an id or code longer than its
    column, a price with more digits than it keeps, a date outside the years 1 to 9999 in UTC.
    Such an order is stored as a problem submission with these reasons (its document kept)."""
    reasons: list[HoldReason] = []
    for name, value, limit in (
        ("order_id", draft.client_order_id, CODE_CHARS),
        ("customer_account", draft.customer_account, CODE_CHARS),
        ("channel", draft.channel, CODE_CHARS),
        ("currency", draft.currency, CURRENCY_CHARS),
    ):
        if len(value) > limit:
            reasons.append(_too_long(name, value, limit))
    for index, line in enumerate(draft.lines):
        path = f"lines[{index}]"
        if len(line.code) > CODE_CHARS:
            field = "barcode" if line.code_is_barcode else "sku"
            reasons.append(_too_long(f"{path}.{field}", line.code, CODE_CHARS))
        if not 0 <= line.line_number <= MAX_INTEGER:
            reasons.append(
                _out_of_range(
                    f"{path}.line_number", f"Line number {line.line_number} is out of range."
                )
            )
        if line.unit_price is not None and len(str(line.unit_price)) > DECIMAL_CHARS:
            reasons.append(
                _out_of_range(
                    f"{path}.unit_price",
                    f"Unit price {shown(str(line.unit_price))} has more digits than the "
                    f"{DECIMAL_CHARS} characters a price is kept in.",
                )
            )
    delivery = draft.delivery
    for name, moment in (
        ("order_date", draft.order_time),
        ("delivery.window_start", delivery.window_start),
        ("delivery.window_end", delivery.window_end),
    ):
        if moment is not None:
            try:
                moment.astimezone(UTC)
            except OverflowError:
                reasons.append(
                    _out_of_range(
                        name, f"{moment.isoformat()} is before year 1 or after 9999 in UTC."
                    )
                )
    return reasons


def _too_long(field: str, value: str, limit: int) -> HoldReason:
    return HoldReason(
        HoldCode.VALUE_TOO_LONG,
        field,
        f"{field} {shown(value)} is longer than the {limit} characters Ordergate keeps.",
    )


def _out_of_range(field: str, sentence: str) -> HoldReason:
    return HoldReason(HoldCode.VALUE_OUT_OF_RANGE, field, sentence)
