"""Where the scoring loop's work runs: in-process, a local process pool, or a Ray cluster (extra).

Work goes out as chunks of architectures, each chunk one task; results come back to the driver,
which alone writes the store. Every executor yields ``(task index, outcomes)`` as tasks finish.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Sequence

import torch

from trainfree.config import ScoreSettings
from trainfree.errors import MissingExtra, TrainfreeError, UnknownName
from trainfree.outcomes import score_many

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
    from trainfree.spaces import get_space

    return score_many(get_space(space_name), chunk, settings)


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


class WorkerDied(TrainfreeError):
    """A worker process ended while scoring (killed, or out of memory)."""


def die_with_parent(parent_pid: int, use_prctl: bool = True, poll: float = 0.5) -> None:
    """End this worker when its driver ``parent_pid`` is gone, even after a SIGKILL of the driver or
    the OOM killer: an orphaned worker would sit idle holding its memory for ever.

    On Linux the kernel sends SIGKILL when the parent goes (``PR_SET_PDEATHSIG``; it fires when the
    *thread* that started the worker ends, so the driver asks for it only from its main thread); on
    every platform a daemon thread checks every ``poll`` seconds that the parent is still ours.
    """
    if use_prctl and sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the thread below still watches
            pass
    if os.getppid() != parent_pid:  # the driver died before the watch began
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:  # an orphan is re-parented (to init or a subreaper)
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="trainfree-parent-watch", daemon=True).start()


def _init_pool_worker(threads: int, parent_pid: int, use_prctl: bool, plugins: Sequence[str] = ()) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the driver ends workers with SIGTERM
    die_with_parent(parent_pid, use_prctl)
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
            # the workers start from this thread (at submit): PDEATHSIG only where that thread lives as
            # long as the process
            from trainfree.registry import plugin_modules

            main = threading.current_thread() is threading.main_thread()
            self._executor = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_pool_worker,
                                                 initargs=(self.threads, os.getpid(), main, plugin_modules()))
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def terminate(self, grace: float = 2.0) -> None:
        """Stop now (Ctrl-C, SIGTERM, an error): end the workers mid-task instead of waiting for them."""
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        processes = list((getattr(executor, "_processes", None) or {}).values())  # no public way before 3.14
        manager = getattr(executor, "_executor_manager_thread", None)
        executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + grace
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        # Let the pool's manager thread finish closing its pipe: Python 3.11's exit hook writes to that
        # pipe without a lock, and a close racing it prints an OSError traceback at exit.
        if manager is not None and manager is not threading.current_thread():
            manager.join(max(1.0, deadline - time.monotonic()))

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
        with _ray_session(jobs, threads, address):
            yield None
    else:
        yield None


def run_process_pool(space_name, chunks, settings, jobs: int, threads: int | None = None,
                     pool: WorkerPool | None = None) -> Iterator[tuple[int, list]]:
    own = pool is None
    pool = pool or WorkerPool(jobs, threads)
    try:
        yield from _drain(pool, lambda ex: {ex.submit(score_chunk, space_name, c, settings): i
                                            for i, c in enumerate(chunks)},
                          "a worker process died while scoring (killed, or out of memory?)")
    finally:
        if own:
            pool.close()


def _drain(pool: WorkerPool, submit, died: str) -> Iterator[tuple[int, object]]:
    """``(index, result)`` of the futures ``submit(executor)`` maps to indices, as they finish."""
    pending = {}
    try:
        pending = submit(pool.executor())
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise WorkerDied(died) from None
                yield pending.pop(fut), result
    except BaseException:  # Ctrl-C, SIGTERM, an error, or the consumer gone: stop the workers now
        pool.terminate()
        raise


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtra("the ray executor needs Ray: pip install 'trainfree[ray]'") from None
    return ray


def _init_ray(ray, jobs: int, threads: int | None, address: str | None) -> None:
    """Join the cluster at ``address``, or start a local instance that listens on loopback only: no
    dashboard, and every Ray server bound to 127.0.0.1, so nothing on the network can reach it."""
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return
    with _loopback_only():
        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=jobs * (threads or 1),
                 _node_ip_address="127.0.0.1")


@contextmanager
def _loopback_only():
    """Ray (2.x on Linux) turns a node address of 127.0.0.1 into the machine's network address, and its
    servers listen on every interface unless the node address is loopback. Its switch for single-machine
    use (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the Windows/macOS default) keeps 127.0.0.1: set here for
    the processes ``ray.init`` starts, and in the driver's already-imported constants, for the start only."""
    try:
        from ray._private import ray_constants
    except ImportError:  # another Ray layout: the env variable still reaches the processes it starts
        ray_constants = None
    name, before_env = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    before = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[name] = "0"
    if ray_constants is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if ray_constants is not None:
            ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before_env


