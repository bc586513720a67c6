"""bench.history's round summary: the issue's bounds are judged on it, so each ratio must pair
measurements of the same round, and the median must be over rounds."""

from __future__ import annotations

from typing import Any

from bench.history import report, summarise


def measured(round_: int, stored: int, submit: float, stream: float, p99: float) -> dict[str, Any]:
    return {
        "database": "sqlite",
        "round": round_,
        "stored": stored,
        "submit_ratio": submit,
        "stream_ratio": stream,
        "latency_ms": {"GetOrder (id)": [1.0, p99]},
    }


def test_ratios_pair_sizes_within_a_round_and_the_median_is_over_rounds() -> None:
    # Listed in the interleaved order the bench runs them; round 2's machine is twice as fast.
    results = [
        measured(1, 0, 0.30, 0.40, 2.0),
        measured(1, 100, 0.30, 0.40, 4.0),
        measured(1, 1000, 0.27, 0.44, 5.0),
        measured(2, 100, 0.60, 0.80, 2.0),
        measured(2, 1000, 0.60, 0.72, 3.0),
        measured(2, 0, 0.60, 0.80, 1.0),
        measured(3, 1000, 0.33, 0.40, 8.0),
        measured(3, 0, 0.30, 0.40, 2.0),
        measured(3, 100, 0.30, 0.40, 4.0),
    ]

    summary = summarise(results, [0, 100, 1000])

    assert summary["rounds"] == 3
    submit = summary["intake at 1000 / at 0"]["SubmitOrder"]
    assert submit["each"] == [0.9, 1.0, 1.1]
    assert (submit["median"], submit["min"], submit["max"]) == (1.0, 0.9, 1.1)
    assert summary["intake at 1000 / at 0"]["SubmitOrders (8 streams)"]["each"] == [1.1, 0.9, 1.0]
    assert summary["read p99 at 1000 / at 100"]["GetOrder (id)"]["each"] == [1.25, 1.5, 2.0]
    assert summary["read p99 at 1000 / at 100"]["GetOrder (id)"]["median"] == 1.5
    assert summary["read p99 at 1000 / at 0"]["GetOrder (id)"]["median"] == 3.0


def test_the_report_puts_each_database_side_by_side_with_medians_and_ranges() -> None:
    sqlite = summarise(
        [measured(r, size, 0.3, 0.4, p99) for r in (1, 2) for size, p99 in ((0, 2.0), (100, 4.0))]
        + [measured(1, 1000, 0.27, 0.4, 5.0), measured(2, 1000, 0.3, 0.4, 6.0)],
        [0, 100, 1000],
    )
    postgres = summarise(
        [
            {**m, "database": "postgres"}
            for m in (
                measured(1, 0, 0.2, 0.2, 1.0),
                measured(1, 100, 0.2, 0.2, 1.0),
                measured(1, 1000, 0.2, 0.2, 1.2),
            )
        ],
        [0, 100, 1000],
    )

    table = report([sqlite, postgres]).splitlines()

    assert table[0] == "| intake at the largest ÷ at the smallest | sqlite | postgres |"
    assert table[2] == "| SubmitOrder | **0.95** (0.90 to 1.00) | **1.00** (1.00 to 1.00) |"
    reads = table[table.index("") + 1 :]
    assert reads[0].count("sqlite") == 2
    assert reads[0].count("postgres") == 2
    assert reads[2] == (
        "| GetOrder (id) | **1.38** (1.25 to 1.50) | **2.75** (2.50 to 3.00)"
        " | **1.20** (1.20 to 1.20) | **1.20** (1.20 to 1.20) |"
    )
