"""Control tasks (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control Tasks").

NER: every word TYPE gets one control label, drawn from the empirical label distribution; every
occurrence of the type, in the probe's fit set and in its evaluation set, carries that label, so
a probe can only score above chance on the evaluation set by memorising word identities.
Pair tasks (no word types): a seeded shuffle of the labels.

Selectivity = task score − control score: high selectivity means the representation, not the
probe's own capacity, explains the task score.

The draw for a word type is a pure function of (seed, word type, label distribution): a keyed
hash of the type gives a uniform number, which the inverse CDF of the distribution turns into a
label. So the mapping does not depend on which other words are present, the same type gets the
same control label in every set probed with the same seed and distribution, and it is stable
across processes and Python versions (no reliance on `hash()`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = [
    "control_label_map",
    "control_labels_ner",
    "control_labels_ner_pair",
    "control_labels_pairs",
    "label_distribution",
]


def label_distribution(labels: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """Empirical distribution of integer labels over `0..n_labels-1` (float64, sums to 1)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("cannot take the distribution of an empty label array")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative integers")
    n = int(labels.max()) + 1 if n_labels is None else int(n_labels)
    counts = np.bincount(labels.astype(np.int64), minlength=n).astype(np.float64)
    if len(counts) > n:
        raise ValueError(f"labels go up to {len(counts) - 1}, beyond n_labels={n}")
    return counts / counts.sum()


def _uniform(seed: int, word: str) -> float:
    digest = hashlib.blake2b(f"{int(seed)}\x00{word}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 11) / float(1 << 53)  # in [0, 1)


def control_label_map(
    word_types: Sequence[str], distribution: np.ndarray, seed: int
) -> dict[str, int]:
    """Control label of each distinct word type: a seeded draw from `distribution`."""
    cdf = np.cumsum(np.asarray(distribution, dtype=np.float64))
    if len(cdf) == 0 or not np.isclose(cdf[-1], 1.0):
        raise ValueError("distribution must be non-empty and sum to 1")
    vocab = sorted(set(word_types))
    u = np.array([_uniform(seed, w) for w in vocab], dtype=np.float64)
    draws = np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(cdf) - 1)
    return dict(zip(vocab, draws.tolist(), strict=True))


def _apply(word_types: Sequence[str], mapping: dict[str, int]) -> np.ndarray:
    return np.fromiter((mapping[w] for w in word_types), dtype=np.int64, count=len(word_types))


def control_labels_ner(
    word_types: Sequence[str],
    labels: np.ndarray,
    seed: int,
    n_labels: int | None = None,
) -> np.ndarray:
    """Control label per token: its word type's draw from the empirical distribution of `labels`.

    For a fit and an evaluation set, use `control_labels_ner_pair`, which draws from the
    distribution of both sets together so the two share one mapping.
    """
    labels = np.asarray(labels)
    if len(word_types) != len(labels):
        raise ValueError(f"{len(word_types)} word types for {len(labels)} labels")
    dist = label_distribution(labels, n_labels)
    return _apply(word_types, control_label_map(word_types, dist, seed))


def control_labels_ner_pair(
    fit_types: Sequence[str],
    fit_labels: np.ndarray,
    eval_types: Sequence[str],
    eval_labels: np.ndarray,
    seed: int,
    n_labels: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Control labels for a probe's fit and evaluation sets, from one mapping over both.

    The label distribution is the empirical one over both sets; every word type of the union of
    their vocabularies gets one control label, so a type seen in both carries the same label.
    """
    fit_labels, eval_labels = np.asarray(fit_labels), np.asarray(eval_labels)
    if len(fit_types) != len(fit_labels) or len(eval_types) != len(eval_labels):
        raise ValueError("word types and labels differ in length")
    dist = label_distribution(np.concatenate([fit_labels, eval_labels]), n_labels)
    mapping = control_label_map([*fit_types, *eval_types], dist, seed)
    return _apply(fit_types, mapping), _apply(eval_types, mapping)


def control_labels_pairs(labels: np.ndarray, seed: int | Sequence[int]) -> np.ndarray:
    """Pair tasks: the labels in a seeded random order (same multiset, no link to the inputs)."""
    return np.random.default_rng(seed).permutation(np.asarray(labels))
