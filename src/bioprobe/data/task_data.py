"""A prepared task directory: its labels, its task type and its splits, loaded on demand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bioprobe import tasks
from bioprobe.data.prepare import load_labels, load_split
from bioprobe.tasks.base import TaskType


@dataclass
class TaskData:
    """A prepared task directory (`prepare_task`'s output)."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.info = load_labels(self.root)
        self.task_type: str = self.info["task_type"]
        self.labels: list[str] = self.info["labels"]

    @property
    def type(self) -> TaskType:
        """The task type's plug-in: how this task's examples are encoded, scored and dumped."""
        return tasks.get(self.task_type)

    def split(self, name: str) -> list[dict]:
        return load_split(self.root, name)
