"""WatchOrderEvents: every event in order, filtered per caller, resumable from an event id."""

from __future__ import annotations

import grpc
import pytest

from ordergate.v1 import order_service_pb2 as pb

from ..support import Api, Keys, auth, order_xml, rich_error


def watch(api: Api, key: str, after: str = "") -> object:
    return api.orders.WatchOrderEvents(
        pb.WatchOrderEventsRequest(after_event_id=after), metadata=auth(key), timeout=30
    )


def anchor(api: Api) -> str:
    """An event to watch after: a stream started "from now" may begin after what follows."""
    return api.submit(order_xml("EV-0")).order.events[-1].id


def test_a_website_sees_its_own_events_and_an_admin_sees_all(api: Api, keys: Keys) -> None:
    start = anchor(api)
    mine, everything = watch(api, keys.shop, start), watch(api, keys.admin, start)
    theirs = api.submit(order_xml("EV-B"), key=keys.other_shop).order
    own = api.submit(order_xml("EV-A")).order

    first = next(mine)  # type: ignore[call-overload]
    assert (first.order_id, first.client_order_id, first.event.type) == (
        own.id,
        "EV-A",
        "SUBMITTED",
    )
    assert first.event.id == own.events[0].id
    seen = [next(everything).order_id for _ in range(2)]  # type: ignore[call-overload]
    assert seen == [theirs.id, own.id]
    mine.cancel()  # type: ignore[attr-defined]
    everything.cancel()  # type: ignore[attr-defined]


def test_breaking_the_stream_and_resuming_from_the_last_id_misses_nothing(
    api: Api, keys: Keys
) -> None:
    stream = watch(api, keys.shop, anchor(api))
    order = api.submit(order_xml("EV-C", [("SKU-1003", 1)])).order
    last = next(stream).event  # type: ignore[call-overload]
    stream.cancel()  # type: ignore[attr-defined]  # the client goes away here

    api.submit(order_xml("EV-D", [("NOPE", 1)]))
    api.orders.CancelOrder(
        pb.CancelOrderRequest(id=order.id, reason="test"), metadata=auth(keys.shop)
    )

    resumed = watch(api, keys.shop, after=last.id)
    missed = [next(resumed) for _ in range(2)]  # type: ignore[call-overload]
    resumed.cancel()  # type: ignore[attr-defined]
    assert [(m.client_order_id, m.event.type) for m in missed] == [
        ("EV-D", "SUBMITTED"),
        ("EV-C", "CANCELLED"),
    ]
    assert all(m.event.id and m.event.create_time.seconds for m in missed)


def test_an_unknown_event_id_is_not_found(api: Api, keys: Keys) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        next(watch(api, keys.shop, after="no-such-event"))  # type: ignore[call-overload]
    assert rich_error(caught.value).reason == "EVENT_NOT_FOUND"
