"""Chance levels: what a predictor that ignores its input scores, so that a figure can draw the
line below which a score means nothing.

Per metric, for units with one class label each (a word, a pair, a sentence) out of K classes:

- ``accuracy`` and ``micro_f1`` (equal for one label per unit): the majority-class rate, the
  best a constant predictor reaches, so a line above 1/K that a skewed label set deserves;
- ``macro_f1``: the expected score of a predictor drawing one of the K classes uniformly at
  random. Class c, a share p_c of the units, gets precision p_c and recall 1/K, so
  F1_c = 2 p_c / (K p_c + 1), averaged over the K classes (the large-sample expectation);
- ``positive_micro_f1`` (relation tasks: BLURB's micro-F1 over the classes other than the
  negative one): the best constant predictor, which names one positive class c for every unit:
  n_c true positives of N predictions against P gold positives, F1 = 2 n_c / (N + P), the
  largest over c (GAD, balanced: 2/3 for predicting an association everywhere);
- ``pearson`` and ``spearman``: 0, whatever the data.

Other metrics (entity-level F1, multi-label F1, ...) have no chance value
that does not depend on how a baseline chooses its predictions: they get none, and figures
draw no line for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from bioprobe.io import read_json

__all__ = [
    "CHANCE_COLUMNS",
    "ZERO_CHANCE",
    "chance_levels",
    "chance_rows",
    "chance_value",
    "read_chance",
    "task_chance",
]

#: metrics whose chance level is 0 for any data (a predictor independent of the target)
ZERO_CHANCE = ("pearson", "spearman")
CHANCE_COLUMNS = ["task", "split", "metric", "value", "baseline"]
_BASELINES = {
    "accuracy": "majority class",
    "micro_f1": "majority class",
    "macro_f1": "uniform random class",
    "positive_micro_f1": "constant positive class",
}


def chance_levels(
    labels: Sequence[str], classes: Sequence[str], negative: str | None = None
) -> dict[str, float]:
    """Chance ``accuracy``, ``micro_f1`` and ``macro_f1`` of units with gold `labels`, each
    one of `classes` (the task's label set: a class absent from `labels` still counts in K);
    with a `negative` class (relation tasks) also ``positive_micro_f1``."""
    if not labels:
        raise ValueError("no labels to compute a chance level from")
    unknown = set(labels) - set(classes)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not among the classes {list(classes)}")
    counts = Counter(labels)
    n, k = len(labels), len(classes)
    shares = [counts[c] / n for c in classes]
    majority = max(shares)
    levels = {
        "accuracy": majority,
        "micro_f1": majority,
        "macro_f1": sum(2 * p / (k * p + 1) for p in shares) / k,
    }
    if negative is not None:
        positives = [c for c in classes if c != negative]
        gold = sum(counts[c] for c in positives)
        levels["positive_micro_f1"] = max(2 * counts[c] / (n + gold) for c in positives)
    return levels


def _single_labels(labels: Iterable) -> list[str] | None:
    """The labels when every unit has one class label (a string), else None (scores,
    label sets: no class chance level)."""
    labels = list(labels)
    return labels if labels and all(isinstance(x, str) for x in labels) else None


def chance_rows(
    task: str,
    split: str,
    units_labels: Iterable,
    classes: Sequence[str],
    negative: str | None = None,
) -> list[dict]:
    """Tidy rows (`CHANCE_COLUMNS`) of one task's split: the class metrics where its units have
    one class label each (`negative`: a relation task's negative class), and the correlation
    metrics (0) for every task."""
    rows = [
        {"task": task, "split": split, "metric": m, "value": 0.0, "baseline": "no correlation"}
        for m in ZERO_CHANCE
    ]
    labels = _single_labels(units_labels)
    if labels is not None:
        rows += [
            {"task": task, "split": split, "metric": m, "value": v, "baseline": _BASELINES[m]}
            for m, v in chance_levels(labels, classes, negative).items()
        ]
    return rows


def read_chance(table: pd.DataFrame | str | Path | None) -> pd.DataFrame | None:
    """The chance table (a DataFrame or its TSV), None when absent."""
    if table is None:
        return None
    df = pd.read_csv(table, sep="\t") if isinstance(table, (str, Path)) else table
    missing = [c for c in CHANCE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"the chance table lacks columns {missing} (has {list(df.columns)})")
    return df


def chance_value(chance: pd.DataFrame | None, task: str, split: str, metric: str) -> float | None:
    """The chance level of `metric` for `task` on `split`; None where there is none."""
    if metric in ZERO_CHANCE:
        return 0.0
    if chance is None:
        return None
    hit = chance[
        (chance["task"] == task) & (chance["split"] == split) & (chance["metric"] == metric)
    ]
    return float(hit["value"].iloc[0]) if len(hit) else None


def task_chance(
    dumps: Mapping[str, str | Path], labels_files: Mapping[str, str | Path], splits: Sequence[str]
) -> pd.DataFrame:
    """The chance table of every task: per task, its units on each of `splits` read from a dump
    (``{split}.units.json``; a split the dump lacks is skipped) and its classes from
    ``labels.json``."""
    from bioprobe.analysis.dumpio import units_file

    rows = []
    for task in sorted(dumps):
        info = read_json(labels_files[task])
        classes, negative = info.get("labels", []), info.get("negative_label")
        for split in splits:
            path = Path(dumps[task]) / units_file(split)
            if path.is_file():  # units without class labels (scores) get the zero rows only
                labels = read_json(path).get("labels", [])
                rows += chance_rows(task, split, labels, classes, negative)
    return pd.DataFrame(rows, columns=CHANCE_COLUMNS)
