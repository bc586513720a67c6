"""The serving process's garbage collector: start-up objects frozen, cycles still collected.

Run in a fresh interpreter each: freezing is for the life of a process, not for the tests'."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_start_up_objects_are_frozen_and_reference_cycles_are_still_collected() -> None:
    out = _run(
        """
        import gc, weakref
        from ordergate_server.gc_tuning import tune_for_serving

        class Node:
            pass

        tune_for_serving(2_000)
        print(gc.get_threshold()[0], gc.get_freeze_count() > 1_000)
        alive = weakref.WeakSet()
        for _ in range(100_000):  # garbage cycles, as asyncio futures and tracebacks make
            a, b = Node(), Node()
            a.other, b.other = b, a
            alive.add(a)
        print(len(alive))
        """
    )
    threshold, frozen, alive = out.split()
    assert (threshold, frozen) == ("2000", "True")
    # Collected by the collector's own passes (no gc.collect() here), not left to pile up.
    assert int(alive) < 5_000


def test_threshold_zero_keeps_pythons_default() -> None:
    kept = _run(
        """
        import gc
        from ordergate_server.gc_tuning import tune_for_serving

        before = gc.get_threshold()
        tune_for_serving(0)
        print(gc.get_threshold() == before)
        """
    )
    assert kept == "True"
