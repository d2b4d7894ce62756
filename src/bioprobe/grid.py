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


def finetune_runs(config: Mapping[str, Any]) -> Iterator[Run]:
    """Every fine-tuning job: all tasks x models x methods x non-zero sizes x seeds."""
    for task in config["tasks"]:
        for model in config["models"]:
            for method in config["methods"]:
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


def eval_runs(config: Mapping[str, Any]) -> list[Run]:
    return sorted([*pretrained_runs(config), *finetune_runs(config)])


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


MODEL_DIR = "results/models/{task}/{model}/{method}/size{size}/seed{seed}"
EVAL_JSON = "results/eval/{task}/{model}/{method}/size{size}/seed{seed}.json"
DUMP_DIR = "results/dumps/{task}/{model}/{method}/size{size}/seed{seed}"
PROBE_TSV = "results/probes/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
ATTENTION_TSV = "results/attention/{task}/{model}/{method}/size{size}/seed{seed}.tsv"
CKA_TSV = "results/cka/{task}/{model}/{method}/size{size}/seed{seed}.tsv"


def path(template: str, run: Run) -> str:
    return template.format(**run.key)
