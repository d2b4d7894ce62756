"""The experiment grid: which (task, model, method, size, seed) combinations a config asks for,
and the artifact paths they map to. Used by the Snakefile's targets and by the collectors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

ID_PATTERN = "[a-z0-9][a-z0-9-]*"
PRETRAINED = "pretrained"
RANDOM_INIT = "random-init"
#: an instruction-tuned model is tuned once from the published weights; a scratch model's
#: weights are built per task (on its corpus), so its instruction runs are per task too
PUBLISHED = "published"
#: joins an instruction method and the prompting method that evaluates its model (no id has it)
INSTRUCTED = "+"


class _Keyed:
    """A run's wildcards by name (`path` fills a template with them)."""

    @property
    def key(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclasses.dataclass(frozen=True, order=True)
class Run(_Keyed):
    """One trained (or untrained, size 0) model: the unit of evaluation."""

    task: str
    model: str
    method: str
    size: int
    seed: int


def training_methods(config: Mapping[str, Any]) -> list[str]:
    """The method ids that fine-tune on each task (every kind but prompting and instruction),
    in config order."""
    return [
        m for m, entry in config["methods"].items()
        if _kind(entry).trains and not _kind(entry).tunes_instructions
    ]  # fmt: skip


def prompting_methods(config: Mapping[str, Any]) -> list[str]:
    """The method ids that prompt (kind prompting): size-0 runs, evaluation only."""
    return [m for m, entry in config["methods"].items() if not _kind(entry).trains]


def instruction_methods(config: Mapping[str, Any]) -> list[str]:
    """The method ids that tune on the instruction set (kind instruction)."""
    return [m for m, entry in config["methods"].items() if _kind(entry).tunes_instructions]


def _kind(entry: Mapping[str, Any]) -> Any:
    from bioprobe import methods  # imports this module

    return methods.get(entry["kind"])


def instructed(instruction: str, prompting: str) -> str:
    """The method of an instruction-tuned model's evaluation by a prompting method."""
    return f"{instruction}{INSTRUCTED}{prompting}"


def split_instructed(method: str) -> tuple[str, str] | None:
    """(instruction method, prompting method) of an instructed evaluation's method; None for
    any other method."""
    instruction, sep, prompting = method.partition(INSTRUCTED)
    return (instruction, prompting) if sep else None


def _trained_runs(config: Mapping[str, Any], methods: list[str]) -> Iterator[Run]:
    """All tasks x models x `methods` x non-zero sizes x seeds."""
    for task in config["tasks"]:
        for model in config["models"]:
            for method in methods:
                for size in sorted(s for s in config["sizes"] if s > 0):
                    for seed in config["seeds"]:
                        yield Run(task, model, method, size, seed)


def finetune_runs(config: Mapping[str, Any]) -> Iterator[Run]:
    """Every fine-tuning job: all tasks x models x training methods x non-zero sizes x seeds."""
    return _trained_runs(config, training_methods(config))


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


@dataclasses.dataclass(frozen=True, order=True)
class InstructionRun(_Keyed):
    """One instruction tuning: a model (from its published weights, or a scratch model's built
    on task `origin`), an instruction method, a size (percent of the set) and a seed."""

    model: str
    origin: str
    method: str
    size: int
    seed: int


def instruction_origin(config: Mapping[str, Any], task: str, model: str) -> str:
    """The weights a model's instruction tuning starts from, as analysed on `task`: the
    published ones, or a scratch model's built on `task`'s corpus."""
    return task if config["models"][model]["source"] == "scratch" else PUBLISHED


def instruction_variants(config: Mapping[str, Any]) -> Iterator[Run]:
    """Every instruction-tuned model as a variant of each task's analyses (its method: the
    instruction method's id, its size: percent of the instruction set)."""
    return _trained_runs(config, instruction_methods(config))


def instruction_run(config: Mapping[str, Any], run: Run) -> InstructionRun:
    """The instruction tuning whose model an instruction variant (or its evaluation) is."""
    method = (split_instructed(run.method) or (run.method,))[0]
    origin = instruction_origin(config, run.task, run.model)
    return InstructionRun(run.model, origin, method, run.size, run.seed)


def instruction_runs(config: Mapping[str, Any]) -> list[InstructionRun]:
    """Every instruction tuning job (one per model, not per task, but for scratch models)."""
    return sorted({instruction_run(config, run) for run in instruction_variants(config)})


def instructed_runs(config: Mapping[str, Any]) -> Iterator[Run]:
    """Every instruction-tuned model's evaluation by each prompting method on each task."""
    for run in instruction_variants(config):
        for prompting in prompting_methods(config):
            yield Run(run.task, run.model, instructed(run.method, prompting), run.size, run.seed)


def prompted_methods(config: Mapping[str, Any]) -> list[str]:
    """Every method whose scores come from prompting, not from a task head: the prompting
    methods and each instruction method evaluated by each of them (summary and figures keep
    them apart from fine-tuning)."""
    prompting = prompting_methods(config)
    instructed_ids = [instructed(i, p) for i in instruction_methods(config) for p in prompting]
    return sorted([*prompting, *instructed_ids])


def eval_runs(config: Mapping[str, Any]) -> list[Run]:
    """Every scored run: pretrained, fine-tuned, prompted, and instruction-tuned then prompted."""
    return sorted(
        [
            *pretrained_runs(config),
            *finetune_runs(config),
            *prompting_runs(config),
            *instructed_runs(config),
        ]
    )


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

#: the instruction set, validated into canonical records, and its nested subsets per seed
#: (bioprobe.instructions); the demo set the workflow writes where `instructions.source: demo`
INSTRUCTIONS_DIR = "results/instructions"
INSTRUCTIONS_JSONL = f"{INSTRUCTIONS_DIR}/records.jsonl"
INSTRUCTION_SUBSET_JSON = f"{INSTRUCTIONS_DIR}/subsets/seed{{seed}}.json"
DEMO_INSTRUCTIONS_DIR = f"{INSTRUCTIONS_DIR}/demo"
#: one instruction tuning (InstructionRun): its merged model, its checkpoints while it runs
INSTRUCT_RUN = "{model}/{origin}/{method}/size{size}/seed{seed}"
INSTRUCT_MODEL_DIR = f"results/instruct/{INSTRUCT_RUN}"
INSTRUCT_CHECKPOINT_DIR = f"results/checkpoints/instruct/{INSTRUCT_RUN}"

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


def path(template: str, run: Run | InstructionRun) -> str:
    return template.format(**run.key)
