"""The similarity task type's probe: a ridge regression per layer on the real-valued scores.

Per layer, scikit-learn's `RidgeCV` on standardised features (`StandardScaler`) fits the task's
scores and the control task's (the same scores, shuffled with the run's seed) in one solve: its
efficient leave-one-out picks each target's own penalty from `alphas` (`alpha_per_target`), so
the control gets the same chance to fit as the task. One fit costs an SVD or eigendecomposition
of a layer's [N, H] features, shared by every target and penalty. Scores: Pearson (the probe
metric, BLURB's BIOSSES metric), Spearman, R² and MSE; `selectivity_pearson` (and
`selectivity`, the same number: there is no accuracy to take it from) = task − control Pearson.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bioprobe.metrics import regression_scores
from bioprobe.probing.rows import (
    check_targets,
    draw_keys,
    mean_over_draws,
    probe_rows,
    shuffled_controls,
)

__all__ = ["DEFAULT_ALPHAS", "RegressionProbeData", "fit_layers_ridge", "probe_regression"]

#: the penalties `RidgeCV` chooses from (standardised features: the penalty is in units of
#: examples, so the grid spans a few examples' worth to many times a large split)
DEFAULT_ALPHAS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
#: selectivity rows and the score each is the task − control difference of (`selectivity`:
#: Pearson's, as there is no accuracy)
_SELECTIVITY = {
    "selectivity": "pearson",
    "selectivity_pearson": "pearson",
    "selectivity_spearman": "spearman",
}


@dataclass
class RegressionProbeData:
    """Probing units of one split with real-valued targets.

    features: [L+1, N, H] (layer 0 = embeddings), any float dtype, may be a memmap.
    targets: [N] the units' gold scores.
    """

    features: Any
    targets: np.ndarray

    def __post_init__(self) -> None:
        if getattr(self.features, "ndim", None) != 3:
            raise ValueError("features must be a [L+1, N, H] array")
        self.targets = np.asarray(self.targets, dtype=np.float64)
        n = self.features.shape[1]
        if self.targets.shape != (n,):
            raise ValueError(f"targets have shape {self.targets.shape}, features have {n} rows")
        if not np.isfinite(self.targets).all():
            raise ValueError("targets must be finite numbers")


def fit_layers_ridge(
    X, Y: np.ndarray, X_eval, alphas: Sequence[float] = DEFAULT_ALPHAS
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised ridge regressions of every target on every layer.

    X [L, N, H] and X_eval [L, M, H] (float16/32 arrays or memmaps, read one layer at a time);
    Y [T, N]. Returns the predictions [T, L, M] and the chosen penalties [T, L].
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 3 or X_eval.ndim != 3 or X.shape[::2] != X_eval.shape[::2]:
        raise ValueError(f"X {X.shape} and X_eval {X_eval.shape} must be [L, N, H] and [L, M, H]")
    if Y.ndim != 2 or Y.shape[1] != X.shape[1]:
        raise ValueError(f"Y has shape {Y.shape}, expected (T, {X.shape[1]})")
    n_layers, m = X.shape[0], X_eval.shape[1]
    pred = np.empty((len(Y), n_layers, m))
    chosen = np.empty((len(Y), n_layers))
    for layer in range(n_layers):
        # float64: the leave-one-out shortcut divides by 1 - h_ii, which float32 rounds badly
        model = make_pipeline(
            StandardScaler(),
            RidgeCV(alphas=np.asarray(alphas, dtype=np.float64), alpha_per_target=True),
        )
        model.fit(np.asarray(X[layer], dtype=np.float64), Y.T)
        pred[:, layer] = model.predict(np.asarray(X_eval[layer], dtype=np.float64)).T
        chosen[:, layer] = np.broadcast_to(model[-1].alpha_, (len(Y),))
    return pred, chosen


def probe_regression(
    train: RegressionProbeData,
    test: RegressionProbeData,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    targets: Sequence[str] = ("task", "control"),
    seed: int = 0,
    num_threads: int | None = None,
    kind: str = "linear",
    control_draws: int = 1,
) -> list[dict]:
    """Rows (layer, probe, target, metric, value): a ridge probe per layer and target fitted on
    `train`, scored on `test`; with both targets, selectivity per layer under target `task`.
    Each row also records the penalty chosen (metric `alpha`). The control's rows are the mean
    over `control_draws` shuffles."""
    if train.features.shape[0] != test.features.shape[0]:
        raise ValueError("train and test have different numbers of layers")
    targets = check_targets(targets)
    gold = {"task": (train.targets, test.targets)}
    if "control" in targets:
        gold |= shuffled_controls(train.targets, test.targets, seed, control_draws)
    keys = draw_keys(targets, gold)
    # the job's threads for the BLAS calls inside scikit-learn (None: leave them alone)
    with threadpool_limits(limits=num_threads):
        pred, chosen = fit_layers_ridge(
            train.features, np.stack([gold[key][0] for key in keys]), test.features, alphas
        )

    def layer_scores(layer: int) -> dict[str, dict[str, float]]:
        per_set = {
            key: regression_scores(gold[key][1], pred[i, layer]) | {"alpha": chosen[i, layer]}
            for i, key in enumerate(keys)
        }
        return mean_over_draws(targets, per_set)

    return probe_rows(
        kind, ((layer_scores(layer), _SELECTIVITY) for layer in range(train.features.shape[0]))
    )
