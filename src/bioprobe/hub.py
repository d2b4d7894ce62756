"""Hugging Face Hub downloads: the only place bioprobe reaches the network.

The workflow's local ``download_model`` / ``download_dataset`` rules (rules/download.smk) call
these on the login node or workstation, before any compute job, and put what they fetch under
``resources/hub/``; every compute job then runs with ``HF_HUB_OFFLINE=1`` and loads from there.

Files come through ``huggingface_hub.snapshot_download`` (so the user's Hub cache, token and
mirror settings apply, and a cached copy is used when the Hub cannot be reached) and are then
hard-linked (or copied) into the destination, which appears atomically, complete or not at all.
Models: safetensors weights, configs and tokenizer files only; pickled weights (``*.bin``) only
where the config entry sets ``allow_pickle: true``. Datasets: the Hub's parquet conversion
(``refs/convert/parquet``) of the named splits, which the ``hf`` reader reads as a local
directory. Instruction sets (:func:`download_instructions`): a ``json``/``jsonl`` set is the
repository's own file (BioInstruct is one JSON file, ``biomed_instruct_25k.json``; its parquet
conversion would only re-encode it, and the JSON reader names the line of a bad record), an
``hf`` set the parquet conversion of its split.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe.errors import ConfigError, InputError
from bioprobe.io import atomic_path

__all__ = [
    "DATASET_DIR",
    "HUB_ID",
    "MODEL_DIR",
    "allow_network",
    "dataset_patterns",
    "download_dataset",
    "download_instructions",
    "download_model",
    "is_hub_dataset",
    "is_hub_id",
    "is_hub_instructions",
    "is_hub_path",
    "model_patterns",
    "work_offline",
]

#: where the workflow keeps what it downloaded, by config id
MODEL_DIR = "resources/hub/models/{model}"
DATASET_DIR = "resources/hub/datasets/{task}"
INSTRUCTIONS_DIR = "resources/hub/instructions"
PARQUET_REVISION = "refs/convert/parquet"

#: weights (safetensors only), configs, tokenizers (fast and slow: BioGPT's is a BPE with
#: vocab.json + merges.txt, sentencepiece models are *.model)
MODEL_FILES = [
    "*.safetensors",
    "*.safetensors.index.json",
    "*.json",
    "*.txt",
    "*.model",
    "*.tiktoken",
]
PICKLE_FILES = ["*.bin", "*.bin.index.json"]
#: a model or dataset id as the Hub spells it: ``name`` or ``owner/name``, ASCII only
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")

Snapshot = Callable[..., str]


def is_hub_id(text: str) -> bool:
    """Whether `text` is a Hub repository id (the Hub itself refuses ``..``: no path tricks)."""
    return HUB_ID.fullmatch(text) is not None and ".." not in text


def is_hub_path(path: str) -> bool:
    """A config path that names a Hub repository, not a local file or directory."""
    path = str(path)
    return (
        not Path(path).expanduser().exists()
        and not path.startswith((".", "/", "~"))
        and is_hub_id(path)
    )


def is_hub_dataset(task: Mapping[str, Any]) -> bool:
    """A ``format: hf`` task whose ``path`` is a Hub dataset id, not a local directory."""
    return task.get("format") == "hf" and is_hub_path(str(task.get("path", "")))


def is_hub_instructions(instructions: Mapping[str, Any]) -> bool:
    """An instruction set (`instructions:`) whose source is a Hub dataset id."""
    source = instructions["source"]
    return source != "demo" and is_hub_path(source)


def model_patterns(allow_pickle: bool = False) -> list[str]:
    return MODEL_FILES + (PICKLE_FILES if allow_pickle else [])


def dataset_patterns(splits: Mapping[str, str]) -> list[str]:
    """The parquet files of each split: `config/split` as given, `split` in any config."""
    patterns = []
    for spec in splits.values():
        config, _, split = str(spec).rpartition("/")
        patterns.append(f"{config or '*'}/{split}/*.parquet")
    return sorted(set(patterns))


def _default_snapshot() -> Snapshot:
    from huggingface_hub import snapshot_download

    return snapshot_download


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(relative, p) for p in patterns)


def _place(source: Path, patterns: Sequence[str], dest: Path) -> list[str]:
    """Link (or copy) the files of `source` that match `patterns` into `dest`, atomically."""
    files = sorted(
        p.relative_to(source).as_posix()
        for p in source.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(source).parts
    )
    files = [f for f in files if _matches(f, patterns)]
    # filled in a hidden sibling, moved into place whole; removed if a copy fails (full disk)
    with atomic_path(dest, is_dir=True) as partial:
        for name in files:
            target = partial / name
            target.parent.mkdir(parents=True, exist_ok=True)
            real = (source / name).resolve()  # the Hub cache's snapshots are links to blobs
            try:
                os.link(real, target)
            except OSError:
                shutil.copy2(real, target)
    return files


def download_model(
    repo_id: str,
    dest: str | os.PathLike,
    *,
    revision: str | None = None,
    allow_pickle: bool = False,
    key: str | None = None,
    snapshot: Snapshot | None = None,
) -> list[str]:
    """Fetch a Hub model's weights, config and tokenizer into `dest`; the files placed.

    Refuses (and places nothing) when the revision has no safetensors weights and
    `allow_pickle` is false: loading a pickle can run arbitrary code.
    """
    snapshot = snapshot or _default_snapshot()
    patterns = model_patterns(allow_pickle)
    folder = Path(snapshot(repo_id=repo_id, revision=revision, allow_patterns=patterns))
    names = sorted(p.name for p in folder.rglob("*") if p.is_file() and _matches(p.name, patterns))
    has_safetensors = any(n.endswith(".safetensors") for n in names)
    has_pickle = any(n.endswith(".bin") for n in names)
    if not has_safetensors and not has_pickle:
        why = "no safetensors weights" + ("" if allow_pickle else " (pickled *.bin not fetched)")
        raise ConfigError(
            f"Hub model {repo_id!r} (revision {revision or 'main'}) has {why}. Point "
            "'revision' at a commit or branch that has model.safetensors (the Hub's "
            "safetensors conversion bot opens one as a pull request, e.g. refs/pr/1), or "
            "set 'allow_pickle: true' if you trust the repository",
            key,
        )
    if "config.json" not in names:
        raise InputError(f"Hub model {repo_id!r} has no config.json", repo_id)
    return _place(folder, patterns, Path(dest))


def download_dataset(
    repo_id: str,
    dest: str | os.PathLike,
    splits: Mapping[str, str],
    *,
    revision: str | None = None,
    key: str | None = None,
    snapshot: Snapshot | None = None,
) -> list[str]:
    """Fetch the parquet conversion of a Hub dataset's `splits` into `dest`; the files placed.

    A split named without its config (``train``) must exist in exactly one config.
    """
    snapshot = snapshot or _default_snapshot()
    patterns = dataset_patterns(splits)
    folder = Path(
        snapshot(
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision or PARQUET_REVISION,
            allow_patterns=patterns,
        )
    )
    for name, spec in splits.items():
        config, _, split = str(spec).rpartition("/")
        found = sorted(folder.glob(f"{config or '*'}/{split}/*.parquet"))
        if not found:
            raise InputError(
                f"the parquet conversion of Hub dataset {repo_id!r} has no split {spec!r}",
                f"{key}.{name}" if key else repo_id,
            )
        configs = sorted({p.parent.parent.name for p in found})
        if len(configs) > 1:
            raise ConfigError(
                f"Hub dataset {repo_id!r} has split {split!r} in several configs "
                f"({', '.join(configs)}): write it as 'config/{split}'",
                f"{key}.{name}" if key else None,
            )
    return _place(folder, patterns, Path(dest))


def download_instructions(
    repo_id: str,
    dest: str | os.PathLike,
    format: str,
    *,
    split: str = "train",
    revision: str | None = None,
    snapshot: Snapshot | None = None,
) -> list[str]:
    """Fetch a Hub instruction set into `dest`: the repository's ``*.json`` (``*.jsonl``) files
    at `revision` for those formats, the parquet conversion of `split` for ``hf``."""
    if format == "hf":
        return download_dataset(
            repo_id, dest, {"train": split}, revision=revision, key="instructions.split",
            snapshot=snapshot,
        )  # fmt: skip
    snapshot = snapshot or _default_snapshot()
    patterns = [f"*.{format}"]
    folder = Path(
        snapshot(repo_id=repo_id, repo_type="dataset", revision=revision, allow_patterns=patterns)
    )
    if not any(p.is_file() for p in folder.glob(patterns[0])):
        raise ConfigError(
            f"Hub dataset {repo_id!r} (revision {revision or 'main'}) has no {patterns[0]} file "
            "at its top level: is it another format (instructions.format: json, jsonl, hf)?",
            "instructions.format",
        )
    return _place(folder, patterns, Path(dest))


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def work_offline() -> None:
    """Forbid Hub access to this process and its children (the workflow's compute jobs)."""
    for name in OFFLINE_VARIABLES:
        os.environ[name] = "1"


def allow_network() -> None:
    """Undo the workflow's ``HF_HUB_OFFLINE=1`` for this process (the download rules only).

    Must run before ``huggingface_hub`` is imported: it reads the variable at import.
    """
    for name in (*OFFLINE_VARIABLES, "TRANSFORMERS_OFFLINE"):
        with contextlib.suppress(KeyError):
            del os.environ[name]
