"""One exception type for every problem a user can fix, with the place it was found: bad input,
bad configuration, or an environment that will not take the outputs (a full disk, a directory
bioprobe may not write)."""

from __future__ import annotations

import errno
import os
import re
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


#: what the environment, not the data or the config, is at fault for
DISK_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
NOT_WRITABLE = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}
#: how libraries that do not raise OSError word the same errors (Rust's std::io in safetensors
#: and tokenizers: "... (os error 28)"; C and C++ strerror text elsewhere)
_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")
_STRERROR = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
}
#: torch.save's C++ writer does not say why a write failed; a full disk is by far the usual cause
_TORCH_WRITE_FAILED = ("PytorchStreamWriter failed writing", "unexpected pos")


class EnvironmentProblem(BioprobeError):
    """The machine, not the input, is at fault: a full disk or quota, or a place bioprobe may not
    write. The message names the path and what to do."""

    def __init__(self, code: int | None, path: str | Path | None):
        self.errno = code
        self.path = str(path) if path is not None else None
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{_advice(code)}")

    def at(self, path: str | Path | None) -> EnvironmentProblem:
        """The same problem, named at `path`."""
        return EnvironmentProblem(self.errno, path)


def _advice(code: int | None) -> str:
    if code in DISK_FULL:
        return (
            f"{DISK_FULL[code]} ({errno.errorcode[code]}) while writing. Free space (df -h "
            "shows where), or make the workflow need less: see the README's Disk section "
            "(keep_dumps: false deletes each dump once it has been analysed). Then run the "
            "same command again"
        )
    if code in NOT_WRITABLE:
        return (
            f"{NOT_WRITABLE[code]} ({errno.errorcode[code]}). Check the permissions of this "
            "path (ls -ld; chmod or chown) and its mount (read-write?), or run the workflow "
            "from a directory you can write to. Then run the same command again"
        )
    return (
        "a write failed without saying why (torch.save): usually a full disk or quota. Check "
        "free space (df -h) and the README's Disk section (keep_dumps: false), then run the "
        "same command again"
    )


def environment_problem(
    exc: BaseException, path: str | Path | None = None
) -> EnvironmentProblem | None:
    """`exc` as an `EnvironmentProblem` if the environment is at fault (also when a library
    wrapped the OSError or only kept its text), else None. The path is the OSError's file name,
    else `path` (what the caller was writing)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, EnvironmentProblem):
            return exc
        if isinstance(exc, BioprobeError):  # already says what to do
            return None
        found = _errno_of(exc)
        if found is not None:
            code, filename = found
            return EnvironmentProblem(code, filename if filename is not None else path)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def _errno_of(exc: BaseException) -> tuple[int | None, str | None] | None:
    if isinstance(exc, OSError):
        if exc.errno in DISK_FULL or exc.errno in NOT_WRITABLE:
            name = exc.filename
            return exc.errno, os.fsdecode(name) if isinstance(name, str | bytes) else None
        return None
    text = str(exc)
    match = _OS_ERROR_CODE.search(text)
    if match and (int(match.group(1)) in DISK_FULL or int(match.group(1)) in NOT_WRITABLE):
        return int(match.group(1)), None
    lowered = text.lower()
    for words, code in _STRERROR.items():
        if words in lowered:
            return code, None
    if isinstance(exc, RuntimeError) and any(w in text for w in _TORCH_WRITE_FAILED):
        return None, None
    return None
