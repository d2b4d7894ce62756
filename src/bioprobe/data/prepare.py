"""The `prepare_task` stage: raw splits in, canonical JSONL splits and `labels.json` out.

Output directory layout (what every later stage reads):
  train.jsonl, validation.jsonl, test.jsonl   one canonical record per line, keys sorted
  labels.json   {"task_type", "labels" (index = class id), "label_scheme", "entity_types", "counts"}

All three splits are read and validated before anything is written, and the four files are
moved into place together, so a failed run leaves the previous outputs (or nothing) behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bioprobe import tasks
from bioprobe.data.readers import (
    DEFAULT_FIELDS,
    read_bio_tsv,
    read_hf,
    read_pairs_jsonl,
    read_tsv,
)
from bioprobe.errors import ConfigError, InputError
from bioprobe.io import atomic_path, read_json, read_jsonl, write_json, write_jsonl

SPLITS = ("train", "validation", "test")


def prepare_task(task_cfg: Mapping[str, Any], out_dir: str | Path, task_id: str) -> dict:
    """Read, validate and write one task; return the `labels.json` content.

    Validation and test labels must lie inside the label set: the config's `labels` if given,
    else the labels of the training split (an unseen label there is an error naming its line).
    """
    cfg = _with_defaults(task_cfg, task_id)
    task_type = tasks.get(cfg["type"])
    explicit = explicit_labels(cfg, task_id)
    sources = {split: _split_source(cfg, split, task_id) for split in SPLITS}
    data = {"train": _read_split(cfg, sources["train"], "train", explicit, None)}
    labels = explicit or task_type.labels_from_train(data["train"], cfg)
    origin = None if explicit else f"the labels of the training split ({sources['train']})"
    for split in ("validation", "test"):
        data[split] = _read_split(cfg, sources[split], split, labels, origin)
    meta = {
        "task_type": cfg["type"],
        "labels": labels,
        **task_type.label_info(cfg, labels),
        "counts": {split: len(records) for split, records in data.items()},
    }
    _write_outputs(Path(out_dir), data, meta)
    return meta


def _with_defaults(task_cfg: Mapping[str, Any], task_id: str) -> dict:
    """The schema fills these already; repeated here so a notebook can pass a short dict."""
    cfg = {
        "label_scheme": "bio",
        "labels": None,
        "tag_names": None,
        "hub_revision": None,
        "columns": None,
    }
    cfg.update(task_cfg)
    cfg["fields"] = {**DEFAULT_FIELDS, **(task_cfg.get("fields") or {})}
    for key in ("type", "format", "path", "splits"):
        if key not in cfg:
            raise ConfigError("missing", key=f"tasks.{task_id}.{key}")
    if cfg["type"] not in tasks.REGISTRY:
        raise ConfigError(
            f"unknown task type {cfg['type']!r} (expected one of {', '.join(tasks.REGISTRY)})",
            key=f"tasks.{task_id}.type",
        )
    if cfg["type"] not in tasks.formats().get(cfg["format"], ()):
        raise ConfigError(
            f"format {cfg['format']!r} cannot hold a {cfg['type']!r} task",
            key=f"tasks.{task_id}.format",
        )
    tasks.get(cfg["type"]).check_config(cfg, task_id)
    return cfg


def explicit_labels(cfg: Mapping[str, Any], task_id: str) -> list[str] | None:
    """The config's label list in the output scheme (order kept: it fixes the class ids)."""
    if not cfg.get("labels"):
        return None
    return tasks.get(cfg["type"]).config_labels(cfg, f"tasks.{task_id}.labels")


def _split_source(cfg: Mapping[str, Any], split: str, task_id: str) -> str:
    """The file (or hf split spec) of a split; a missing directory or file is an InputError."""
    name = cfg["splits"][split]
    if cfg["format"] == "hf":
        return name
    root = Path(cfg["path"])
    if not root.is_dir():
        files = ", ".join(cfg["splits"][s] for s in SPLITS)
        raise InputError(
            f"data directory of task '{task_id}' is missing: put its split files ({files}) "
            "there. Credentialed corpora such as MedNLI are not distributed with bioprobe; "
            "obtain them yourself and copy the files into this directory.",
            root,
        )
    path = root / name
    if not path.is_file():
        raise InputError(
            f"{split} split file of task '{task_id}' is missing (config tasks.{task_id}.splits."
            f"{split}); put the file there",
            path,
        )
    return str(path)


def _read_split(
    cfg: Mapping[str, Any],
    source: str,
    split: str,
    labels: list[str] | None,
    labels_origin: str | None,
) -> list[dict]:
    common = {"split": split, "labels": labels, "labels_origin": labels_origin}
    if cfg["format"] == "bio-tsv":
        # only tag-sequence types hold bio-tsv; each says how its tags are read (pico: IO)
        return read_bio_tsv(source, tasks.get(cfg["type"]).tag_scheme(cfg), **common)
    if cfg["format"] == "pairs-jsonl":
        return read_pairs_jsonl(
            source, cfg["fields"], task_type=cfg["type"], task_cfg=cfg, **common
        )
    if cfg["format"] == "tsv":
        return read_tsv(source, cfg["type"], cfg["fields"], cfg["columns"], task_cfg=cfg, **common)
    return read_hf(
        cfg["path"],
        source,
        cfg["type"],
        cfg["fields"],
        tag_names=cfg["tag_names"],
        revision=cfg["hub_revision"],
        label_scheme=cfg["label_scheme"],
        task_cfg=cfg,
        **common,
    )


def _write_outputs(out_dir: Path, data: Mapping[str, list[dict]], meta: dict) -> None:
    """Write every file to a temporary sibling; rename them only once all are complete."""
    with contextlib.ExitStack() as stack:
        # entered first, so renamed last: labels.json appears only after the splits
        write_json(stack.enter_context(atomic_path(out_dir / "labels.json")), meta)
        for split in SPLITS:
            write_jsonl(stack.enter_context(atomic_path(out_dir / f"{split}.jsonl")), data[split])


def load_split(out_dir: str | Path, split: str) -> list[dict]:
    """The canonical records of one prepared split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    path = Path(out_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise InputError("prepared split is missing (run prepare_task first)", path)
    return read_jsonl(path)


def load_labels(out_dir: str | Path) -> dict:
    """The `labels.json` of a prepared task."""
    path = Path(out_dir) / "labels.json"
    if not path.is_file():
        raise InputError("labels.json is missing (run prepare_task first)", path)
    return read_json(path)


def corpus_text(split_file: str | Path) -> list[str]:
    """The text of a prepared split, one string per text segment (for training tokenizers)."""
    split_file = Path(split_file)
    task_type = tasks.get(load_labels(split_file.parent)["task_type"])
    return [text for record in read_jsonl(split_file) for text in task_type.texts(record)]
