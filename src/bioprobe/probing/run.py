"""Probe every layer of a dump: one probe per layer and target, scored into tidy rows.

`probe_all_layers(train, test, kind, ...)` fits on `train` (by default the validation split)
and scores on `test`. The linear probe fits all layers at once (`fit_layers_linear`); the other
kinds fit one probe per layer, spread over `n_jobs` processes with joblib.

Rows: `{"layer", "probe", "target", "metric", "value"}`, target `task` or `control`, metrics
`accuracy`, `macro_f1`, `micro_f1` (over probing units: words or pairs); for NER also the paper's
token-level `token_macro_f1`/`token_micro_f1` over entity types (`O` excluded) and, when the
probe labels are BIO tags, entity-level `entity_precision`/`entity_recall`/`entity_f1` (seqeval,
strict IOB2). With both targets, each layer also gets `selectivity` (task − control accuracy) and
`selectivity_macro_f1` rows under target `task`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioprobe.metrics import classification_scores, entity_type, ner_scores, token_type_scores
from bioprobe.probing.control import control_labels_ner_pair
from bioprobe.probing.estimators import PROBE_KINDS, make_probe
from bioprobe.probing.rows import (
    TARGETS,
    LayerScores,
    control_seeds,
    draw_keys,
    mean_over_draws,
    probe_rows,
    shuffled_control,
)
from bioprobe.probing.softmax import fit_layers_linear

__all__ = ["ProbeData", "bio_to_type", "probe_all_layers", "split_sentences", "target_labels"]

LABEL_MODES = ("type", "bio")
_ENTITY_METRICS = ("entity_precision", "entity_recall", "entity_f1")
_TOKEN_METRICS = ("token_macro_f1", "token_micro_f1")
#: a task type's own probe metrics: (gold ids, predicted ids) of the scored units -> scores
ExtraScores = Callable[[np.ndarray, np.ndarray], Mapping[str, float]]


@dataclass
class ProbeData:
    """Probing units of one split: per-layer features and labels.

    features: [L+1, N, H] (layer 0 = embeddings), any float dtype, may be a memmap.
    labels: [N] integer ids into `label_names`.
    sentence_lengths: NER only: words per sentence, in row order (sums to N).
    word_types: NER only: each word's type (lowercased form), for the control task.
    """

    features: Any
    labels: np.ndarray
    label_names: Sequence[str]
    sentence_lengths: np.ndarray | None = None
    word_types: Sequence[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if getattr(self.features, "ndim", None) != 3:
            raise ValueError("features must be a [L+1, N, H] array")
        n = self.features.shape[1]
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (n,):
            raise ValueError(f"labels have shape {self.labels.shape}, features have {n} rows")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise ValueError("labels must be ids into label_names")
        if self.sentence_lengths is not None:
            self.sentence_lengths = np.asarray(self.sentence_lengths, dtype=np.int64)
            if self.sentence_lengths.min(initial=0) < 0 or self.sentence_lengths.sum() != n:
                raise ValueError(f"sentence_lengths must be >= 0 and sum to {n} rows")
        if self.word_types is not None and len(self.word_types) != n:
            raise ValueError(f"{len(self.word_types)} word types for {n} rows")

    @property
    def is_sequence(self) -> bool:
        return self.sentence_lengths is not None


def bio_to_type(label_names: Sequence[str], labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Collapse BIO tags to entity types (`B-Disease`, `I-Disease` -> `Disease`; `O` stays).

    Returns the type names (in order of first appearance in `label_names`) and the relabelled
    ids. Names that are already types pass through.
    """
    types: list[str] = []
    old_to_new = np.empty(len(label_names), dtype=np.int64)
    for i, name in enumerate(label_names):
        t = entity_type(name)
        if t not in types:
            types.append(t)
        old_to_new[i] = types.index(t)
    return types, old_to_new[np.asarray(labels, dtype=np.int64)]


