"""A prepared task directory and the batch collator for its task type (no Trainer import: the
evaluation and dump jobs use these too and should start fast)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

from bioprobe.data import load_labels, load_split


@dataclass
class TaskData:
    """A prepared task directory: labels and the splits, loaded on demand."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.info = load_labels(self.root)
        self.task_type: str = self.info["task_type"]
        self.labels: list[str] = self.info["labels"]

    def split(self, name: str) -> list[dict]:
        return load_split(self.root, name)


def make_collator(task_type: str, tokenizer):
    multiple = 8 if torch.cuda.is_available() else None  # tensor cores like multiples of 8
    if task_type == "ner":
        return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=multiple)
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)
