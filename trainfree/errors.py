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


def json_object(source, where: str = ""):
    """``source`` (JSON text or an already-decoded value) as a mapping, or InvalidArchitecture saying why not."""
    import json
    from collections.abc import Mapping

    prefix = f"{where}: " if where else ""
    if isinstance(source, (str, bytes)):
        try:
            source = json.loads(source)
        except ValueError as err:
            raise InvalidArchitecture(f"{prefix}not valid JSON ({err})") from None
    if not isinstance(source, Mapping):
        raise InvalidArchitecture(f"{prefix}expected a JSON object, got {type(source).__name__}")
    return source
