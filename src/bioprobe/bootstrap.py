"""Percentile bootstrap confidence intervals of downstream scores, from a run's predictions.

A split's scores are a function of its units: examples, sentences for NER and PICO (their
entities never cross a sentence), documents for multilabel tasks (BLURB's HoC score merges a
document's sentences first). A task type states that function as a `Resampling`
(`TaskType.resampling`): the number of units and ``scores(idx)``, its scores on drawn units,
vectorised over resamples (``idx``: [B, n] unit indices).

Almost every score (precision, recall, F1 of any averaging, accuracy, MSE, R²) is a function of
counts that add up over units: true positives, gold and predicted counts per class, sums of
squares. `counted` takes each unit's counts once, [n, C]; a resample's totals are then a
matrix product of its draw counts with them, which gives the score exactly as recomputing it
on the resampled examples would (seqeval, scikit-learn), at a fraction of the cost
(tests/unit/test_bootstrap.py checks both). Correlations (Pearson, Spearman) are computed on
the drawn values themselves.

`scipy.stats.bootstrap` draws the resamples (``rng`` seeded by `BootstrapSettings.seed`, so an
interval is reproducible) and takes the percentile interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bioprobe.settings import BootstrapSettings

#: unit indices drawn, [B, n] -> {metric: values [B]}
Scores = Callable[[np.ndarray], dict[str, np.ndarray]]

#: resamples × units drawn per vectorised call: bounds the [B, n] draw-count matrix (32 MiB)
_DRAWS_PER_CALL = 2**22


@dataclass(frozen=True)
class Resampling:
    """A split's scores as a function of which of its `n` units are drawn."""

    n: int
    scores: Scores


def draw_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of `n` units is drawn in each resample: [B, n] indices -> [B, n]."""
    idx = np.atleast_2d(idx)
    b = idx.shape[0]
    flat = (np.arange(b)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def counted(
    counts: np.ndarray, finish: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> Resampling:
    """A `Resampling` of scores that are functions of additive per-unit counts [n, C]:
    `finish` maps totals [B, C] to {metric: [B]}."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    return Resampling(n, lambda idx: finish(draw_counts(idx, n) @ counts))


