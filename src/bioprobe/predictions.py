"""A run's per-example predictions, from which every downstream score can be recomputed.

The job that scores a run (`finetune`, or `evaluate` for the published model) writes them next
to the evaluation JSON, as ``results/eval/RUN.predictions.json`` (`grid.PREDICTIONS_JSON`):
the run's key columns, ``task_type``, ``labels`` (the task's label set: PICO's classes, the
relation's negative class, the multilabel columns) and, per scored split, a row per example in
the split's order: ``index``, ``id``, ``gold``, ``predicted`` (`TaskType.prediction_rows`:
label names for pair and relation tasks, tag lists per sentence for NER and PICO, with words
cut off by ``max_length`` predicted ``O``; label sets and the ``document`` for multilabel
tasks; real scores for similarity). `rescore` recomputes the evaluation JSON's scores from the
file alone; `score_intervals` gives the bootstrap confidence intervals of its test scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioprobe import tasks
from bioprobe.io import read_json
from bioprobe.settings import BootstrapSettings

#: the split whose scores are reported, and get confidence intervals
TEST = "test"


def predictions_record(
    task_type: str, labels: Sequence[str], rows: Mapping[str, Sequence[dict]]
) -> dict[str, Any]:
    """The file's content besides the key columns: `rows` per split, numbered."""
    return {
        "task_type": task_type,
        "labels": list(labels),
        "splits": {
            split: [{"index": i, **row} for i, row in enumerate(split_rows)]
            for split, split_rows in rows.items()
        },
    }


def _record(predictions: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    return read_json(predictions) if isinstance(predictions, str | Path) else predictions


def rescore(predictions: Mapping[str, Any] | str | Path) -> dict[str, dict[str, float]]:
    """Each split's scores, recomputed from a predictions file (or its content)."""
    record = _record(predictions)
    task = tasks.get(record["task_type"])
    return {
        split: task.score_rows(record["labels"], rows) for split, rows in record["splits"].items()
    }


def score_intervals(
    predictions: Mapping[str, Any] | str | Path,
    settings: BootstrapSettings,
    metrics: Sequence[str] | None = None,
) -> dict[str, tuple[float, float]]:
    """The percentile bootstrap interval of each test score (`metrics`, default: every score
    of the task type), resampling the units its scores treat as independent
    (`TaskType.resampling`)."""
    from bioprobe.bootstrap import confidence_intervals

    record = _record(predictions)
    rows = record["splits"].get(TEST)
    if not rows:
        return {}
    resampling = tasks.get(record["task_type"]).resampling(record["labels"], rows)
    return confidence_intervals(resampling, settings, metrics)
