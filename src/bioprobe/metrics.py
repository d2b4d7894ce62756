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


def as_iob2(gold, pred) -> tuple[list[list[str]], list[list[str]]]:
    """Both sides as IOB2 sentences for seqeval: as they are where both are IOB2, else both
    read as collapsed type tags (`io_to_iob2`)."""
    if not (_is_bio(gold) and _is_bio(pred)):
        return [io_to_iob2(s) for s in gold], [io_to_iob2(s) for s in pred]
    return [list(s) for s in gold], [list(s) for s in pred]


def _entity_scores(gold, pred) -> dict[str, float]:
    gold, pred = as_iob2(gold, pred)
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


def positive_class_scores(gold: Sequence, pred: Sequence, negative) -> dict[str, float]:
    """BLURB's relation-extraction score (ChemProt, DDI, GAD): micro-averaged precision, recall
    and F1 over the positive classes, i.e. every class but `negative`.

    A prediction counts only when it equals the gold label and that label is not `negative`;
    precision divides by the predictions that are not `negative`, recall by the gold labels that
    are not (LinkBERT's `PRF1`, with the negative class as id 0; scikit-learn's
    `f1_score(..., labels=positives, average="micro")`). Predicting `negative` everywhere
    scores 0. Keys: `positive_precision`, `positive_recall`, `positive_micro_f1`.
    """
    gold, pred = np.asarray(gold), np.asarray(pred)
    if gold.shape != pred.shape:
        raise ValueError("gold and predicted labels differ in length")
    if gold.size == 0:
        raise ValueError("no labels to score")
    tp = int(np.sum((gold == pred) & (gold != negative)))
    n_pred, n_gold = int(np.sum(pred != negative)), int(np.sum(gold != negative))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return {"positive_precision": precision, "positive_recall": recall, "positive_micro_f1": f1}


# --- PICO (EBM-NLP): IO tags per word ---


def pico_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], classes: Sequence[str]
) -> dict[str, float]:
    """BLURB's EBM PICO scores of sentences of IO tags (`I-PAR`, ... or bare types, and `O`).

    `word_macro_f1` is BLURB's metric: one label per word, the F1 of each of `classes` (the
    entity types, `O` excluded, absent ones scoring 0) and their unweighted mean, which is
    scikit-learn's ``f1_score(words_gold, words_pred, labels=[I-PAR, I-INT, I-OUT],
    average="macro")`` as BLURB's evaluator computes it (iqvianlp/IQVIA-NLP-LLM-Benchmarking-
    Pipeline, tools/bionlp_benchmarking/blurb/evaluators/ebm_pico.py); `word_f1/<type>` each.
    `span_macro_f1` is what LinkBERT reports for EBM PICO (michiyasunaga/LinkBERT,
    src/tokcls/run_ner.py with --return_macro_metrics, as its run_examples_blurb_*.sh run it):
    seqeval's default mode reads a run of one type's I- tags as one span, scores each type's
    spans and averages the types (here over `classes`); `span_f1/<type>` each.
    """
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred, strict=True)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    word = _word_f1(gold, pred, classes)
    span = _span_f1(gold, pred, classes)
    return {
        "word_macro_f1": float(np.mean(list(word.values()))) if word else 0.0,
        **{f"word_f1/{c}": v for c, v in word.items()},
        "span_macro_f1": float(np.mean(list(span.values()))) if span else 0.0,
        **{f"span_f1/{c}": v for c, v in span.items()},
    }


def _word_f1(gold, pred, classes: Sequence[str]) -> dict[str, float]:
    """Per class of `classes`: the F1 of its words (one type per word, B-/I- dropped)."""
    g = [entity_type(t) for s in gold for t in s]
    p = [entity_type(t) for s in pred for t in s]
    if not g:
        return dict.fromkeys(classes, 0.0)
    names, tp, n_gold, n_pred = _class_counts(g, p)
    at = {str(name): i for i, name in enumerate(names)}
    out = {}
    for c in classes:
        i = at.get(c)
        out[c] = 0.0 if i is None else float(_f1(tp[i], n_gold[i], n_pred[i]))
    return out