def split_sentences(rows: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Word rows [N, ...] -> one array per sentence (views, no copy)."""
    return np.split(rows, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _is_bio(names: Sequence[str]) -> bool:
    return any(n[:2] in ("B-", "I-") for n in names)


def _fit_predict_layer(kind, hyper, x_fit, y_fit, x_eval, fit_lengths, eval_lengths, threads):
    """One layer, one target: fit a probe and predict the evaluation rows [M]."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    x_fit = np.asarray(x_fit, dtype=np.float32)
    x_eval = np.asarray(x_eval, dtype=np.float32)
    probe = make_probe(kind, **hyper)
    if kind == "bilstm-crf":
        probe.fit(split_sentences(x_fit, fit_lengths), split_sentences(y_fit, fit_lengths))
        pred = probe.predict(split_sentences(x_eval, eval_lengths))
        return np.concatenate(pred) if pred else np.empty(0, dtype=np.int64)
    return probe.fit(x_fit, y_fit).predict(x_eval)


def _score(gold, pred, names, lengths, bio) -> dict[str, float]:
    scores = classification_scores(gold, pred)
    if lengths is None:
        return scores
    if bio:  # entity metrics: seqeval reads sentences of tags
        names = np.asarray(names, dtype=object)
        g = [list(s) for s in split_sentences(names[gold], lengths)]
        p = [list(s) for s in split_sentences(names[pred], lengths)]
        ner = ner_scores(g, p)
        return scores | {k: ner[k] for k in _TOKEN_METRICS + _ENTITY_METRICS}
    types = np.array([entity_type(n) for n in names])  # per label id: no per-token strings
    return scores | token_type_scores(types[gold], types[pred])


def probe_all_layers(
    train: ProbeData,
    test: ProbeData,
    kind: str = "linear",
    hyper: Mapping[str, Any] | None = None,
    targets: Sequence[str] = TARGETS,
    label_mode: str = "bio",
    seed: int = 0,
    n_jobs: int = 1,
    extra_scores: ExtraScores | None = None,
    control_draws: int = 1,
) -> list[dict]:
    """Fit a `kind` probe per layer and target on `train`, score on `test`; tidy rows.

    label_mode (NER): "bio" probes the BIO tags (entity-level F1 reported), "type" collapses
    them to entity types first (the paper's setting). Pair tasks ignore it. `seed` seeds the
    probes and the control task. `extra_scores(gold_ids, predicted_ids)` adds a task type's
    own metrics to every target's rows (and, with both targets, `selectivity_<metric>`).
    The control's scores are the mean over `control_draws` control tasks (`target_labels`).
    """
    hyper = dict(hyper or {})  # a copy: the joblib path adds random_state to it
    targets = _check_inputs(train, test, kind, hyper, targets, label_mode)
    names, labels = target_labels(train, test, targets, label_mode, seed, control_draws)
    if kind == "linear":
        preds = _predict_linear(train, test, hyper, targets, labels)
    else:
        preds = _predict_per_layer(train, test, kind, hyper, targets, labels, seed, n_jobs)
    bio = train.is_sequence and _is_bio(names)
    return probe_rows(
        kind,
        (
            _layer_scores(
                layer, targets, labels, preds, names, test.sentence_lengths, bio, extra_scores
            )
            for layer in range(train.features.shape[0])
        ),
    )


def target_labels(
    train: ProbeData,
    test: ProbeData,
    targets: Sequence[str],
    label_mode: str,
    seed: int,
    control_draws: int = 1,
) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The label names and the (fit, eval) label ids the probes see, per label set: `task`
    (NER tags as `label_mode` says) and the control task's draws, `control` (seeded by `seed`)
    and `control/2` ... `control/<control_draws>` (`rows.control_seeds`); a target's score is
    the mean over its label sets (`rows.draw_keys`)."""
    seeds = control_seeds(seed, control_draws) if "control" in targets else {}
    names, y_fit, y_eval = _probe_labels(train, test, label_mode)
    labels = {"task": (y_fit, y_eval)}
    for key, draw_seed in seeds.items():
        labels[key] = _control_labels(train, test, y_fit, y_eval, draw_seed, len(names))
    return names, labels


def _check_inputs(
    train: ProbeData,
    test: ProbeData,
    kind: str,
    hyper: Mapping[str, Any],
    targets: Sequence[str],
    label_mode: str,
) -> list[str]:
    """Reject bad arguments before any work; the targets in canonical order (task first)."""
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {sorted(PROBE_KINDS)}")
    make_probe(kind, **hyper)  # validates the hyper-parameters
    if not targets or not set(targets) <= set(TARGETS):
        raise ValueError(f"targets must be a non-empty subset of {TARGETS}, got {targets!r}")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if list(train.label_names) != list(test.label_names):
        raise ValueError("train and test have different label_names")
    if train.features.shape[0] != test.features.shape[0]:
        raise ValueError("train and test have different numbers of layers")
    if train.features.shape[2] != test.features.shape[2]:
        raise ValueError("train and test have different hidden sizes")
    if train.is_sequence != test.is_sequence:
        raise ValueError("sentence_lengths must be given for both train and test, or neither")
    if kind == "bilstm-crf" and not train.is_sequence:
        raise ValueError("the bilstm-crf probe needs sentence_lengths (an NER dump)")
    return [t for t in TARGETS if t in targets]


def _probe_labels(
    train: ProbeData, test: ProbeData, label_mode: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The label names and fit/eval ids the probes see: NER tags collapse to types in "type"."""
    if train.is_sequence and label_mode == "type":
        names, y_fit = bio_to_type(train.label_names, train.labels)
        _, y_eval = bio_to_type(test.label_names, test.labels)
        return names, y_fit, y_eval
    return list(train.label_names), train.labels, test.labels


def _control_labels(
    train: ProbeData,
    test: ProbeData,
    y_fit: np.ndarray,
    y_eval: np.ndarray,
    seed: int,
    n_labels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Control-task labels (fit, eval): per word type for NER, per pair otherwise."""
    if not train.is_sequence:
        return shuffled_control(y_fit, y_eval, seed)
    if train.word_types is None or test.word_types is None:
        raise ValueError("the NER control task needs word_types for train and test")
    return control_labels_ner_pair(
        train.word_types, y_fit, test.word_types, y_eval, seed, n_labels=n_labels
    )


def _predict_linear(
    train: ProbeData,
    test: ProbeData,
    hyper: Mapping[str, Any],
    targets: Sequence[str],
    labels: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Predictions [L+1, M] per label set (every draw of each target); all in one solve: they
    share every feature pass."""
    solver = {k: v for k, v in hyper.items() if k != "random_state"}  # deterministic
    keys = draw_keys(targets, labels)
    fitted = fit_layers_linear(
        train.features, np.stack([labels[k][0] for k in keys]), test.features, **solver
    )
    return dict(zip(keys, fitted, strict=True))


def _predict_per_layer(
    train: ProbeData,
    test: ProbeData,
    kind: str,
    hyper: dict[str, Any],
    targets: Sequence[str],
    labels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    seed: int,
    n_jobs: int,
) -> dict[str, np.ndarray]:
    """Predictions [L+1, M] per label set: one probe per (label set, layer), spread over
    joblib."""
    from joblib import Parallel, delayed

    hyper.setdefault("random_state", seed)
    keys = draw_keys(targets, labels)
    jobs = [(k, layer) for k in keys for layer in range(train.features.shape[0])]
    # split the cores between workers rather than oversubscribing them
    threads = max(1, (os.cpu_count() or 1) // n_jobs) if n_jobs > 1 else 0
    out = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict_layer)(
            kind,
            hyper,
            train.features[layer],
            labels[t][0],
            test.features[layer],
            train.sentence_lengths,
            test.sentence_lengths,
            threads,
        )
        for t, layer in jobs
    )
    return {k: np.stack([p for (kk, _), p in zip(jobs, out, strict=True) if kk == k]) for k in keys}


def _layer_scores(layer, targets, labels, preds, names, lengths, bio, extra) -> LayerScores:
    """One layer's scores per target, each the mean over the target's label draws, and its
    selectivity rows (task − control): accuracy (`selectivity`), macro-F1 and the task type's
    own metrics."""
    keys = draw_keys(targets, labels)
    own = {k: dict(extra(labels[k][1], preds[k][layer])) if extra else {} for k in keys}
    per_set = {k: _score(labels[k][1], preds[k][layer], names, lengths, bio) | own[k] for k in keys}
    selectivity = {"selectivity": "accuracy", "selectivity_macro_f1": "macro_f1"}
    selectivity |= {f"selectivity_{m}": m for m in own.get("task", {})}
    return mean_over_draws(targets, per_set), selectivity
