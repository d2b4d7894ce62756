"""Checks on the world outside the config (files, hardware) that must pass before any job runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bioprobe.hub import is_hub_path

# The demo corpus is written by the workflow itself (rules/data.smk), so it may not exist yet.
DEMO_DATA_ROOT = Path("resources/demo")


def _is_produced(path: Path) -> bool:
    return DEMO_DATA_ROOT in path.parents or path == DEMO_DATA_ROOT


def missing_task_data(config: Mapping[str, Any], root: Path = Path()) -> list[str]:
    """One message per task whose local data directory or split file does not exist."""
    problems = []
    for task_id, task in config["tasks"].items():
        path = Path(task["path"])
        if _is_produced(path):
            continue
        full = root / path
        if task["format"] == "hf" and not full.exists() and is_hub_path(task["path"]):
            continue  # a Hub dataset id, fetched by the download rule
        if not full.is_dir():
            problems.append(
                f"config key 'tasks.{task_id}.path': data directory '{path}' does not exist"
                + (
                    " (MedNLI is credentialed data: download it from PhysioNet and put"
                    f" {', '.join(task['splits'].values())} there)"
                    if "mednli" in task_id or "mli_" in "".join(task["splits"].values())
                    else ""
                )
            )
            continue
        if task["format"] == "hf":
            continue
        for split, name in task["splits"].items():
            if not (full / name).is_file():
                problems.append(
                    f"config key 'tasks.{task_id}.splits.{split}': file '{path / name}' not found"
                )
    return problems
