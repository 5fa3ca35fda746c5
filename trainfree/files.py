"""Writing files so that readers never see half of one: a temporary file beside the target, named by the
writing process, renamed over it. A full disk is named as such, and the temporary files a killed run
left behind are removed by the next run that writes there."""
from __future__ import annotations

import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from trainfree.errors import DiskFull, TrainfreeError

#: below this much free space a failed write is taken for a full disk (torch reports a short write as
#: an opaque RuntimeError, not as ENOSPC)
NEARLY_FULL = 64 << 20
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def _free(path: Path) -> int | None:
    for folder in (Path(path), *Path(path).parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def write_error(path: Path, err: BaseException, what: str = "file") -> TrainfreeError:
    """The one-line error for a failed write of ``path``: :class:`DiskFull` when the disk is full (the
    errno says so, or the folder has less than NEARLY_FULL left), else the system's reason."""
    free = _free(Path(path).parent)
    full = getattr(err, "errno", None) in _FULL_ERRNOS or "disk is full" in str(err) or (
        free is not None and free < NEARLY_FULL)
    if full:
        left = f" ({_size(free)} free there)" if free is not None else ""
        return DiskFull(f"{path}: cannot write the {what}: the disk is full{left}; free some space and rerun "
                        f"(finished work is kept)")
    reason = getattr(err, "strerror", None) or (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return TrainfreeError(f"{path}: cannot write the {what} ({reason})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(folder: Path, pattern: str) -> list[Path]:
    """Remove the files of ``folder`` matching ``pattern`` (a regular expression with a ``pid`` group)
    whose writing process is gone (a run killed mid-write); returns them."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    regex = re.compile(pattern)
    for name in names:
        m = regex.fullmatch(name)
        if m and not _alive(int(m.group("pid"))):
            try:
                (Path(folder) / name).unlink()
                removed.append(Path(folder) / name)
            except OSError:
                pass
    return removed


def atomic_write(path: Path, write, binary: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path`` and rename it over ``path``:
    readers never see a half-written file."""
    with atomic_file(path, binary) as fh:
        try:
            write(fh)
        except OSError as err:  # a full disk
            raise write_error(path, err) from None


@contextmanager
def atomic_file(path: Path, binary: bool = False):
    """A temporary file next to ``path`` to write while work goes on, renamed over ``path`` when the
    block ends without an error (removed otherwise): readers never see a half-written file."""
    path = Path(path)
    check_writable(path)
    folder = path.parent or Path(".")
    remove_stale_temporaries(folder, re.escape(f".{path.name}.") + r"(?P<pid>\d+)\.tmp")
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as err:
        raise write_error(path, err) from None
    fh = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
    try:
        yield fh
    except BaseException:  # the block's own error goes on as it is
        try:
            fh.close()
        except OSError:
            pass
        tmp.unlink(missing_ok=True)
        raise
    try:
        fh.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # made 0600 above; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a directory put there meanwhile
        tmp.unlink(missing_ok=True)
        raise write_error(path, err) from None


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output path that :func:`atomic_write` could not replace: a directory,
    a missing or non-directory parent, a parent this user cannot write to."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise TrainfreeError(f"{path}: is a directory; give a file name")
    if not parent.exists():
        raise TrainfreeError(f"{path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise TrainfreeError(f"{path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TrainfreeError(f"{path}: directory {parent} is not writable")


def atomic_write_binary(path: Path, write) -> None:
    atomic_write(path, write, binary=True)
