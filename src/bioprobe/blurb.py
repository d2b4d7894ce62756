"""The BLURB score (Gu et al. 2021, "Domain-specific language model pretraining for biomedical
natural language processing"): each dataset's official test score, averaged per task category,
and the macro-average of the category averages, so that a category with many datasets (NER has
five) weighs as much as one with a single dataset (sentence similarity: BIOSSES).

Which task counts, and in which category, is the config's `tasks.<id>.blurb` (null = the task
type's `blurb_category`, false = left out); its metric is `tasks.<id>.blurb_metric` (null = the
type's `blurb_metric`). `blurb_tasks` resolves both once, at planning; `blurb_table` computes the
tidy table (`tables.BLURB_COLUMNS`) from the downstream table. A run that covers only some of
BLURB's categories gets a score over those, and says so in its ``coverage`` column: such a score
is not comparable with published BLURB scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from bioprobe import tasks
from bioprobe.errors import ConfigError
from bioprobe.pipeline.tables import BLURB_COLUMNS, BLURB_KEY, sort_tidy

__all__ = ["CATEGORIES", "CONFIG_KEYS", "blurb_table", "blurb_tasks", "coverage_note"]

#: BLURB's six task categories, in the order of its leaderboard
CATEGORIES = (
    "named entity recognition",
    "PICO",
    "relation extraction",
    "sentence similarity",
    "document classification",
    "question answering",
)
#: the `tasks.<id>` keys that only say how a task counts towards BLURB (never data or training)
CONFIG_KEYS = ("blurb", "blurb_metric")
#: the rows of the table: a dataset's score, a category's mean, the BLURB score
LEVELS = ("dataset", "category", "blurb")
BLURB_NAME = "BLURB"


def _category(task_id: str, entry: Mapping[str, Any]) -> str | None:
    """The task's BLURB category (None: it does not count); an unknown one is a ConfigError."""
    given = entry.get("blurb")
    if given is False:
        return None
    category = tasks.get(entry["type"]).blurb_category if given is None else given
    if category is not None and category not in CATEGORIES:
        raise ConfigError(
            f"{category!r} is not a BLURB category (expected one of {', '.join(CATEGORIES)},"
            " or false to leave the task out)",
            f"tasks.{task_id}.blurb",
        )
    return category


def _metric(task_id: str, entry: Mapping[str, Any]) -> str:
    metric = entry.get("blurb_metric") or tasks.get(entry["type"]).blurb_metric
    if metric is None:
        raise ConfigError(
            f"task type {entry['type']!r} has no official BLURB metric: name the downstream"
            " metric to score this task by",
            f"tasks.{task_id}.blurb_metric",
        )
    return metric


def blurb_tasks(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``{task id: {"category": ..., "metric": ...}}`` for every task that counts towards BLURB,
    key-sorted; a bad `blurb` or a missing `blurb_metric` is a ConfigError naming the key."""
    out = {}
    for task_id in sorted(config["tasks"]):
        entry = config["tasks"][task_id]
        category = _category(task_id, entry)
        if category is not None:
            out[task_id] = {"category": category, "metric": _metric(task_id, entry)}
    return out


# --- the table ---


def _dataset_rows(
    downstream: pd.DataFrame, spec: Mapping[str, Mapping[str, str]], split: str
) -> pd.DataFrame:
    """Each BLURB task's official metric on `split`, one row per run."""
    frames = []
    for task_id, entry in spec.items():
        rows = downstream[(downstream["task"] == task_id) & (downstream["split"] == split)]
        if rows.empty:  # not scored yet: the coverage says so
            continue
        scored = rows[rows["metric"] == entry["metric"]]
        if scored.empty:
            raise ConfigError(
                f"no {entry['metric']!r} scores on the {split} split (the task has"
                f" {', '.join(sorted(rows['metric'].unique()))}): set it to one of them",
                f"tasks.{task_id}.blurb_metric",
            )
        frames.append(
            scored.assign(
                level="dataset", category=entry["category"], name=task_id, n=1, coverage=""
            )
        )
    if not frames:
        return pd.DataFrame(columns=BLURB_COLUMNS)
    return pd.concat([f[BLURB_COLUMNS] for f in frames], ignore_index=True)


def _part_coverage(have: int, total: int, what: str, missing: list[str]) -> str:
    text = f"{have}/{total} {what}"
    return f"{text} (missing: {', '.join(missing)})" if missing else text


def _category_rows(datasets: pd.DataFrame, spec: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """Per run and category: the mean of its datasets' scores and how many of the configured
    datasets it averages."""
    configured = {c: sorted(t for t, e in spec.items() if e["category"] == c) for c in CATEGORIES}
    rows = []
    for (*key, category), g in datasets.groupby([*BLURB_KEY, "category"], sort=True):
        missing = sorted(set(configured[category]) - set(g["name"]))
        rows.append(
            {
                **dict(zip(BLURB_KEY, key, strict=True)),
                "level": "category",
                "category": category,
                "name": category,
                "metric": "mean",
                "value": g["value"].mean(),
                "n": len(g),
                "coverage": _part_coverage(len(g), len(configured[category]), "datasets", missing),
            }
        )
    return pd.DataFrame(rows)


def coverage_note(categories: Iterable[str], incomplete: Sequence[str] = ()) -> str:
    """How much of BLURB a score covers: ``6/6 categories`` or ``4/6 categories (missing:
    PICO, question answering)``, and the categories that miss some configured datasets."""
    missing = [c for c in CATEGORIES if c not in set(categories)]
    text = _part_coverage(len(CATEGORIES) - len(missing), len(CATEGORIES), "categories", missing)
    return f"{text}; incomplete: {', '.join(incomplete)}" if incomplete else text


def _blurb_rows(categories: pd.DataFrame) -> pd.DataFrame:
    """Per run: the macro-average over its categories (each category weighs the same)."""
    rows = []
    for key, g in categories.groupby(BLURB_KEY, sort=True):
        incomplete = sorted(g.loc[g["coverage"].str.contains("missing"), "category"])
        rows.append(
            {
                **dict(zip(BLURB_KEY, key, strict=True)),
                "level": "blurb",
                "category": "",
                "name": BLURB_NAME,
                "metric": "macro_mean",
                "value": g["value"].mean(),
                "n": len(g),
                "coverage": coverage_note(list(g["category"]), incomplete),
            }
        )
    return pd.DataFrame(rows)


def blurb_table(
    downstream: pd.DataFrame, spec: Mapping[str, Mapping[str, str]], split: str = "test"
) -> pd.DataFrame:
    """The BLURB table of every run (model, method, size, seed) that has downstream scores.

    `downstream`: the tidy downstream table; `spec`: `blurb_tasks` of the config. Rows
    (`tables.BLURB_COLUMNS`): ``level=dataset`` (a task's official metric, ``name`` = the task),
    ``level=category`` (the mean over the category's datasets, ``n`` of them) and
    ``level=blurb`` (the mean over the ``n`` categories); ``coverage`` says what a mean is over.
    A ValueError when no task counts or none has scores on `split`.
    """
    if not spec:
        raise ValueError("no task counts towards BLURB (every task has `blurb: false`)")
    datasets = _dataset_rows(downstream, spec, split)
    if datasets.empty:
        raise ValueError(f"no BLURB task ({', '.join(spec)}) has scores on the {split} split")
    categories = _category_rows(datasets, spec)
    out = pd.concat([datasets, categories, _blurb_rows(categories)], ignore_index=True)
    out = out.astype({"size": int, "seed": int, "n": int})
    return sort_tidy(out, BLURB_COLUMNS)
