"""Canonical records -> model inputs, shared by fine-tuning, evaluation and dumps.

Truncation is counted, never silent: every builder returns how many examples (and, for NER,
words) did not fit in `max_length`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bioprobe.tokenization import align_labels, encode_pair, encode_words

log = logging.getLogger("bioprobe.features")


@dataclass
class FeatureSet:
    features: list[dict]
    truncated_examples: int = 0
    truncated_words: int = 0
    word_index: list[list[int]] = field(default_factory=list)  # NER: per example, per sub-token

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


def ner_features(
    records: Sequence[dict], tokenizer, label2id: dict[str, int], max_length: int
) -> FeatureSet:
    """Word-split encoding; the first sub-token of each word carries its tag, -100 elsewhere."""
    out = FeatureSet(features=[])
    for rec in records:
        enc = encode_words(tokenizer, rec["tokens"], max_length)
        tags = [label2id[t] for t in rec["tags"][: enc.n_words]]
        out.features.append(
            {
                "input_ids": enc.input_ids,
                "attention_mask": [1] * len(enc.input_ids),
                "labels": align_labels(enc.word_index, tags),
                "length": len(enc.input_ids),
            }
        )
        out.word_index.append(enc.word_index)
        if enc.truncated_words:
            out.truncated_examples += 1
            out.truncated_words += enc.truncated_words
    return out


def pair_features(
    records: Sequence[dict],
    tokenizer,
    label2id: dict[str, int],
    max_length: int,
    truncation: str = "longest_first",
) -> FeatureSet:
    """Both segments encoded together, as the sequence-classification head expects."""
    out = FeatureSet(features=[])
    for rec in records:
        enc = encode_pair(tokenizer, rec["text_a"], rec["text_b"], max_length, truncation)
        out.features.append(
            {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "labels": label2id[rec["label"]],
                "length": len(enc["input_ids"]),
            }
        )
        out.truncated_examples += int(enc["truncated_tokens"] > 0)
    return out


def build_features(
    task_type: str, records: Sequence[dict], tokenizer, labels: Sequence[str], training: dict
) -> FeatureSet:
    label2id = {label: i for i, label in enumerate(labels)}
    if task_type == "ner":
        return ner_features(records, tokenizer, label2id, training["max_length"])
    return pair_features(
        records, tokenizer, label2id, training["max_length"], training["pair_truncation"]
    )
