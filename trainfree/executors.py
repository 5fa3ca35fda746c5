"""Where work runs: in-process, a local process pool, or a Ray cluster (extra), behind one interface.

An :class:`Executor` is a context manager with one method, ``map(fn, tasks)``: ``fn(*task)`` for every
task, yielding ``(task index, result)`` as tasks finish. It knows nothing of what it runs (scoring,
training); results come back to the driver, which alone writes the store. Inside one ``with`` block the
workers stay up across ``map`` calls (a search's batches). Ctrl-C, SIGTERM, an error, or a consumer
that stops reading ends the workers at once. Worker processes load the driver's plug-ins before their
first task, and a plug-in that fails to load there is reported as such.
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
from typing import Callable, Iterable, Iterator, Sequence

import torch

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


class WorkerDied(TrainfreeError):
    """A worker process ended in the middle of a task (killed, or out of memory)."""


DIED = "a worker process died (killed, or out of memory?)"


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


def _init_pool_worker(threads: int, parent_pid: int, use_prctl: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the driver ends workers with SIGTERM
    die_with_parent(parent_pid, use_prctl)
    limit_threads(threads)


_worker_plugins: list = []  # the plug-in lists this worker process has loaded


def _load_plugins(plugins: Sequence) -> None:
    """The driver's plug-ins, so that the spaces and metrics it names exist here too; any failure is
    one TrainfreeError naming the plug-in (it travels back to the driver as the task's error)."""
    if list(plugins) in _worker_plugins:
        return
    from trainfree.registry import load_plugins

    try:
        load_plugins(plugins)
    except TrainfreeError as err:
        raise TrainfreeError(f"a worker process could not load the plug-ins: {err}") from None
    _worker_plugins.append(list(plugins))


def _call(fn, task: tuple, plugins: Sequence):
    """A task in a worker process: the plug-ins first (once), then ``fn(*task)``."""
    _load_plugins(plugins)
    return fn(*task)


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
            main = threading.current_thread() is threading.main_thread()
            self._executor = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_pool_worker,
                                                 initargs=(self.threads, os.getpid(), main))
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


#: tasks in flight per worker: enough to keep every worker busy, few enough that the caller's task iterator is
#: read as work frees up (the scoring loop drops keys another run finished meanwhile)
AHEAD = 2


def _drain(pool: "WorkerPool", fn, tasks, plugins, died: str, limit: int) -> Iterator[tuple[int, object]]:
    """``(index, result)`` of ``fn(*task)`` for the tasks of an iterable, as they finish, with at most ``limit``
    submitted and unfinished at a time."""
    pending = {}
    feed = enumerate(tasks)
    try:
        ex = pool.executor()

        def fill() -> None:
            while len(pending) < limit:
                item = next(feed, None)
                if item is None:
                    return
                pending[ex.submit(_call, fn, item[1], plugins)] = item[0]

        fill()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise WorkerDied(died) from None
                yield pending.pop(fut), result
            fill()
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


