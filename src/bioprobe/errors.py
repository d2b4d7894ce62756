"""One exception type for every input problem a user can fix, with the place it was found."""

from __future__ import annotations

from pathlib import Path


class BioprobeError(Exception):
    """Base class: an error the user can act on; the message says what and where."""


class InputError(BioprobeError):
    """Bad input data: names the file and, where known, the line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class ConfigError(BioprobeError):
    """Bad configuration: names the config key (dotted path)."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(f"config key '{key}': {message}" if key else message)