def _span_f1(gold, pred, classes: Sequence[str]) -> dict[str, float]:
    """Per class of `classes`: seqeval's F1 of its spans, a span being a run of one type."""
    g = [io_to_iob2([entity_type(t) for t in s]) for s in gold]
    p = [io_to_iob2([entity_type(t) for t in s]) for s in pred]
    if all(t == "O" for s in (*g, *p) for t in s):  # no span anywhere: seqeval would warn
        return dict.fromkeys(classes, 0.0)
    scores = _entity_scores(g, p)
    return {c: scores.get(f"entity_f1/{c}", 0.0) for c in classes}


# --- sentence similarity (BIOSSES) and multi-label classification (HoC) ---


def _correlation(kind: str, gold: np.ndarray, pred: np.ndarray) -> float:
    """scipy's Pearson or Spearman; 0.0 where either side is constant (scipy: nan plus a
    warning): a constant predictor carries no association with the gold scores."""
    from scipy import stats

    if np.ptp(gold) == 0 or np.ptp(pred) == 0:
        return 0.0
    test = stats.pearsonr if kind == "pearson" else stats.spearmanr
    return float(test(gold, pred).statistic)


def regression_scores(gold: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    """Real-valued predictions against gold scores: `pearson` (BLURB's BIOSSES metric, computed
    with scipy as LinkBERT's `run_seqcls.py` does), `spearman`, `mse` and `r2`."""
    from sklearn.metrics import mean_squared_error, r2_score

    gold = np.asarray(gold, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gold.shape != pred.shape or gold.ndim != 1:
        raise ValueError(f"gold {gold.shape} and predicted {pred.shape} scores must be [N] each")
    if gold.size < 2:
        raise ValueError("a correlation needs at least two scores")
    return {
        "pearson": _correlation("pearson", gold, pred),
        "spearman": _correlation("spearman", gold, pred),
        "mse": float(mean_squared_error(gold, pred)),
        "r2": float(r2_score(gold, pred)),
    }


def merge_by_document(
    gold: np.ndarray, pred: np.ndarray, documents: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot rows [N, K] -> one row per document [D, K]: the union of its examples' labels,
    for gold and predictions alike (documents in order of first appearance)."""
    _, first, inverse = np.unique(np.asarray(documents), return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # document ids renumbered by first appearance
    merged = []
    for rows in (gold, pred):
        out = np.zeros((len(first), rows.shape[1]), dtype=np.int64)
        np.maximum.at(out, order[inverse], rows)
        merged.append(out)
    return merged[0], merged[1]


def multilabel_scores(
    gold: np.ndarray, pred: np.ndarray, documents: Sequence[str] | None = None
) -> dict[str, float]:
    """Multi-label predictions against gold, both multi-hot [N, K].

    Per example: `micro_f1` and `macro_f1` over the K labels and `accuracy`, the share of
    examples whose whole label set is right (scikit-learn, `zero_division=0`). BLURB's HoC score
    (`eval_hoc` in LinkBERT's src/seqcls/utils_hoc.py, github.com/michiyasunaga/LinkBERT): the
    examples' gold and predicted labels are merged per document (the union over its
    sentences), then precision, recall and F1 are micro-averaged over every (document, label)
    cell — not averaged per document, as BLUE's `eval_hoc` does: `document_precision`,
    `document_recall`, `document_micro_f1`. Without `documents` each example is its own.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    gold = np.asarray(gold, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if gold.shape != pred.shape or gold.ndim != 2:
        raise ValueError(f"gold {gold.shape} and predicted {pred.shape} must be [N, K] each")
    if gold.shape[0] == 0:
        raise ValueError("no examples to score")
    scores = {
        "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(gold, pred)),
    }
    if documents is not None:
        if len(documents) != gold.shape[0]:
            raise ValueError(f"{len(documents)} document ids for {gold.shape[0]} examples")
        gold, pred = merge_by_document(gold, pred, documents)
    p, r, f1, _ = precision_recall_fscore_support(gold, pred, average="micro", zero_division=0)
    return scores | {
        "document_precision": float(p),
        "document_recall": float(r),
        "document_micro_f1": float(f1),
    }