def _ray_results(ray, submit, tasks, limit: int) -> Iterator[tuple[int, object]]:
    """``(index, result)`` of ``submit(task)`` (a Ray task) for the tasks of an iterable, as they finish, at
    most ``limit`` unfinished at a time; no task outlives the run: running ones are killed (force), queued
    ones dropped. A task's own error is raised as it is (not wrapped in Ray's), a dead worker as
    :class:`WorkerDied`."""
    from ray.exceptions import RayTaskError, WorkerCrashedError

    refs: dict = {}
    feed = enumerate(tasks)

    def fill() -> None:
        while len(refs) < limit:
            item = next(feed, None)
            if item is None:
                return
            refs[submit(item[1])] = item[0]

    try:
        fill()
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                index = refs.pop(ref)  # finished, failed or not: never cancelled below
                try:
                    result = ray.get(ref)
                except RayTaskError as err:
                    cause = getattr(err, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
                except WorkerCrashedError:
                    raise WorkerDied(DIED) from None
                yield index, result
            fill()
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




def _ray_call(fn, task, threads, driver=None, plugins=()):
    """A task on a Ray worker: watch the driver, limit threads, load the plug-ins, run ``fn(*task)``."""
    if driver is not None:
        _watch_driver(driver)
    limit_threads(threads)
    return _call(fn, task, plugins)  # a cluster's workers import them too: ship them with Ray's runtime_env


# -- the executors -----------------------------------------------------------------------------------
class Executor:
    """Runs ``fn(*task)`` for each task of a ``map`` call; a context manager that holds its workers.

    ``fn`` must be a module-level function (it is pickled to worker processes); its exceptions end the
    ``map`` call (and the workers) and are raised in the driver as they are; a worker that dies raises
    :class:`WorkerDied`. Ctrl-C or a consumer that stops iterating ends the workers at once.
    """

    kind = ""

    def __init__(self, jobs: int = 1, threads: int | None = None, address: str | None = None):
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise TrainfreeError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs, self.threads, self.address = jobs, threads, address

    def map(self, fn: Callable, tasks: Iterable[tuple]) -> Iterator[tuple[int, object]]:
        """``(index, result)`` of ``fn(*task)`` per task, as they finish; ``tasks`` is read as workers free up."""
        raise NotImplementedError

    def close(self) -> None:
        """End the workers (their start is lazy; a closed executor starts them again on the next map)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """In this process, one task after another; ``threads`` torch/BLAS threads during each (the caller's
    own setting when None, restored afterwards)."""

    kind = "local"

    def map(self, fn, tasks):
        for i, task in enumerate(tasks):
            with _threads_for_now(self.threads):
                result = fn(*task)
            yield i, result


class ProcessExecutor(Executor):
    """A pool of ``jobs`` spawned worker processes of ``threads`` threads each (one by default), kept up
    until the executor closes; they end with their driver, even after a ``kill -9`` of it."""

    kind = "process"

    def __init__(self, jobs: int = 1, threads: int | None = None, address: str | None = None):
        super().__init__(jobs, threads, address)
        self.pool = WorkerPool(jobs, threads)

    def map(self, fn, tasks):
        from trainfree.registry import plugin_modules

        plugins = plugin_modules()  # at each call: a space file registered since the pool started counts
        return _drain(self.pool, fn, tasks, plugins, DIED, AHEAD * self.jobs)

    def close(self) -> None:
        self.pool.close()


class RayExecutor(Executor):
    """Ray tasks of ``threads`` cores each: on the cluster at ``address``, or on a local instance (bound
    to loopback, ``jobs`` x ``threads`` cores) that starts on the first map and stops at close."""

    kind = "ray"

    def __init__(self, jobs: int = 1, threads: int | None = None, address: str | None = None):
        super().__init__(jobs, threads, address)
        self._session = None
        self._ray = _import_ray()  # a missing extra is named before any work

    def map(self, fn, tasks):
        if self._session is None:
            self._session = _ray_session(self.jobs, self.threads, self.address)
            self._session.__enter__()
        from trainfree.registry import plugin_modules

        ray = self._ray
        remote = ray.remote(num_cpus=self.threads or 1)(_ray_call)  # a task holds the cores its threads use
        driver, plugins = (socket.gethostname(), os.getpid()), plugin_modules()
        return _ray_results(ray, lambda task: remote.remote(fn, task, self.threads or 1, driver, plugins), tasks,
                            AHEAD * self.jobs)

    def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.__exit__(None, None, None)


KINDS = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def make_executor(kind: str | None = None, jobs: int = 1, threads: int | None = None,
                  address: str | None = None) -> Executor:
    """An executor of ``kind`` (``local``, ``process``, ``ray``; default: ``process`` when ``jobs`` > 1,
    else ``local``)."""
    kind = kind or ("process" if jobs > 1 else "local")
    if kind not in KINDS:
        raise UnknownName(f"unknown executor {kind!r}; choose from: {', '.join(EXECUTORS)}")
    return KINDS[kind](jobs, threads, address)


@contextmanager
def executing(executor: "str | Executor | None", jobs: int = 1, threads: int | None = None,
              address: str | None = None):
    """The executor to use inside the block: ``executor`` itself when it is one (left open: its owner
    closes it), else a new one of that kind, closed at the end."""
    if isinstance(executor, Executor):
        yield executor
        return
    with make_executor(executor, jobs, threads, address) as made:
        yield made
