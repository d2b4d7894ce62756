"""The experiment grid: which (task, model, method, size, seed) combinations a config asks for,
and the artifact paths they map to. Used by the Snakefile's targets and by the collectors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ID_PATTERN = "[a-z0-9][a-z0-9-]*"
PRETRAINED = "pretrained"
RANDOM_INIT = "random-init"


@dataclass(frozen=True, order=True)
class Run:
    """One trained (or untrained, size 0) model: the unit of evaluation."""

    task: str
    model: str
    method: str
    size: int
    seed: int

    @property
    def key(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "method": self.method,
            "size": self.size,
            "seed": self.seed,
        }


def training_methods(config: Mapping[str, Any]) -> list[str]:
    """The method ids that train (every kind but prompting), in config order."""
    return [m for m, entry in config["methods"].items() if _trains(entry)]


def prompting_methods(config: Mapping[str, Any]) -> list[str]:
    """The method ids that prompt (kind prompting): size-0 runs, evaluation only."""
    return [m for m, entry in config["methods"].items() if not _trains(entry)]


def _trains(entry: Mapping[str, Any]) -> bool:
    from bioprobe import methods  # imports this module

    return methods.get(entry["kind"]).trains


def finetune_runs(config: Mapping[str, Any]) -> Iterator[Run]:
    """Every fine-tuning job: all tasks x models x training methods x non-zero sizes x seeds."""
    for task in config["tasks"]:
        for model in config["models"]:
            for method in training_methods(config):
                for size in sorted(s for s in config["sizes"] if s > 0):
                    for seed in config["seeds"]:
                        yield Run(task, model, method, size, seed)


def pretrained_runs(config: Mapping[str, Any]) -> Iterator[Run]:
    """Size 0: the model as published (with a seeded, untrained task head)."""
    if 0 not in config["sizes"]:
        return
    for task in config["tasks"]:
        for model in config["models"]:
            for seed in config["seeds"]:
                yield Run(task, model, PRETRAINED, 0, seed)


def prompting_runs(config: Mapping[str, Any]) -> Iterator[Run]:
    """Every prompting method's evaluation: all tasks x models x seeds (the seed draws the
    demonstrations), at size 0: nothing is trained."""
    for task in config["tasks"]:
        for model in config["models"]:
            for method in prompting_methods(config):
                for seed in config["seeds"]:
                    yield Run(task, model, method, 0, seed)


def eval_runs(config: Mapping[str, Any]) -> list[Run]:
    """Every scored run: pretrained, fine-tuned and prompted."""
    return sorted([*pretrained_runs(config), *finetune_runs(config), *prompting_runs(config)])


def check_defined(config: Mapping[str, Any], wildcards: Any) -> None:
    """A requested path that names a task or model the config does not define is one clear
    error naming the config key, not a KeyError from deep inside an input function."""
    from bioprobe.errors import ConfigError

    for kind in ("task", "model"):
        value = getattr(wildcards, kind, None)
        defined = config[f"{kind}s"]
        if value is not None and value not in defined:
            raise ConfigError(
                f"{kind} {value!r} is referenced (by a requested output path) but not defined; "
                f"defined {kind}s: {', '.join(sorted(defined))}",
                f"{kind}s.{value}",
            )


# --- artifact paths: every rule, collector and test builds them from these templates ---

#: one run's place under every per-run stage (results, logs, benchmarks)
RUN = "{task}/{model}/{method}/size{size}/seed{seed}"

#: a prepared task: canonical splits, labels, nested training subsets (bioprobe.data.prepare)
TASK_DIR = "results/data/{task}"
LABELS_JSON = f"{TASK_DIR}/labels.json"
SPLIT_JSONL = f"{TASK_DIR}/{{split}}.jsonl"
SUBSET_JSON = f"{TASK_DIR}/subsets/seed{{seed}}.json"
#: a scratch model's untrained weights, built on the task's training corpus
PRETRAINED_DIR = "results/pretrained/{task}/{model}"

MODEL_DIR = f"results/models/{RUN}"
CHECKPOINT_DIR = f"results/checkpoints/{RUN}"
EVAL_JSON = f"results/eval/{RUN}.json"
#: the per-example predictions every score of EVAL_JSON is computed from (bioprobe.predictions)
PREDICTIONS_JSON = f"results/eval/{RUN}.predictions.json"
DUMP_DIR = f"results/dumps/{RUN}"
PROBE_TSV = f"results/probes/{RUN}.tsv"
PROBE_SWEEP_TSV = f"results/probe_sweep/{RUN}.tsv"
ATTENTION_TSV = f"results/attention/{RUN}.tsv"
ERASURE_TSV = f"results/erasure/{RUN}.tsv"
REPRESENTATION_SIMILARITY_TSV = f"results/representation_similarity/{RUN}.tsv"

#: the collected tables and the figures (downloads: bioprobe.hub.MODEL_DIR, DATASET_DIR)
TABLE = "results/tables/{name}.{ext}"
FIGURE = "results/figures/{name}.{ext}"


def split_jsonl(split: str, task: str = "{task}") -> str:
    """One canonical split of a prepared task (by default still a `{task}` pattern)."""
    return SPLIT_JSONL.format(task=task, split=split)


def table(name: str, ext: str = "tsv") -> str:
    return TABLE.format(name=name, ext=ext)


def figure(name: str, ext: str = "png") -> str:
    return FIGURE.format(name=name, ext=ext)


def log(stage: str, pattern: str | None = None) -> str:
    """A job's log: ``logs/<stage>/<pattern>.log``, or ``logs/<stage>.log`` for a one-job stage."""
    return f"logs/{stage}/{pattern}.log" if pattern else f"logs/{stage}.log"


def benchmark(stage: str, pattern: str | None = None) -> str:
    """A job's benchmark: ``benchmarks/<stage>/<pattern>.tsv`` (``benchmarks/<stage>.tsv``)."""
    return f"benchmarks/{stage}/{pattern}.tsv" if pattern else f"benchmarks/{stage}.tsv"


def path(template: str, run: Run) -> str:
    return template.format(**run.key)
