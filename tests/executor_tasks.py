"""Module-level tasks for the executor conformance suite (worker processes import them by name)."""
import os
import time


def square(x):
    return x * x


def fail_on_two(x):
    if x == 2:
        raise ValueError(f"task {x} failed")
    return x


def die_on_one(x):
    if x == 1:
        time.sleep(0.5)  # let the other tasks start first
        os._exit(1)  # the worker process ends mid-task, as the OOM killer would end it
    return x


def slow(x, folder):
    """Write this process's pid to ``folder``, then take a minute (quick for task 0)."""
    with open(os.path.join(folder, f"started-{x}"), "w") as fh:
        fh.write(str(os.getpid()))
    if x:
        time.sleep(60)
    return x


def metric_name(name):
    """The name of a registered metric, looked up in the worker (a plug-in must be loaded there)."""
    from trainfree.metrics import get_metric

    return get_metric(name).name
