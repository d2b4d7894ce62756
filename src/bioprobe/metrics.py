"""Scores shared by downstream evaluation and probes.

NER: entity-level precision/recall/F1 with seqeval in strict IOB2 mode (overall and per type), plus
the paper's token-level macro/micro F1 over entity types (B-/I- collapsed, `O` excluded).
Classification: accuracy, macro-F1 and micro-F1.

The F1 scores follow scikit-learn's definitions (`f1_score` with `zero_division=0`) but come from
one count per class: a probe table scores every layer × target, and scikit-learn's input
validation cost more than the arithmetic (tests check both agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2


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


def ner_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], entities: bool = True
) -> dict[str, float]:
    """Entity-level (seqeval strict IOB2) and token-level type scores for sentences of tags.

    Keys: `entity_precision`, `entity_recall`, `entity_f1`, `entity_f1/<Type>` (unless
    `entities` is False: seqeval's entity extraction is the slow part), `token_macro_f1`,
    `token_micro_f1`. Tags may be IOB2 or collapsed types.
    """
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred, strict=True)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    scores = _entity_scores(gold, pred) if entities else {}
    g_types = [entity_type(t) for s in gold for t in s]
    p_types = [entity_type(t) for s in pred for t in s]
    return scores | token_type_scores(g_types, p_types)


def token_type_scores(gold_types: Sequence, pred_types: Sequence) -> dict[str, float]:
    """The paper's token-level `token_macro_f1` / `token_micro_f1` from one entity type per
    token (B-/I- already collapsed), scored over the gold entity types, `O` left out."""
    names, tp, n_gold, n_pred = _class_counts(gold_types, pred_types)
    types = (names != "O") & (n_gold > 0)
    if not types.any():
        return {"token_macro_f1": 0.0, "token_micro_f1": 0.0}
    return {
        "token_macro_f1": float(_f1(tp[types], n_gold[types], n_pred[types]).mean()),
        "token_micro_f1": float(_f1(tp[types].sum(), n_gold[types].sum(), n_pred[types].sum())),
    }


def _entity_scores(gold, pred) -> dict[str, float]:
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
    return scores


def _class_counts(gold, pred) -> tuple[np.ndarray, ...]:
    """Classes (gold ∪ predicted, sorted); per class: true positives, gold and predicted counts."""
    names, idx = np.unique(
        np.concatenate([np.asarray(gold), np.asarray(pred)]), return_inverse=True
    )
    g, p = idx[: len(gold)], idx[len(gold) :]
    k = len(names)
    tp = np.bincount(g[g == p], minlength=k)
    return names, tp, np.bincount(g, minlength=k), np.bincount(p, minlength=k)


def _f1(tp, n_gold, n_pred):
    """F1 = 2 tp / (gold + predicted); 0 where a class is neither in gold nor predicted."""
    denom = np.asarray(n_gold + n_pred, dtype=np.float64)
    return np.divide(2.0 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def classification_scores(gold: Sequence, pred: Sequence) -> dict[str, float]:
    """Accuracy, macro-F1 (over the gold labels' classes and predicted ones) and micro-F1."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    if gold.shape != pred.shape:
        raise ValueError("gold and predicted labels differ in length")
    if gold.size == 0:
        raise ValueError("no labels to score")
    _, tp, n_gold, n_pred = _class_counts(gold, pred)
    accuracy = float(np.mean(gold == pred))
    # one label per example: micro-F1 over all classes equals accuracy
    return {
        "accuracy": accuracy,
        "macro_f1": float(_f1(tp, n_gold, n_pred).mean()),
        "micro_f1": accuracy,
    }
