"""Exceptions raised by trainfree. The CLI turns any TrainfreeError into a one-line message."""


class TrainfreeError(Exception):
    """Base class of every error trainfree raises on purpose."""


class InvalidArchitecture(TrainfreeError, ValueError):
    """An architecture (recipe, genotype) is malformed; the message names the node or field."""


class InvalidBenchmark(TrainfreeError, ValueError):
    """A benchmark or scores file is malformed; the message names the file and line."""


class InvalidSetting(TrainfreeError, ValueError):
    """A setting (seed, device, dtype) is outside what it can take; the message names the setting."""


class UnknownName(TrainfreeError, KeyError):
    """A name (metric, space, preset, corpus) is not registered; the message lists the choices."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class MissingExtra(TrainfreeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class DuplicateName(TrainfreeError, ValueError):
    """A name (metric, space, strategy, format) is registered twice."""


class DiskFull(TrainfreeError, OSError):
    """A write failed because the disk (or the user's quota) is full; nothing half-written is kept."""


class Refused(TrainfreeError):
    """A file refused as unsafe to read (it could run code or exhaust the machine); the run stops."""
