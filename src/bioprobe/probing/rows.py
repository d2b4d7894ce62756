"""What every probe shares (the classification probes of `run`, `ridge`'s regressions,
`multilabel`'s one-vs-rest): its targets, the control task's gold of a target set in example
order, and the tidy rows `{"layer", "probe", "target", "metric", "value"}` of its scores, with
selectivity (task − control) per layer under target `task`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from bioprobe.probing.control import control_labels_pairs
from bioprobe.seeding import derive_seed

#: the probes' targets, in their canonical order: the task's gold and the control task's
TARGETS = ("task", "control")

#: one layer's scores per target ({target: {metric: value}}) and its selectivity rows
#: ({row metric: the metric whose task − control difference it is})
LayerScores = tuple[Mapping[str, Mapping[str, float]], Mapping[str, str]]


def check_targets(targets: Sequence[str]) -> list[str]:
    """`targets` in canonical order (task first); anything but a non-empty subset of `TARGETS`
    is a ValueError."""
    if not targets or not set(targets) <= set(TARGETS):
        raise ValueError(f"targets must be a non-empty subset of {TARGETS}: {targets}")
    return [t for t in TARGETS if t in targets]


def control_seeds(seed: int, draws: int) -> dict[str, int]:
    """The control task's draws of a run: label-set key (`control`, `control/2`, ...) -> seed,
    the first the run's `seed`, the others derived from it.

    One control draw is a lottery: a word type's control label is a fixed function of (seed,
    word), and a draw that gives `the` or `,` an entity label is a control that is trivial to
    learn (README, "Probe complexity and selectivity"); the probes score the control as the
    mean over the draws (`mean_over_draws`)."""
    if draws < 1:
        raise ValueError(f"control_draws must be at least 1, got {draws}")
    later = {f"control/{d}": derive_seed(f"control-draw-{d}", seed) for d in range(2, draws + 1)}
    return {"control": seed} | later


def label_draws(target: str, labels: Mapping[str, object]) -> list[str]:
    """The label sets of `target` among `labels`' keys (its draws, the first first)."""
    return [k for k in labels if k == target or k.startswith(f"{target}/")]


def draw_keys(targets: Sequence[str], labels: Mapping[str, object]) -> list[str]:
    """Every label set of `targets` among `labels`' keys, target by target: the order in which
    the probes stack them into one solve."""
    return [k for t in targets for k in label_draws(t, labels)]


def mean_over_draws(
    targets: Sequence[str], per_set: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Per target, each metric's mean over the target's label sets (`label_draws`)."""
    out = {}
    for t in targets:
        draws = [per_set[k] for k in label_draws(t, per_set)]
        out[t] = {m: float(np.mean([d[m] for d in draws])) for m in draws[0]}
    return out


def mean_rows_over_draws(
    targets: Sequence[str], keys: Sequence[str], values: np.ndarray
) -> np.ndarray:
    """`values` [S, ...] of the label sets `keys` (`draw_keys`) -> [T, ...]: per target, the mean
    over its label sets."""
    by_key = dict(zip(keys, values, strict=True))
    return np.stack([np.mean([by_key[k] for k in label_draws(t, by_key)], 0) for t in targets])


def shuffled_controls(
    fit: np.ndarray, score: np.ndarray, seed: int, draws: int = 1
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`shuffled_control` once per control draw (`control_seeds`), by label-set key."""
    return {k: shuffled_control(fit, score, s) for k, s in control_seeds(seed, draws).items()}


def shuffled_control(
    fit: np.ndarray, score: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The control task's gold of examples (not words): the fit and scored sets' own gold, each
    shuffled (whole rows) with its own stream of the run's seed."""
    return control_labels_pairs(fit, [seed, 0]), control_labels_pairs(score, [seed, 1])


def probe_row(layer: int, kind: str, target: str, metric: str, value: float) -> dict:
    return {
        "layer": layer,
        "probe": kind,
        "target": target,
        "metric": metric,
        "value": float(value),
    }


def probe_rows(kind: str, layers: Iterable[LayerScores]) -> list[dict]:
    """The rows of a `kind` probe from each layer's `LayerScores` (layer 0 first): every
    target's scores and, with both targets, the selectivity rows under target `task`; sorted
    by layer, target and metric."""
    rows = []
    for layer, (scores, selectivity) in enumerate(layers):
        rows += [probe_row(layer, kind, t, m, v) for t, s in scores.items() for m, v in s.items()]
        if "task" in scores and "control" in scores:
            task, control = scores["task"], scores["control"]
            rows += [
                probe_row(layer, kind, "task", name, task[m] - control[m])
                for name, m in selectivity.items()
            ]
    rows.sort(key=lambda r: (r["layer"], r["target"], r["metric"]))
    return rows
