"""Where the scoring loop's work runs: in-process, a local process pool, or a Ray cluster (extra).

Work goes out as chunks of architectures, each chunk one task; results come back to the driver,
which alone writes the store. Every executor yields ``(task index, outcomes)`` as tasks finish.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Sequence

import torch

from trainfree.config import ScoreSettings
from trainfree.errors import MissingExtra, TrainfreeError, UnknownName

EXECUTORS = ("local", "process", "ray")


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _set_limits(threads: int) -> list:
    """torch and OpenMP get ``threads``, every loaded OpenBLAS one; returns threadpoolctl's limiters,
    which can restore what was there before."""
    from threadpoolctl import threadpool_limits

    importlib.import_module("scipy.linalg")  # scipy's own OpenBLAS: loaded now, so that it is limited too
    torch.set_num_threads(threads)
    return [threadpool_limits(threads, user_api="openmp"), threadpool_limits(1, user_api="blas")]


def limit_threads(threads: int) -> None:
    """Workers must not fight over cores: torch gets ``threads``, numpy's and scipy's OpenBLAS one.

    The OpenBLAS work here is small float64 algebra (600 x 600 correlations and factors) that threads
    barely speed up, while idle OpenBLAS threads spin and take cores from torch's. threadpoolctl only
    reaches libraries already loaded: the variables cover libraries loaded later.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    _set_limits(threads)


def score_chunk(space_name: str, chunk: Sequence[tuple[object, Sequence[str]]], settings: ScoreSettings):
    """Score each (architecture, metric names) of a chunk; runs wherever the executor puts it."""
    from trainfree.runner import score_one
    from trainfree.spaces import get_space

    space = get_space(space_name)
    return [o for arch, metrics in chunk for o in score_one(space, arch, metrics, settings)]


@contextmanager
def _threads_for_now(threads: int | None):
    """In-process scoring with a thread count: set for the run, then restored for the caller."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    limiters = _set_limits(threads)
    try:
        yield
    finally:
        for limiter in reversed(limiters):
            limiter.restore_original_limits()
        torch.set_num_threads(before)


def run_local(space_name, chunks, settings, threads: int | None = None) -> Iterator[tuple[int, list]]:
    for i, chunk in enumerate(chunks):
        with _threads_for_now(threads):
            result = score_chunk(space_name, chunk, settings)
        yield i, result


def _init_pool_worker(threads: int, plugins: Sequence[str] = ()) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    limit_threads(threads)
    _load_plugins(plugins)


def _load_plugins(plugins: Sequence[str]) -> None:
    """The driver's plug-ins, so that the spaces and metrics it names exist here too."""
    from trainfree.registry import load_plugins

    load_plugins(plugins)


class WorkerPool:
    """Worker processes kept for several scoring calls (a search's batches), so they start once:
    a start costs seconds (torch's import, a model's seeded draws), a batch a few more."""

    def __init__(self, jobs: int, threads: int | None = None):
        self.jobs, self.threads = jobs, threads or 1
        self._executor: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")  # fork after torch's threads have started can deadlock
            from trainfree.registry import plugin_modules

            self._executor = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_pool_worker,
                                                 initargs=(self.threads, plugin_modules()))
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def session(executor: str, jobs: int, threads: int | None = None, address: str | None = None):
    """Keep an executor's workers up across several ``run_chunks`` calls; yields the ``pool`` to pass them.

    A process pool starts once; a Ray instance this session starts is shut down at its end. In-process
    scoring needs nothing.
    """
    if executor == "process":
        with WorkerPool(jobs, threads) as pool:
            yield pool
    elif executor == "ray":
        ray = _import_ray()
        started = not ray.is_initialized()
        if started:
            _init_ray(ray, jobs, threads, address)
        try:
            yield None
        finally:
            if started:
                ray.shutdown()
    else:
        yield None


def run_process_pool(space_name, chunks, settings, jobs: int, threads: int | None = None,
                     pool: WorkerPool | None = None) -> Iterator[tuple[int, list]]:
    own = pool is None
    pool = pool or WorkerPool(jobs, threads)
    executor = pool.executor()
    pending = {}
    try:
        pending = {executor.submit(score_chunk, space_name, c, settings): i for i, c in enumerate(chunks)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise TrainfreeError("a worker process died while scoring (killed, or out of memory?); what "
                                         "finished is kept in the store: rerun to resume, with fewer --jobs if memory "
                                         "ran out") from None
                yield pending.pop(fut), result
    finally:  # on Ctrl-C or an error: drop queued chunks, keep what finished
        if own:
            pool.close()
        else:
            for fut in pending:
                fut.cancel()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtra("the ray executor needs Ray: pip install 'trainfree[ray]'") from None
    return ray


def _init_ray(ray, jobs: int, threads: int | None, address: str | None) -> None:
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             **({} if address else {"num_cpus": jobs * (threads or 1)}))


def run_ray(space_name, chunks, settings, jobs: int, address: str | None,
            threads: int | None = None) -> Iterator[tuple[int, list]]:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        _init_ray(ray, jobs, threads, address)
        started = True
    try:
        from trainfree.registry import plugin_modules

        remote = ray.remote(num_cpus=threads or 1)(_ray_chunk)  # a task holds the cores its threads use
        plugins = plugin_modules()
        refs = {remote.remote(space_name, c, settings, threads or 1, plugins): i for i, c in enumerate(chunks)}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                yield refs.pop(ref), ray.get(ref)
    finally:
        for ref in list(locals().get("refs", {})):
            ray.cancel(ref)
        if started:
            ray.shutdown()


def _ray_chunk(space_name, chunk, settings, threads, plugins=()):
    limit_threads(threads)
    _load_plugins(plugins)  # a cluster's workers import them too: ship them with Ray's runtime_env
    return score_chunk(space_name, chunk, settings)


def run_chunks(executor: str, space_name: str, chunks: list, settings: ScoreSettings, jobs: int,
               address: str | None = None, threads: int | None = None,
               pool: WorkerPool | None = None) -> Iterator[tuple[int, list]]:
    """``threads``: torch/BLAS threads per worker. Worker processes (pool, Ray) default to one, so
    ``jobs`` workers use ``jobs`` cores; in-process scoring keeps the caller's setting unless given.
    ``pool``, from :func:`session`, reuses running workers instead of starting a pool for this call."""
    if executor == "local":
        return run_local(space_name, chunks, settings, threads)
    if executor == "process":
        return run_process_pool(space_name, chunks, settings, jobs, threads, pool)
    if executor == "ray":
        return run_ray(space_name, chunks, settings, jobs, address, threads)
    raise UnknownName(f"unknown executor {executor!r}; choose from: {', '.join(EXECUTORS)}")
