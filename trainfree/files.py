"""Writing files so that readers never see half of one: a temporary file beside the target, renamed over it."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from trainfree.errors import TrainfreeError


def atomic_write(path: Path, write, binary: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path`` and rename it over ``path``:
    readers never see a half-written file."""
    with atomic_file(path, binary) as fh:
        try:
            write(fh)
        except OSError as err:  # a full disk
            raise TrainfreeError(f"{path}: cannot write ({err.strerror or err})") from None


@contextmanager
def atomic_file(path: Path, binary: bool = False):
    """A temporary file next to ``path`` to write while work goes on, renamed over ``path`` when the
    block ends without an error (removed otherwise): readers never see a half-written file."""
    path = Path(path)
    check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    except OSError as err:
        raise TrainfreeError(f"{path}: cannot write ({err.strerror})") from None
    fh = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
    try:
        yield fh
    except BaseException:  # the block's own error goes on as it is
        try:
            fh.close()
        except OSError:
            pass
        os.unlink(tmp)
        raise
    try:
        fh.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a directory put there meanwhile
        os.unlink(tmp)
        raise TrainfreeError(f"{path}: cannot write ({err.strerror or err})") from None


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
