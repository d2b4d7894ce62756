"""Canonical records -> model inputs, shared by fine-tuning and evaluation.

Each feature is the task type's encoding of a record (``tasks.pair.encode``,
``tasks.ner.encode``) as ``tokenization.model_inputs`` (input ids, attention mask and, where the
model has them, token types), plus its labels and length. The dumps feed the model the same
encoding through the same function (``analysis.extract.pad``), so the internals analysed are
computed on the inputs that were trained and scored.

Truncation is counted, never silent: every builder returns how many examples (and, for NER,
words) did not fit in `max_length`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("bioprobe.features")


@dataclass
class FeatureSet:
    features: list[dict]
    truncated_examples: int = 0
    truncated_words: int = 0

    def stats(self) -> dict[str, int]:
        return {
            "examples": len(self.features),
            "truncated_examples": self.truncated_examples,
            "truncated_words": self.truncated_words,
        }


def log_truncation(split: str, fs: FeatureSet, max_length: int) -> None:
    """A warning in the job's log whenever examples did not fit (also counted in the metrics)."""
    if fs.truncated_examples:
        log.warning(
            "%s: %d of %d examples longer than max_length=%d were truncated (%d words cut); "
            "raise training.max_length to keep them whole",
            split,
            fs.truncated_examples,
            len(fs.features),
            max_length,
            fs.truncated_words,
        )


def make_collator(task_type: str, tokenizer):
    """The task type's batch collator (dynamic padding; token types padded where present)."""
    import torch

    from bioprobe import tasks

    multiple = 8 if torch.cuda.is_available() else None  # tensor cores like multiples of 8
    return tasks.get(task_type).collator(tokenizer, multiple)


def build_features(
    task_type: str, records: Sequence[dict], tokenizer, labels: Sequence[str], training
) -> FeatureSet:
    """The model inputs of `records` as the task type encodes them."""
    from bioprobe import tasks

    return tasks.get(task_type).build_features(records, tokenizer, labels, training)
