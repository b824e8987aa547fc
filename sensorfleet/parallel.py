"""Run one function over many items in worker processes: the one pool the day runners and the
synthetic fleet writer share.

``spawn`` start method everywhere: a forked child inherits the parent's threads (numba's and
blosc's pools, Dagster's) in whatever state they were, and the code must behave the same on
macOS and Windows, where fork is not the default. Each worker sets its thread counts once at
start (:class:`Threads`), so workers x threads does not oversubscribe the cores. Results arrive in
completion order; a failing item becomes an :class:`Outcome` with its error, never stops the
others unless ``stop_on_error``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

Item = TypeVar("Item")
Value = TypeVar("Value")


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""cgroup v2 CPU quota of this process's container: ``"<quota_us> <period_us>"`` or ``"max ..."``."""


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPU cores this process may use: its CPU affinity set (a container's cpuset, ``taskset``,
    one core per partition process in benchmarks/bench_fleet_scale.py), capped by the cgroup v2
    CPU quota (a Kubernetes CPU limit, rounded up), at least 1.

    ``os.cpu_count()`` counts the machine's cores: a run pod given 8 of a 64-core node would start
    64 workers and oversubscribe its share.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 file, or not the expected two fields
        pass
    return max(1, cores)


@dataclass(frozen=True)
class Threads:
    """Thread counts a worker process sets when it starts (None: the library's default)."""

    numba: int | None = None
    """numba's parallel threads (at least 1)."""
    blosc: int | None = None
    """c-blosc's compression threads of numcodecs."""


def set_threads(threads: Threads) -> None:
    """Apply ``threads`` in this process (the pool's worker initializer)."""
    if threads.numba is not None:
        import numba

        numba.set_num_threads(max(1, threads.numba))
    if threads.blosc is not None:
        import numcodecs.blosc

        numcodecs.blosc.set_nthreads(threads.blosc)


@dataclass(frozen=True)
class Outcome(Generic[Item, Value]):
    """One item's result: ``value``, or the exception it raised (``error`` not None)."""

    item: Item
    value: Value | None = None
    error: BaseException | None = None

    @property
    def error_text(self) -> str:
        """``"TypeName: message"`` of the error ('' when the item succeeded)."""
        return f"{type(self.error).__name__}: {self.error}" if self.error is not None else ""


def _portable(exc: BaseException) -> BaseException:
    """``exc`` when it survives pickling (the pool sends it back), else a RuntimeError with its
    text: an exception whose ``__init__`` takes other arguments than its ``args`` cannot be
    unpickled, and would break the whole pool instead of one item."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _call(function: Callable[[Item], Value], item: Item) -> tuple[Value | None, BaseException | None]:
    try:
        return function(item), None
    except Exception as exc:  # one bad item never stops the others
        return None, _portable(exc)


def run_each(
    function: Callable[[Item], Value],
    items: Sequence[Item],
    *,
    workers: int,
    threads: Threads = Threads(),
    on_done: Callable[[Outcome[Item, Value]], None] | None = None,
    stop_on_error: bool = False,
) -> list[Outcome[Item, Value]]:
    """``function(item)`` for every item, in ``min(workers, len(items))`` spawned processes
    (``workers <= 1``: one after the other in this process, ``threads`` untouched).

    ``function`` must be picklable (a module-level function, or a ``functools.partial`` of one).
    ``on_done(outcome)`` is called in this process as each item finishes (completion order).
    ``stop_on_error``: the first error cancels the items not yet started, waits for the running
    ones and is raised; otherwise errors are returned in the outcomes. Returns the outcomes in
    completion order.
    """
    outcomes: list[Outcome[Item, Value]] = []
    if not items:
        return outcomes

    def finish(outcome: Outcome[Item, Value]) -> None:
        if stop_on_error and outcome.error is not None:
            raise outcome.error
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)

    if workers <= 1:
        for item in items:
            if stop_on_error:
                finish(Outcome(item, function(item)))  # the original exception, traceback and all
            else:
                value, error = _call(function, item)
                finish(Outcome(item, value, error))
        return outcomes
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=context,
                             initializer=set_threads, initargs=(threads,)) as pool:
        futures: dict[Future[tuple[Value | None, BaseException | None]], Item] = {
            pool.submit(_call, function, item): item for item in items
        }
        try:
            for future in as_completed(futures):
                try:
                    value, error = future.result()
                except Exception as exc:  # the worker died (BrokenProcessPool) or its result did not arrive
                    value, error = None, exc
                finish(Outcome(futures[future], value, error))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # items finished so far stay complete
            raise
    return outcomes


class Helper:
    """One spawned worker process kept while a batch runs, for work handed over now and collected
    later while this process goes on (the second of two figures, say).

    ``warm`` (picklable, no arguments) runs in the worker when it starts, so the first hand-over
    does not pay for the worker's imports. :meth:`submit` returns a future; a worker that died
    makes its futures raise ``BrokenProcessPool`` (callers redo such work themselves). Memory and
    CPU: one more Python process, idle between hand-overs. As for every spawned process, the
    parent's main script is imported again in the worker: it must keep its work under
    ``if __name__ == "__main__":`` (the ``sensorfleet`` command and ``python -m pipelines.cli`` do).
    """

    def __init__(self, warm: Callable[[], None] | None = None) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=warm)
        self._pool.submit(int)  # the worker starts (and warms up) now, not at the first hand-over

    def submit(self, function: Callable[..., Value], *args: object, **kwargs: object) -> Future[Value]:
        """``function(*args, **kwargs)`` in the worker (all picklable: a module-level function)."""
        return self._pool.submit(function, *args, **kwargs)

    def close(self) -> None:
        """Wait for the work handed over, then stop the worker."""
        self._pool.shutdown(wait=True, cancel_futures=False)
