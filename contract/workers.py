"""Work spread over the machine's CPUs with its results in order: the one way a job's script uses every core.

Forked worker processes, so the function can be any callable, a closure too: the workers inherit it rather than
receive it; each item and each result travels pickled. At most two items a worker are in flight, so memory stays
bounded whatever the number of items. An item's exception is raised in the caller when that item's turn comes,
so the first failing item in order is the one reported, as one process going through them would report it; a
worker that dies (killed for memory) fails the call rather than leaving it waiting.
"""
import collections
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

# The CPUs this process may run on (a container's limit included), at most 8: more rarely pays for its memory.
WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

_FUNCTION: "Callable | None" = None  # the function of the call whose workers are being forked


def _call(item):
    return _FUNCTION(item)


def in_order(function: Callable, items: Iterable, workers: "int | None" = None) -> Iterator:
    """function(item) for each item, computed side by side in `workers` (WORKERS) forked processes, yielded in the
    items' order. One item or worker, or a system without fork: computed here, one after the other. (A process
    whose other threads hold locks, a Spark driver's, passes workers=1: a forked child could wait on one forever.)"""
    items = list(items)
    workers = min(len(items), WORKERS if workers is None else workers)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(function, items)
        return
    global _FUNCTION
    _FUNCTION = function
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending = collections.deque()
        try:
            for item in items:
                pending.append(pool.submit(_call, item))  # the first submit forks the workers, which keep _FUNCTION
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # given up (an error, or the caller stopped): nothing more is started
                future.cancel()
