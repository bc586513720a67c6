"""Storing many submissions in one transaction: the group commit behind SubmitOrder.

Each submission stored on its own costs about fifteen statements and a commit; under load most
of an order's CPU went there (bench/stages.py). Here the plain case, a new request creating a
new order, is stored for a whole batch with the same number of statements as for one: one read
of the idempotency claims, of the order ids, of the catalog and of the locked stock; the orders
are judged and allocated one after another in memory, in arrival order, exactly as they would
have been one transaction at a time; then one executemany per table and one commit. On
PostgreSQL the statements that do not wait for each other share a round trip.

Everything else (a retried request_id, an order id that exists or repeats within the batch, a
held order's resubmission, a correction, an unreadable document) is stored after that commit,
one at a time through `store_submission`, in batch order. If the batch transaction fails for any
reason but a lost database (a unique key another replica claimed meanwhile, a value the
database refuses), nothing of it is kept and every submission is stored one at a time instead:
the same answers, only slower, and one submission's failure is its own (store_submission keeps
a refused one as a problem submission). One caller's document can never fail another's.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from ..domain.ids import new_id
from ..domain.model import OrderDraft
from ..domain.records import OrderRecord
from ..storage import Database, bulk, catalog, orders, stock_log, submissions
from .submit import (
    CatalogView,
    Evaluation,
    PreparedSubmission,
    StockView,
    SubmitResult,
    allocation_changes,
    new_order,
    store_submission,
    submission_row,
)

# What each submission of a batch came to: its answer, or what store_submission raised for it
# (a ServiceError refusing it, or a failure such as a lost database connection).
Outcome = SubmitResult | Exception


def store_submissions(db: Database, batch: Sequence[PreparedSubmission]) -> list[Outcome]:
    """Store `batch` and answer each submission, in order. A submission's answer is the same as
    `store_submission` would have given it with the batch stored one by one, in this order."""
    try:
        with db.transaction() as tx:
            stored = _store_new_orders(tx, batch)
    except OperationalError:
        raise  # the database is gone: nothing stored, every caller gets UNAVAILABLE and retries
    except Exception:
        # A concurrent claim won a unique key, or one submission holds what the database
        # refuses: one at a time, so that each has its own transaction and its own outcome.
        stored = {}
    outcomes: list[Outcome] = []
    for index, prepared in enumerate(batch):
        if index in stored:
            outcomes.append(stored[index])
            continue
        try:
            outcomes.append(store_submission(db, prepared))
        except Exception as failure:  # handed to this submission's caller, not raised here
            outcomes.append(failure)
    return outcomes


def _store_new_orders(
    tx: Connection, batch: Sequence[PreparedSubmission]
) -> dict[int, SubmitResult]:
    """Store the submissions of `batch` that create a new order; their answers by position.

    On PostgreSQL the statements go out in a pipeline (bulk.pipelined), waiting for answers
    only where the next step needs them: the claims, order ids, products and customers
    together; then the bundles, stock and locations; then the writes. With BEGIN and COMMIT,
    five round trips to the database per batch."""
    with bulk.pipelined(tx):
        requests = [(p.principal.client_id, p.request_id) for p in batch]
        identities = [p.identity for p in batch]
        claimed = submissions.send_claimed(tx, requests)
        existing = orders.send_existing_identities(tx, identities, lock=True)
        # The catalog of every readable document, sent before the answers above are known:
        # the usual batch is all new orders, and a few extra keys cost less than a round trip.
        catalog_view = CatalogView.send(
            tx, [p.document for p in batch if isinstance(p.document, OrderDraft)]
        )
        drafts = _new_orders(batch, requests, identities, claimed(), existing())
        if not drafts:
            return {}
        view = catalog_view()
        judged = {
            index: view.judge(draft, batch[index].principal) for index, draft in drafts.items()
        }
        stock = StockView.read(
            tx, [lines for reasons, lines in judged.values() if not reasons], lock=True
        )

        new: list[tuple[int, OrderRecord]] = []
        changes: list[stock_log.StockChange] = []
        claims: list[submissions.NewSubmission] = []
        answers: dict[int, SubmitResult] = {}
        for index, (reasons, lines) in judged.items():  # in arrival order: earlier takes first
            prepared = batch[index]
            if reasons:
                evaluation = Evaluation(tuple(reasons), lines, "", {})
            else:
                evaluation = stock.plan(lines)
                if evaluation.location:
                    stock.take(evaluation)
            order = new_order(new_id(), prepared, evaluation)
            if evaluation.location:
                changes += allocation_changes(
                    evaluation, prepared.principal.client_name, order.id, prepared.received_at
                )
            new.append((prepared.principal.client_id, order))
            claims.append(submission_row(prepared, order.id))
            answers[index] = SubmitResult(order, replayed=False)

        catalog.allocate_at(tx, stock.taken)
        stock_log.record(tx, changes)
        orders.insert_orders(tx, new)
        # Last, as in store_submission: the idempotency claims (a concurrent twin fails them).
        submissions.insert_many(tx, claims)
    return answers


def _new_orders(
    batch: Sequence[PreparedSubmission],
    requests: Sequence[tuple[int, str]],
    identities: Sequence[orders.Identity],
    claimed: set[tuple[int, str]],
    existing: set[orders.Identity],
) -> dict[int, OrderDraft]:
    """The submissions of `batch` that plainly create a new order, by position: readable, by
    the client itself, with a request_id (`requests`, by position) and an identity (client,
    order id, buyer: `identities`) that neither the database (`claimed`, `existing`; the orders
    are locked on PostgreSQL) nor an earlier submission of the batch has seen."""
    seen_requests, seen_orders = set(claimed), set(existing)
    plain: dict[int, OrderDraft] = {}
    for index, prepared in enumerate(batch):
        request, identity = requests[index], identities[index]
        if (
            prepared.acting is None
            and prepared.amendment is None
            and isinstance(prepared.document, OrderDraft)
            and request not in seen_requests
            and identity not in seen_orders
        ):
            plain[index] = prepared.document
        # A later submission with the same request_id or order waits for this one's outcome.
        seen_requests.add(request)
        if identity[1] and identity[2]:
            seen_orders.add(identity)
    return plain
