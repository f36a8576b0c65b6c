"""Garbage-collector settings for long-running servers holding thousands of open streams.

CPython's cyclic collector scans every tracked object in a generation when it runs. A server that
keeps thousands of connections open has a large, stable heap, so the default thresholds (a young
collection every 700 allocations, full ones as they accumulate) make it walk that heap again and
again: measured in the orchestrator at 5,000 watchers, full collections took about 0.5 s each and
cost most of the p99 delivery latency (docs/benchmarks.md). Almost everything here is freed by
reference counting; the collector is only needed for the rare cycle.
"""

import gc

# Young collections every 50,000 net allocations instead of 700; older ones as rarely as before
# relative to them. Cycles are still collected, just in larger, far less frequent batches.
THRESHOLDS = (50_000, 20, 100)


def settle_after_start_up() -> None:
    """Move what start-up allocated out of the collector's sight, and collect less often from now on.

    ``gc.freeze()`` puts every object alive now (modules, settings, pools: the long-lived heap) in a
    permanent generation that collections never scan.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
