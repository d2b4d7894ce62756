"""Downstream evaluation: predictions on the validation and test splits, scored per task type.

NER predictions are read at the first sub-token of each word; words cut off by `max_length`
are predicted `O` (and counted), so gold entities are never dropped from the denominator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from bioprobe.io import write_json
from bioprobe.methods import load_trained
from bioprobe.metrics import classification_scores, ner_scores
from bioprobe.models import ModelSpec, load_tokenizer_for
from bioprobe.seeding import seed_everything
from bioprobe.training.features import FeatureSet, build_features, log_truncation
from bioprobe.training.task_data import TaskData, make_collator

log = logging.getLogger("bioprobe.evaluate")

SPLITS = ("validation", "test")  # model selection, then the reported score


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def predict(model, tokenizer, task_type: str, fs: FeatureSet, batch_size: int) -> list:
    """Class ids per example (pairs) or per kept word (NER), in the order of `fs.features`.

    Batches are formed from length-sorted examples so padding stays minimal.
    """
    order = sorted(range(len(fs.features)), key=lambda i: fs.features[i]["length"])
    collate = make_collator(task_type, tokenizer)
    feats = [{k: v for k, v in fs.features[i].items() if k != "length"} for i in order]
    loader = DataLoader(feats, batch_size=batch_size, collate_fn=collate)
    model.eval().to(device())
    out: list = [None] * len(order)
    pos = 0
    for batch in loader:
        labels = batch.pop("labels")
        logits = model(**{k: v.to(device()) for k, v in batch.items()}).logits.cpu()
        if task_type == "ner":  # prompt methods: the real tokens are the last positions
            logits = logits[:, logits.shape[1] - labels.shape[1] :]
        pred = logits.argmax(-1)
        for row in range(pred.shape[0]):
            i = order[pos]
            if task_type == "ner":
                out[i] = pred[row][labels[row] != -100].tolist()
            else:
                out[i] = int(pred[row])
            pos += 1
    return out


def score_split(
    task_type: str, labels: Sequence[str], records: Sequence[dict], predicted: list
) -> dict[str, float]:
    if task_type == "ner":
        gold = [r["tags"] for r in records]
        pred = [
            [labels[t] for t in ids] + ["O"] * (len(r["tags"]) - len(ids))
            for r, ids in zip(records, predicted, strict=True)
        ]
        return ner_scores(gold, pred)
    return classification_scores([r["label"] for r in records], [labels[i] for i in predicted])


def score_model(
    model, tokenizer, task: TaskData, training: dict, splits: Sequence[str] = SPLITS
) -> dict:
    """Scores and truncation counts of a loaded model on `splits` of a task."""
    scores, truncation = {}, {}
    for split in splits:
        records = task.split(split)
        fs = build_features(task.task_type, records, tokenizer, task.labels, training)
        predicted = predict(model, tokenizer, task.task_type, fs, training["eval_batch_size"])
        scores[split] = score_split(task.task_type, task.labels, records, predicted)
        truncation[split] = fs.stats()
        log_truncation(split, fs, training["max_length"])
        log.info("%s: %s", split, {k: round(v, 4) for k, v in scores[split].items()})
    return {"scores": scores, "truncation": truncation}


def evaluate(
    *,
    task_dir: str | Path,
    model_location: str,
    spec: ModelSpec,
    training: dict,
    seed: int,
    splits: Sequence[str] = SPLITS,
    base_location: str | None = None,
) -> dict:
    """Scores of a fine-tuned model (or of a pretrained one with a seeded, untrained head).

    `base_location`: the pretrained model that adapters (lora, prompt tuning, ...) apply to.
    """
    task = TaskData(task_dir)
    seed_everything(seed)  # a pretrained model's fresh head is random: make it reproducible
    tokenizer = load_tokenizer_for(spec, model_location)
    model, _ = load_trained(
        model_location, task.task_type, task.labels, spec=spec, base_location=base_location
    )
    return score_model(model, tokenizer, task, training, splits)


def write_evaluation(path: str | Path, key: dict, result: dict) -> None:
    """The per-run evaluation JSON that `collect_downstream` reads: the run's key columns
    (`bioprobe.tables.key_of`) and the scores."""
    write_json(path, {**key, **result})
