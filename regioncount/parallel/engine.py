"""Where tasks run, knowing nothing of what they compute: this process, a local Dask cluster or an existing one
(``docs/scale.md``); results merged as they arrive, and a deadline that cancels what is still running."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import CostLimitError, RegionCountError
from ..core.limits import Deadline


class DaskUnavailableError(RegionCountError):
    """``workers``/``scheduler`` were asked for but ``dask.distributed`` is not installed."""


def with_time_left(options: dict[str, Any]) -> dict[str, Any]:
    """A task's options with ``deadline_at`` (wall-clock seconds, ``time.time()``) turned into the
    ``max_seconds`` left when the task starts (at least a millisecond), so that it stops by itself."""
    rest = {k: v for k, v in options.items() if k != "deadline_at"}
    if options.get("deadline_at") is None:
        return rest
    return rest | {"max_seconds": max(options["deadline_at"] - time.time(), 1e-3)}


def deadline_at(deadline: Deadline) -> dict[str, Any]:
    """``{"deadline_at": wall-clock end}`` for the tasks of a call with a deadline, else ``{}``."""
    left = deadline.remaining()
    return {} if left is None else {"deadline_at": time.time() + left}


@dataclass
class Engine:
    """Where tasks run: this process (``client`` None) or a Dask cluster (a ``distributed.Client``)."""

    client: Any = None
    workers: int = 1
    scheduler: str | None = None

    def _shared_once(self, args: Sequence[tuple]) -> list[tuple]:
        """``args`` with every object that several tasks share sent to the cluster once (``scatter``) and
        replaced by its future, so the task graph stays small (no large-graph warning, no copy per task)."""
        shared = _shared(args)
        if not shared:
            return list(args)
        futures = {}
        for a in args:
            for x in a:
                if id(x) in shared and id(x) not in futures:
                    futures[id(x)] = self.client.scatter([x], broadcast=False)[0]  # one object, not its items
        return [tuple(futures.get(id(x), x) for x in a) for a in args]

    def tasks(self, requested: int | None = None) -> int:
        """The number of tasks to split one count into: ``requested``, else two per worker (which keeps every
        worker busy when the parts' costs differ by up to a factor of two)."""
        return requested if requested is not None else 2 * max(self.workers, 1)

    def describe(self, tasks: int) -> dict[str, Any]:
        """What the output says about where the count ran."""
        if self.client is None:
            return {"engine": "in-process", "workers": 1, "tasks": tasks}
        return {"engine": "dask", "workers": self.workers, "tasks": tasks, "scheduler": self.scheduler}

    def map(self, fn: Callable[..., Any], args: Sequence[tuple], progress: Callable[[float], None] | None = None,
            deadline: Deadline | None = None) -> list[Any]:
        """``[fn(*a) for a in args]``, on the cluster when there is one (results in the order of ``args``;
        a task's exception is raised here); ``deadline`` as in :meth:`reduce`."""
        out: list[Any] = [None] * len(args)

        def keep(pair: tuple[int, Any]) -> None:
            out[pair[0]] = pair[1]

        self.reduce(_indexed, [(i, fn, a) for i, a in enumerate(args)], keep, progress, deadline)
        return out

    def reduce(self, fn: Callable[..., Any], args: Sequence[tuple], merge: Callable[[Any], None],
               progress: Callable[[float], None] | None = None, deadline: Deadline | None = None) -> None:
        """Call ``merge(fn(*a))`` for every ``a`` in ``args``, each result as soon as it arrives (in any order
        on a cluster), so that only the merged state and the results in flight are held.  With a ``deadline``
        (:mod:`regioncount.core.limits`) the wait stops when it passes: the tasks still running are cancelled
        and a :class:`~regioncount.core.errors.CostLimitError` is raised (tasks should also be given the time
        that is left, so that each stops by itself)."""
        if self.client is None:
            for i, a in enumerate(args):
                if deadline is not None:
                    deadline.check(f"the split count (after {i} of {len(args)} tasks)")
                merge(fn(*a))
                if progress is not None:
                    progress((i + 1) / len(args))
            return
        from distributed import as_completed

        args = self._shared_once(args)
        futures = [self.client.submit(fn, *a, pure=False) for a in args]
        done = 0
        try:
            for future in as_completed(futures, timeout=None if deadline is None else deadline.task_seconds()):
                merge(future.result())
                future.release()
                done += 1
                if progress is not None:
                    progress(done / len(futures))
        except TimeoutError:
            self.client.cancel(futures)
            assert deadline is not None
            raise CostLimitError(deadline.message(f"the split count ({done} of {len(futures)} tasks done)")) from None
        except BaseException:
            self.client.cancel(futures)  # an error or an interrupt: nothing keeps running on the cluster
            raise


def _shared(args: Sequence[tuple]) -> set[int]:
    """The ids of the argument objects that more than one task receives (e.g. the model's payload)."""
    seen: dict[int, int] = {}
    for a in args:
        for x in {id(x): x for x in a}.values():
            if isinstance(x, (dict, np.ndarray)):
                seen[id(x)] = seen.get(id(x), 0) + 1
    return {key for key, count in seen.items() if count > 1}


def _import_counters() -> None:
    """Run on each worker once: import the counting modules (torch with them)."""
    import regioncount.line.exact1d  # noqa: F401


@contextmanager
def open_engine(workers: int | None = None, scheduler: str | None = None) -> Iterator[Engine]:
    """An :class:`Engine`: a ``LocalCluster`` of ``workers`` single-threaded worker processes on this machine,
    the Dask cluster at ``scheduler`` (``tcp://host:port``), or, with neither, this process.  Closed (a
    cluster it started shut down) on exit."""
    if workers is None and scheduler is None:
        yield Engine()
        return
    if workers is not None and scheduler is not None:
        raise RegionCountError("give either `workers` (a local cluster) or `scheduler` (an existing one), not both")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskUnavailableError("running on Dask needs dask.distributed: pip install 'regioncount[dask]'") \
            from None
    if workers is not None:
        if workers < 1:
            raise RegionCountError(f"`workers` must be at least 1, got {workers}")
        import dask

        # Dask's nannies set MALLOC_TRIM_THRESHOLD_ before spawning a worker; any fixed malloc threshold
        # turns off glibc's dynamic mmap threshold and makes torch's batch temporaries ~3x slower (measured)
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            # silence_logs: the cluster's own warnings (a worker restarting, closing comms) stay out of the
            # user's terminal; errors still reach it
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
        client.run(_import_counters)  # the workers' imports belong to the cluster's start, not to the count
        try:
            yield Engine(client, workers, cluster.scheduler_address)
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout=10)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RegionCountError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        count = len(client.scheduler_info().get("workers", {}))
        yield Engine(client, count, scheduler)
    finally:
        client.close()


def _indexed(index: int, fn: Callable[..., Any], args: tuple) -> tuple[int, Any]:
    return index, fn(*args)
