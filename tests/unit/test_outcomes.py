"""The access log's and metrics' view of a call: bounded labels."""

from __future__ import annotations

from ordergate_server.api.calls import BoundedLabels


def test_client_labels_stay_bounded_whatever_the_callers() -> None:
    label = BoundedLabels(3)
    assert [label(c) for c in ("a", "b", "a", "c")] == ["a", "b", "a", "c"]
    assert label("d") == "other"  # a fourth client: counted, under "other"
    assert label("b") == "b"  # the first three keep their own
    assert {label(f"x{n}") for n in range(1000)} == {"other"}
