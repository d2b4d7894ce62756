"""Deterministic, atomic file writing: a killed job never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bioprobe.errors import environment_problem


def _remove_stale_temporaries(path: Path) -> None:
    """Temporaries of `path` that a killed job left behind (a dump's can take gigabytes).

    Only exact `.{name}.<8 random chars>.tmp` siblings match, never another output's. Safe as
    long as one writer at a time owns `path`, which Snakemake guarantees for job outputs.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if pattern.fullmatch(stale.name):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it into place only if the block succeeds.

    A killed job leaves only a hidden `.{name}.*.tmp` sibling, which nothing reads as the
    output and which the next write of `path` removes. On an error the temporary is removed;
    a full disk or a place that may not be written to (also inside the block: a dump's pwrite,
    safetensors' save) becomes one `EnvironmentProblem` naming `path` (or the file in it).
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = Path(name)
        yield tmp
        # mkstemp/mkdtemp create owner-only entries; give the result the usual umask mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, (0o777 if is_dir else 0o666) & ~umask)
        if is_dir and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            _remove_quietly(tmp)
        problem = environment_problem(exc)
        if problem is None:
            raise
        raise problem.at(_named(problem.path, path, tmp)) from exc


def _remove_quietly(tmp: Path) -> None:
    """Remove a temporary; never let a failed removal hide the error that caused it."""
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _named(where: str | None, path: Path, tmp: Path | None) -> Path:
    """What to call the place an error happened: the file inside the output where it was inside
    the temporary, the output where it was the temporary (or its sibling), else where it was."""
    if where is None:
        return path
    at = Path(where)
    if tmp is not None and at.is_relative_to(tmp):
        return path / at.relative_to(tmp) if at != tmp else path
    if at.parent == path.parent and at.name.startswith(f".{path.name}."):
        return path
    return at


def dumps_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, fixed indentation, trailing newline (byte-deterministic)."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(obj), encoding="utf-8")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