def confidence_intervals(
    resampling: Resampling, settings: BootstrapSettings, metrics: Sequence[str] | None = None
) -> dict[str, tuple[float, float]]:
    """The percentile interval of each of `metrics` that `resampling` scores (default: all);
    none with fewer than two units."""
    if resampling.n < 2:
        return {}
    scored = resampling.scores(np.arange(resampling.n)[None])
    metrics = sorted(scored) if metrics is None else [m for m in metrics if m in scored]
    if not metrics:
        return {}

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        scores = resampling.scores(idx.reshape(-1, resampling.n))
        return np.stack([scores[m].reshape(idx.shape[:-1]) for m in metrics])

    result = stats.bootstrap(
        (np.arange(resampling.n),),
        statistic,
        n_resamples=settings.resamples,
        batch=max(1, _DRAWS_PER_CALL // resampling.n),
        vectorized=True,
        confidence_level=settings.confidence,
        method="percentile",
        rng=np.random.default_rng(settings.seed),
    )
    low, high = result.confidence_interval
    return {m: (float(lo), float(hi)) for m, lo, hi in zip(metrics, low, high, strict=True)}


# --- the count forms of bioprobe.metrics' scores ---


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's and seqeval's ``zero_division=0``)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def f1(tp: np.ndarray, gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return ratio(2 * tp, gold + pred)


def class_counts(gold: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Per unit, [tp | gold | predicted] one-hot over `k` classes: [n, 3k]."""
    eye = np.eye(k)
    g, p = eye[gold], eye[pred]
    return np.hstack([g * p, g, p])


def _split3(totals: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return totals[:, :k], totals[:, k : 2 * k], totals[:, 2 * k : 3 * k]


def classification(gold: Sequence[int], pred: Sequence[int], k: int, negative: int | None = None):
    """`metrics.classification_scores` (and `positive_class_scores` of class id `negative`)
    of class ids: macro-F1 over the classes in gold or predicted of each resample."""
    gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)

    def finish(totals: np.ndarray) -> dict[str, np.ndarray]:
        tp, g, p = _split3(totals, k)
        present = (g + p) > 0
        accuracy = ratio(tp.sum(1), g.sum(1))
        out = {
            "accuracy": accuracy,
            "micro_f1": accuracy,
            "macro_f1": ratio((f1(tp, g, p) * present).sum(1), present.sum(1)),
        }
        if negative is not None:
            pos = np.arange(k) != negative
            tp_, g_, p_ = tp[:, pos].sum(1), g[:, pos].sum(1), p[:, pos].sum(1)
            out |= {
                "positive_precision": ratio(tp_, p_),
                "positive_recall": ratio(tp_, g_),
                "positive_micro_f1": f1(tp_, g_, p_),
            }
        return out

    return counted(class_counts(gold, pred, k), finish)


def regression(gold: Sequence[float], pred: Sequence[float]) -> Resampling:
    """`metrics.regression_scores` on the drawn pairs (a constant side correlates 0)."""
    gold, pred = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)

    def scores(idx: np.ndarray) -> dict[str, np.ndarray]:
        g, p = gold[idx], pred[idx]
        err = ((g - p) ** 2).sum(-1)
        total = ((g - g.mean(-1, keepdims=True)) ** 2).sum(-1)
        # scikit-learn's r2_score on a constant gold: 1 for a perfect fit, else 0
        r2 = np.where(total > 0, 1 - ratio(err, total), (err == 0).astype(float))
        return {
            "pearson": _pearson(g, p),
            "spearman": _pearson(stats.rankdata(g, axis=-1), stats.rankdata(p, axis=-1)),
            "mse": err / g.shape[-1],
            "r2": r2,
        }

    return Resampling(len(gold), scores)


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r, 0 where a row is constant."""
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    den = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    return np.clip(ratio((x * y).sum(-1), den), -1.0, 1.0)


def multilabel(gold: np.ndarray, pred: np.ndarray, documents: Sequence[str]) -> Resampling:
    """`metrics.multilabel_scores` of multi-hot rows [N, K], resampling whole documents: per
    document its examples' per-label counts and exact matches, and the counts of its merged
    rows (the union of its examples' labels)."""
    gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    n, k = gold.shape
    _, doc = np.unique(np.asarray(documents), return_inverse=True)
    per_example = np.hstack(
        [gold * pred, gold, pred, np.all(gold == pred, axis=1)[:, None], np.ones((n, 1))]
    )
    by_doc = np.zeros((doc.max() + 1, per_example.shape[1]))
    np.add.at(by_doc, doc, per_example)
    merged = []
    for rows in (gold, pred):
        union = np.zeros((len(by_doc), k), dtype=np.int64)
        np.maximum.at(union, doc, rows)
        merged.append(union)
    g_doc, p_doc = merged
    doc_counts = np.stack([(g_doc * p_doc).sum(1), g_doc.sum(1), p_doc.sum(1)], axis=1)

    def finish(totals: np.ndarray) -> dict[str, np.ndarray]:
        tp, g, p = _split3(totals, k)
        exact, examples = totals[:, 3 * k], totals[:, 3 * k + 1]
        dtp, dg, dp = totals[:, -3], totals[:, -2], totals[:, -1]
        return {
            "micro_f1": f1(tp.sum(1), g.sum(1), p.sum(1)),
            "macro_f1": f1(tp, g, p).mean(1),
            "accuracy": ratio(exact, examples),
            "document_precision": ratio(dtp, dp),
            "document_recall": ratio(dtp, dg),
            "document_micro_f1": f1(dtp, dg, dp),
        }

    return counted(np.hstack([by_doc, doc_counts]), finish)


def _entity_counts(gold, pred, types: Sequence[str] | None = None):
    """Per sentence, [tp | gold | predicted] entities of each type (seqeval strict IOB2, the
    tags read as `metrics.ner_scores` reads them), and the types: `types`, else every type
    found in gold or predicted."""
    from seqeval.scheme import IOB2, Entities

    from bioprobe.metrics import as_iob2

    sides = [Entities(tags, IOB2).entities for tags in as_iob2(gold, pred)]
    if types is None:
        types = sorted({e.tag for side in sides for s in side for e in s})
    at = {t: i for i, t in enumerate(types)}
    k = len(types)
    out = np.zeros((len(gold), 3 * k))
    for row, (gs, ps) in enumerate(zip(*sides, strict=True)):
        g_set, p_set = {e.to_tuple() for e in gs}, {e.to_tuple() for e in ps}
        for block, found in enumerate((g_set & p_set, g_set, p_set)):
            for _, tag, _, _ in found:
                out[row, block * k + at[tag]] += 1
    return out, list(types)


def _word_counts(gold, pred, types: Sequence[str]) -> np.ndarray:
    """Per sentence, [tp | gold | predicted] words of each of `types` (B-/I- dropped)."""
    from bioprobe.metrics import entity_type

    at = {t: i for i, t in enumerate(types)}
    k = len(types)
    out = np.zeros((len(gold), 3 * k))
    for row, (gs, ps) in enumerate(zip(gold, pred, strict=True)):
        for g, p in zip(map(entity_type, gs), map(entity_type, ps), strict=True):
            if g in at:
                out[row, k + at[g]] += 1
                out[row, at[g]] += g == p
            if p in at:
                out[row, 2 * k + at[p]] += 1
    return out


def tags(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> Resampling:
    """`metrics.ner_scores` of sentences of tags, resampling sentences: seqeval's strict
    entity scores (micro-averaged and per type) and the token-level type scores."""
    from bioprobe.metrics import entity_type

    ents, entity_types = _entity_counts(gold, pred)
    word_types = sorted({entity_type(t) for side in (gold, pred) for s in side for t in s} - {"O"})
    words = _word_counts(gold, pred, word_types)
    ke, kw = len(entity_types), len(word_types)

    def finish(totals: np.ndarray) -> dict[str, np.ndarray]:
        tp, g, p = _split3(totals[:, : 3 * ke], ke)
        out = {
            "entity_precision": ratio(tp.sum(1), p.sum(1)),
            "entity_recall": ratio(tp.sum(1), g.sum(1)),
            "entity_f1": f1(tp.sum(1), g.sum(1), p.sum(1)),
        }
        out |= {
            f"entity_f1/{t}": f1(tp[:, i], g[:, i], p[:, i]) for i, t in enumerate(entity_types)
        }
        wtp, wg, wp = _split3(totals[:, 3 * ke :], kw)
        scored = wg > 0  # the token scores average the types present in gold
        out["token_macro_f1"] = ratio((f1(wtp, wg, wp) * scored).sum(1), scored.sum(1))
        out["token_micro_f1"] = f1((wtp * scored).sum(1), wg.sum(1), (wp * scored).sum(1))
        return out

    return counted(np.hstack([ents, words]), finish)


def pico(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], classes: Sequence[str]
) -> Resampling:
    """`metrics.pico_scores`, resampling sentences: each class's word F1 and span F1 (a run
    of one type's tags is a span) and their means over `classes`."""
    from bioprobe.metrics import entity_type, io_to_iob2

    classes = list(classes)
    k = len(classes)
    spans = [[io_to_iob2([entity_type(t) for t in s]) for s in side] for side in (gold, pred)]
    counts = np.hstack([_word_counts(gold, pred, classes), _entity_counts(*spans, classes)[0]])

    def finish(totals: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, block in (("word", totals[:, : 3 * k]), ("span", totals[:, 3 * k :])):
            per_class = f1(*_split3(block, k))
            out[f"{name}_macro_f1"] = per_class.mean(1) if k else np.zeros(len(totals))
            out |= {f"{name}_f1/{c}": per_class[:, i] for i, c in enumerate(classes)}
        return out

    return counted(counts, finish)
