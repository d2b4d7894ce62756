"""The multilabel task type's probe: one-vs-rest logistic regressions, every label a binary
target of its own, all layers and labels (and the control task's) in one batched solve.

`fit_layers_linear` fits standardised logistic regressions with scikit-learn's objective; given
the K label columns of the task and the K of the control task as 2K binary targets, it reads
each layer's features once for all of them. The control task (Hewitt & Liang 2019, as for pair
tasks) shuffles whole label rows between examples with the run's seed: each label keeps its
frequency and the labels their co-occurrence, but nothing links them to the inputs any more.
Scores per layer: `micro_f1` (the probe metric), `macro_f1` over the labels and `accuracy`
(the whole label set right); selectivity = task − control, as the classification probes write
it (`selectivity`: accuracy, `selectivity_micro_f1`, `selectivity_macro_f1`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bioprobe.metrics import multilabel_scores
from bioprobe.probing.rows import (
    check_targets,
    draw_keys,
    mean_over_draws,
    probe_rows,
    shuffled_controls,
)
from bioprobe.probing.softmax import fit_layers_linear

__all__ = ["MultiLabelProbeData", "probe_multilabel"]

#: selectivity rows and the score each is the task − control difference of
_SELECTIVITY = {
    "selectivity": "accuracy",
    "selectivity_micro_f1": "micro_f1",
    "selectivity_macro_f1": "macro_f1",
}


@dataclass
class MultiLabelProbeData:
    """Probing units of one split with a set of labels each.

    features: [L+1, N, H] (layer 0 = embeddings), any float dtype, may be a memmap.
    targets: [N, K] multi-hot (1 where the unit has label k of `label_names`).
    """

    features: Any
    targets: np.ndarray
    label_names: Sequence[str]

    def __post_init__(self) -> None:
        if getattr(self.features, "ndim", None) != 3:
            raise ValueError("features must be a [L+1, N, H] array")
        self.targets = np.asarray(self.targets, dtype=np.int64)
        shape = (self.features.shape[1], len(self.label_names))
        if self.targets.shape != shape:
            raise ValueError(f"targets have shape {self.targets.shape}, expected {shape}")
        if not np.isin(self.targets, (0, 1)).all():
            raise ValueError("targets must be 0/1")


def probe_multilabel(
    train: MultiLabelProbeData,
    test: MultiLabelProbeData,
    hyper: Mapping[str, Any] | None = None,
    targets: Sequence[str] = ("task", "control"),
    seed: int = 0,
    num_threads: int | None = None,
    kind: str = "linear",
    control_draws: int = 1,
) -> list[dict]:
    """Rows (layer, probe, target, metric, value) of one-vs-rest linear probes fitted on
    `train` and scored on `test` (`hyper`: the linear probe's `C`, `max_iter`, `tol`); the
    control's scores are the mean over `control_draws` shuffles."""
    if list(train.label_names) != list(test.label_names):
        raise ValueError("train and test have different label_names")
    if train.features.shape[0] != test.features.shape[0]:
        raise ValueError("train and test have different numbers of layers")
    targets = check_targets(targets)
    gold = {"task": (train.targets, test.targets)}
    if "control" in targets:  # whole rows shuffled: label frequencies and co-occurrence kept
        gold |= shuffled_controls(train.targets, test.targets, seed, control_draws)
    solver = {k: v for k, v in (hyper or {}).items() if k != "random_state"}  # deterministic
    k = len(train.label_names)
    keys = draw_keys(targets, gold)
    # [S*K, N]: label set s's label j is row s*K + j; labels constant in `train` predict that
    ys = np.concatenate([gold[key][0].T for key in keys])
    pred = fit_layers_linear(
        train.features, ys, test.features, num_threads=num_threads, **solver
    )  # [S*K, L+1, M]

    def layer_scores(layer: int) -> dict[str, dict[str, float]]:
        per_set = {
            key: multilabel_scores(gold[key][1], pred[i * k : (i + 1) * k, layer].T)
            for i, key in enumerate(keys)
        }
        per_set = {
            key: {m: s[m] for m in ("accuracy", "macro_f1", "micro_f1")}
            for key, s in per_set.items()
        }
        return mean_over_draws(targets, per_set)

    return probe_rows(
        kind, ((layer_scores(layer), _SELECTIVITY) for layer in range(train.features.shape[0]))
    )
