"""Downstream evaluation: predictions on the validation and test splits, scored the way the
task type scores them (`TaskType.batch_predictions`, `TaskType.score`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from bioprobe import tasks
from bioprobe.data.task_data import TaskData
from bioprobe.io import write_json
from bioprobe.methods import load_trained
from bioprobe.models import load_tokenizer_for
from bioprobe.pipeline.jobs import JobContext
from bioprobe.predictions import predictions_record
from bioprobe.seeding import seed_everything
from bioprobe.settings import TrainingSettings
from bioprobe.training.features import FeatureSet, build_features, log_truncation, make_collator

log = logging.getLogger("bioprobe.evaluate")

SPLITS = ("validation", "test")  # model selection, then the reported score


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sorted_batches(fs: FeatureSet, task_type: str, tokenizer, batch_size: int):
    """`(indices, batch)` of collated batches formed from length-sorted examples (little
    padding); `indices` are the examples' positions in `fs.features`."""
    order = sorted(range(len(fs.features)), key=lambda i: fs.features[i]["length"])
    collate = make_collator(task_type, tokenizer)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, collate([_without_length(fs.features[i]) for i in indices])


def _without_length(feature: dict) -> dict:
    return {k: v for k, v in feature.items() if k != "length"}


@torch.inference_mode()
def predict(model, tokenizer, task_type: str, fs: FeatureSet, batch_size: int) -> list:
    """Class ids per example (pairs) or per kept word (NER), in the order of `fs.features`."""
    model.eval().to(device())
    task = tasks.get(task_type)
    out: list = [None] * len(fs.features)
    for indices, batch in sorted_batches(fs, task_type, tokenizer, batch_size):
        labels = batch.pop("labels")
        logits = model(**{k: v.to(device()) for k, v in batch.items()}).logits.cpu()
        for i, predicted in zip(indices, task.batch_predictions(logits, labels), strict=True):
            out[i] = predicted
    return out


def score_split(
    task_type: str, labels: Sequence[str], records: Sequence[dict], predicted: list
) -> dict[str, float]:
    return tasks.get(task_type).score(labels, records, predicted)


def score_model(
    model, tokenizer, task: TaskData, training: TrainingSettings, splits: Sequence[str] = SPLITS
) -> dict:
    """Scores and truncation counts of a loaded model on `splits` of a task, and under
    ``"predictions"`` the per-example rows they are computed from (`bioprobe.predictions`)."""
    scores, truncation, rows = {}, {}, {}
    for split in splits:
        records = task.split(split)
        fs = build_features(task.task_type, records, tokenizer, task.labels, training)
        predicted = predict(model, tokenizer, task.task_type, fs, training.eval_batch_size)
        rows[split] = task.type.prediction_rows(task.labels, records, predicted)
        scores[split] = task.type.score_rows(task.labels, rows[split])
        warn_single_prediction(task, split, predicted)
        truncation[split] = fs.stats()
        log_truncation(split, fs, training.max_length)
        log.info("%s: %s", split, {k: round(v, 4) for k, v in scores[split].items()})
    predictions = predictions_record(task.task_type, task.labels, rows)
    return {"scores": scores, "truncation": truncation, "predictions": predictions}


#: why a model predicts one label for every unit, and what may help
NOT_LEARNED = (
    "it has not learned the task (more training data, more epochs or a higher learning rate "
    "may help)"
)


def warn_single_prediction(
    task: TaskData, split: str, predicted: list, why: str = NOT_LEARNED
) -> None:
    only = task.type.single_prediction(task.labels, predicted)
    if only is not None:
        log.warning("%s: the model predicts %r for every %s: %s", split, only, task.type.unit, why)


def evaluate(job: JobContext, training: TrainingSettings, splits: Sequence[str] = SPLITS) -> dict:
    """Scores of `job`'s model: a fine-tuned run (its adapters on `job.base_location`), or a
    pretrained model with a head drawn from the job's seed."""
    # a Hub model downloaded in this run had no config to check at planning
    job.check_max_length(training.max_length)
    model, tokenizer = load_job_model(job)
    return score_model(model, tokenizer, job.task(), training, splits)


def load_job_model(job: JobContext):
    """`(model, tokenizer)` of `job`'s run with its task head, seeded by the job's seed (a
    pretrained model's fresh head is random: this makes it reproducible)."""
    task = job.task()
    seed_everything(job.seed)
    tokenizer = load_tokenizer_for(job.spec)
    model, _ = load_trained(
        job.location,
        task.task_type,
        task.labels,
        spec=job.spec,
        base_location=job.base_location,
        tokenizer=tokenizer,  # loaded once: it also sets the model's pad token id
    )
    return model, tokenizer


def write_evaluation(
    path: str | Path, predictions_path: str | Path, key: dict, result: dict
) -> None:
    """The per-run evaluation JSON that `collect_downstream` reads (the run's key columns,
    `bioprobe.pipeline.tables.key_of`, and the scores) and the predictions file beside it."""
    result = dict(result)
    write_json(predictions_path, {**key, **result.pop("predictions")})
    write_json(path, {**key, **result})
