"""Scores shared by downstream evaluation and probes.

NER: entity-level precision/recall/F1 with seqeval in strict IOB2 mode (overall and per type), plus
the paper's token-level macro/micro F1 over entity types (B-/I- collapsed, `O` excluded).
Classification: accuracy, macro-F1 and micro-F1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score, f1_score


def entity_type(tag: str) -> str:
    """`B-Disease` -> `Disease`; `O` -> `O`; a bare type (label_scheme 'type') stays as it is."""
    return tag[2:] if tag[:2] in ("B-", "I-") else tag


def io_to_iob2(tags: Sequence[str]) -> list[str]:
    """Collapsed type tags (`Disease Disease O`) -> IOB2 (`B-Disease I-Disease O`).

    A run of the same type is read as one entity: the best that can be done once B-/I- are gone.
    """
    out, prev = [], "O"
    for tag in tags:
        if tag == "O":
            out.append("O")
        else:
            out.append(("I-" if tag == prev else "B-") + tag)
        prev = tag
    return out


def _is_bio(seqs: Sequence[Sequence[str]]) -> bool:
    return all(t == "O" or t[:2] in ("B-", "I-") for s in seqs for t in s)


def ner_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level (seqeval strict IOB2) and token-level type scores for sentences of tags.

    Keys: `entity_precision`, `entity_recall`, `entity_f1`, `entity_f1/<Type>`,
    `token_macro_f1`, `token_micro_f1`. Tags may be IOB2 or collapsed types.
    """
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred, strict=True)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    if not (_is_bio(gold) and _is_bio(pred)):
        gold = [io_to_iob2(s) for s in gold]
        pred = [io_to_iob2(s) for s in pred]
    gold, pred = [list(s) for s in gold], [list(s) for s in pred]
    report = classification_report(
        gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    micro = report["micro avg"]
    scores = {
        "entity_precision": float(micro["precision"]),
        "entity_recall": float(micro["recall"]),
        "entity_f1": float(micro["f1-score"]),
    }
    for name, row in report.items():
        if name not in ("micro avg", "macro avg", "weighted avg"):
            scores[f"entity_f1/{name}"] = float(row["f1-score"])
    g_types = [entity_type(t) for s in gold for t in s]
    p_types = [entity_type(t) for s in pred for t in s]
    types = sorted({t for t in g_types if t != "O"})
    if types:
        for avg in ("macro", "micro"):
            scores[f"token_{avg}_f1"] = float(
                f1_score(g_types, p_types, labels=types, average=avg, zero_division=0)
            )
    else:
        scores["token_macro_f1"] = scores["token_micro_f1"] = 0.0
    return scores


def classification_scores(gold: Sequence, pred: Sequence) -> dict[str, float]:
    """Accuracy, macro-F1 (over the gold labels' classes and predicted ones) and micro-F1."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    if gold.shape != pred.shape:
        raise ValueError("gold and predicted labels differ in length")
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
    }
