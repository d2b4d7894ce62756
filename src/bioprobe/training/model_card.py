"""The model card (`README.md`) of a fine-tuned run directory: what the model was trained on and
how, in the Hugging Face card layout (YAML metadata, then prose), so that a directory copied
out of `results/models/` or pushed to the Hub still says where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from bioprobe.data.task_data import TaskData
from bioprobe.pipeline.jobs import JobContext
from bioprobe.settings import TrainingSettings


def model_card(
    job: JobContext,
    task: TaskData,
    method: Mapping[str, Any],
    training: TrainingSettings,
    metrics: Mapping[str, Any],
) -> str:
    """The card's text: metadata (base model, library, tags) and a description of the run."""
    kind = method.get("kind", "full")
    meta = {
        "base_model": job.spec.source,
        "library_name": "transformers" if kind == "full" else "peft",
        "tags": ["bioprobe", task.task_type, kind],
    }
    best = {k: v for k, v in metrics.items() if k.startswith("best_validation_") and v is not None}
    precision = metrics["precision"]
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {job.spec.model_id} fine-tuned on {task.root.name} with {kind}",
        "",
        "Written by bioprobe's `finetune` rule.",
        "",
        "## Training data",
        "",
        f"- task `{task.root.name}` ({task.task_type}), prepared in `{task.root}`; base model "
        f"`{job.spec.source}` loaded from `{job.location}`",
        f"- {metrics['train_examples']} training examples: {metrics['size']} % of the training "
        f"split, the nested subset of seed {metrics['seed']}",
        f"- labels: {', '.join(task.labels) if task.labels else '(a real-valued score)'}",
        "",
        "## Training procedure",
        "",
        f"- method: `{kind}` {_inline(dict(method))}",
        f"- {_inline(training.as_dict())}",
        f"- {metrics['global_steps']} optimiser steps on {metrics['device']} "
        f"({precision if isinstance(precision, str) else _inline(precision)}), "
        f"{metrics['train_runtime_s']:.0f} s, final training loss {metrics['train_loss']:.4f}",
        f"- parameters: {metrics['parameters_trainable']:,} trainable of "
        f"{metrics['parameters_total']:,}",
    ]
    if best:
        lines.append(f"- best validation score: {_inline(best)}")
    lines += [
        "",
        "The loss history is in `trainer_state.json`, the scores in `train_metrics.json` and the "
        "run's evaluation JSON (`results/eval/`).",
        "",
    ]
    return "\n".join(lines)


def _inline(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if k != "kind")