def run_ray(space_name, chunks, settings, jobs: int, address: str | None,
            threads: int | None = None) -> Iterator[tuple[int, list]]:
    yield from map_tasks("ray", score_chunk, [(space_name, c, settings) for c in chunks], jobs, address, threads)


@contextmanager
def _ray_session(jobs: int, threads: int | None, address: str | None):
    """Ray, started here unless it already runs, and shut down at the end only if started here."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        _init_ray(ray, jobs, threads, address)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _ray_results(ray, refs: dict) -> Iterator[tuple[int, object]]:
    """``(index, result)`` of the Ray tasks ``refs`` maps to indices, as they finish; no task outlives
    the run: running ones are killed (force), queued ones dropped."""
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                yield refs.pop(ref), ray.get(ref)
    finally:
        for ref in list(refs):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass


_watched_drivers: set[int] = set()


def _watch_driver(driver: tuple[str, int], poll: float = 1.0) -> None:
    """In a Ray worker on the driver's host: exit when the driver process is gone. Ray ends the tasks
    of a driver that disconnects; this covers a driver killed before Ray notices."""
    host, pid = driver
    if host != socket.gethostname() or pid in _watched_drivers:
        return
    _watched_drivers.add(pid)

    def watch():
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, another user's
                pass
            time.sleep(poll)

    threading.Thread(target=watch, name="trainfree-driver-watch", daemon=True).start()


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


# -- any task, one call each (training: one architecture per task) -----------------------------------
def _ray_call(fn, args, threads, driver=None, plugins=()):
    if driver is not None:
        _watch_driver(driver)
    limit_threads(threads)
    _load_plugins(plugins)  # a cluster's workers import them too: ship them with Ray's runtime_env
    return fn(*args)


def map_tasks(executor: str, fn, tasks: Sequence[tuple], jobs: int, address: str | None = None,
              threads: int | None = None) -> Iterator[tuple[int, object]]:
    """``fn(*task)`` for every task, yielding ``(task index, result)`` as they finish: in-process, on a
    process pool of ``jobs`` workers, or as Ray tasks. ``fn`` must be a module-level function (it is
    pickled to the workers). Ctrl-C, SIGTERM or an error ends the workers, as for scoring."""
    if executor == "local":
        for i, task in enumerate(tasks):
            with _threads_for_now(threads):
                result = fn(*task)
            yield i, result
        return
    if executor == "process":
        with WorkerPool(jobs, threads) as pool:
            yield from _drain(pool, lambda ex: {ex.submit(fn, *task): i for i, task in enumerate(tasks)},
                              "a worker process died (killed, or out of memory?)")
        return
    if executor == "ray":
        with _ray_session(jobs, threads, address) as ray:
            from trainfree.registry import plugin_modules

            remote = ray.remote(num_cpus=threads or 1)(_ray_call)  # a task holds the cores its threads use
            driver, plugins = (socket.gethostname(), os.getpid()), plugin_modules()
            yield from _ray_results(ray, {remote.remote(fn, task, threads or 1, driver, plugins): i
                                          for i, task in enumerate(tasks)})
        return
    raise UnknownName(f"unknown executor {executor!r}; choose from: {', '.join(EXECUTORS)}")
