"""The garbage collector of a serving process, tuned for many short-lived calls.

Reference counting frees almost everything a call allocates the moment the call is done; the
cyclic collector only has to find the few reference cycles (asyncio futures and exceptions with
their tracebacks). By default it runs a young-generation pass every 700 net container
allocations, and now and then a full pass over every object in the process: the imported
modules, the compiled XSDs, SQLAlchemy's caches, none of which ever become garbage. Under
SubmitOrder load that was 2.6% of a worker's time (about 1,000 passes in 12 s, measured with
gc.callbacks; bench/README.md).

So, once the server is built: `gc.freeze()` moves everything alive at that point out of the
collector's sight for good, and the young-generation threshold goes up, so a pass comes every
`threshold` allocations (10,000 by default: 23 young passes instead of 1,736 took a fifth of
the time, and a higher threshold saved no more but held more garbage). Cycles are still collected,
in fewer, larger passes; the garbage waiting for one is bounded by the threshold.
"""

from __future__ import annotations

import gc


def tune_for_serving(threshold: int) -> None:
    """Freeze what exists now (call it after start-up) and collect young objects every
    `threshold` allocations; 0 keeps Python's default threshold."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    if threshold > 0:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(threshold, middle, oldest)
