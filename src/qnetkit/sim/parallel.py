"""Run many independent simulations: in this process, on local worker processes, or on a Dask
cluster, with the results back in the order of the tasks (parameter studies, seed sweeps)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_tasks(fn: Callable[[T], R], tasks: Sequence[T], *, workers: int = 1,
              scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[R]:
    """``[fn(t) for t in tasks]``, spread over ``workers`` processes or the Dask ``scheduler``
    (``tcp://HOST:PORT``; needs ``qnetkit[cluster]``). ``fn`` and the tasks must pickle (a
    module-level function). ``progress(done, total)`` is called as results arrive."""
    results: list[R | None] = [None] * len(tasks)
    done = 0

    def finished(i: int, result: R) -> None:
        nonlocal done
        results[i] = result
        done += 1
        if progress:
            progress(done, len(tasks))

    if scheduler is not None:
        from distributed import Client, as_completed

        with Client(scheduler, timeout=20) as client:  # type: ignore[no-untyped-call]
            futures = client.map(fn, list(tasks), pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            for fut in as_completed(futures):  # type: ignore[no-untyped-call]
                finished(index[fut.key], fut.result())
    elif workers <= 1 or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            finished(i, fn(t))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, result in enumerate(pool.map(fn, tasks)):
                finished(i, result)
    return [r for r in results if r is not None]


__all__ = ["map_tasks"]
