# Validation, wildcard constraints, targets and param helpers. No rules here.
import functools
import re
import os
import sys
from pathlib import Path

# Plan-time imports of the library work from a plain checkout too; jobs import the installed
# package (`make setup` installs it into .venv).
_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from bioprobe.hub import work_offline

# Compute jobs never reach the Hub: the local download rules (rules/download.smk) fetch Hub
# models and datasets into resources/hub/ first. HF_HUB_OFFLINE=1 is set here, before anything
# imports huggingface_hub; jobs inherit it (on SLURM through sbatch --export=ALL).
work_offline()

from bioprobe import hub
from bioprobe import tasks as task_types
from bioprobe.blurb import CONFIG_KEYS as BLURB_KEYS, blurb_tasks
from bioprobe.pipeline import grid
from bioprobe.pipeline.checks import missing_task_data
from bioprobe.data import demo
from bioprobe.config import (
    DEFAULT_CONFIG_FILE,
    read_config_file,
    sorted_slice,
    training_config,
    training_key,
    validate_config,
)
from bioprobe.methods import require_supported
from bioprobe.training.distributed import (
    check_processes,
    job_processes,
    require_training_supported,
)
from bioprobe.models import resolve_model

# The config is config.yaml (the demo) or, INSTEAD of it, the files given with --configfile:
# Snakemake alone would merge them into config.yaml key by key, so the paper's grid would plan
# the demo's tasks and models too. Snakemake has read the command line's files (and --config)
# into `config` already; config.yaml is read only when there are none, checked first so that a
# missing, empty or broken one is one error naming the file (and line). `--config key=value`
# applies on top of either (Snakemake's `configfile:` puts it there).
if not workflow.overwrite_configfiles:
    read_config_file(DEFAULT_CONFIG_FILE)

    configfile: DEFAULT_CONFIG_FILE


# One clear error naming the config key, before any job is planned.
_validated = validate_config(config)
config.clear()
config.update(_validated)
# A batch must split evenly over a fine-tuning job's processes (training.processes). qlora and
# the 8-bit optimisers (training.optim) need CUDA and bitsandbytes: without them, one error now
# rather than failed jobs later. BIOPROBE_NO_CUDA_CHECK=1 lets a GPU-less SLURM login node plan
# (the jobs check again). Snakemake would cap a job of N processes at --resources gpu=M < N
# without a word (the job then fails): that is an error now too.
_gpu_limit = workflow.global_resources.get("gpu")
check_processes(config, gpus=getattr(_gpu_limit, "value", _gpu_limit))
if not os.environ.get("BIOPROBE_NO_CUDA_CHECK"):
    require_supported(config["methods"])
    require_training_supported(config)
# The tasks that count towards the BLURB score, with their category and metric: an unknown
# category or a type without a BLURB metric is one error naming the key, before any job.
BLURB_TASKS = blurb_tasks(config)

# Missing data must not stop a dry run from planning the grid (the paper's MedNLI is supplied by
# the user), but a real run stops in `onstart`, before any job, with one line per problem.
MISSING_DATA = missing_task_data(config)
for _problem in MISSING_DATA:
    print(f"bioprobe warning: {_problem}", file=sys.stderr)


onstart:
    if MISSING_DATA:
        raise SystemExit("bioprobe error: " + "\n".join(MISSING_DATA))


wildcard_constraints:
    task=grid.ID_PATTERN,
    model=grid.ID_PATTERN,
    method=grid.ID_PATTERN,
    size=r"100|[1-9]?\d",  # a percent: no size above 100, no leading zeros
    seed=r"\d+",
    split="train|validation|test",


def all_targets():
    tables = [
        "downstream",
        "probes",
        "attention_similarity",
        "representation_similarity",
        "summary",
    ]
    # a representation-similarity figure per measure, named after it (cka.png, ...)
    measures = config["cka"]["metrics"]
    figures = ["downstream", "probes", "attention_by_layer", *measures, "correlations"]
    if BLURB_TASKS:
        tables.append("blurb")
        figures.append("blurb")
    if erasure_runs():
        tables.append("erasure")
        figures.append("erasure")
    if mdl_tasks():
        figures.append("probes_mdl")
    if sweep_runs():
        tables.append("probe_sweep")
        figures.append("probe_sweep")
    if any(grid.instruction_variants(config)):  # instruction methods and a size above 0
        figures.append("instruction_tuning")
    return [
        *map(grid.table, tables),
        *map(grid.figure, figures),
        *expand(grid.figure("attention_heatmap_{task}"), task=sorted(config["tasks"])),
        *report_targets(),  # rules/report.smk: tables as HTML, attention examples
    ]


# --- params slices: each rule sees only its own part of the config, key-sorted ---


def task_slice(wildcards):
    grid.check_defined(config, wildcards)
    # how a task counts towards BLURB is no part of its data: changing it re-prepares nothing
    task = {
        k: v for k, v in config["tasks"][wildcards.task].items() if k not in BLURB_KEYS
    }
    if hub.is_hub_dataset(task):  # read from where download_dataset put it
        task = {**task, "path": hub.DATASET_DIR.format(task=wildcards.task)}
    return sorted_slice(task)


def model_slice(wildcards):
    """A model's config entry; for a local or package: model also `files_digest`, a
    checksum of its files, so that replacing one re-runs every job that reads the model
    (the params trigger). Scratch and Hub models are inputs instead (pretrained_input).
    """
    grid.check_defined(config, wildcards)
    entry = config["models"][wildcards.model]
    digest = model_files_digest(wildcards.model)
    return sorted_slice({**entry, "files_digest": digest} if digest else entry)


def training_slice(wildcards):
    grid.check_defined(config, wildcards)
    return training_config(config, wildcards.task, wildcards.model)


def method_slice(wildcards):
    return sorted_slice(config["methods"][wildcards.method])


def task_prompt_slice(wildcards):
    grid.check_defined(config, wildcards)
    return sorted_slice(config["tasks"][wildcards.task]["prompt"])


def alternatives(ids):
    """A wildcard pattern matching exactly `ids` (nothing where there are none)."""
    return "|".join(map(re.escape, ids)) or "(?!x)x"


# the prompt rule's methods, instruction_tune's, and prompt_instructed's: instruction+prompting
PROMPTING_PATTERN = alternatives(grid.prompting_methods(config))
INSTRUCTION_PATTERN = alternatives(grid.instruction_methods(config))
INSTRUCTED_PATTERN = (
    f"(?:{INSTRUCTION_PATTERN}){re.escape(grid.INSTRUCTED)}(?:{PROMPTING_PATTERN})"
)


def prompting_method_id(wildcards):
    """The prompting method of a prompt job (of an instructed evaluation: its second part)."""
    instructed = grid.split_instructed(wildcards.method)
    return instructed[1] if instructed else wildcards.method


def prompting_slice(wildcards):
    return sorted_slice(config["methods"][prompting_method_id(wildcards)])


# --- instruction tuning (rules/instructions.smk) ---


def instructions_location():
    """Where the prepare stage reads the instruction set from."""
    source = config["instructions"]["source"]
    if source == "demo":
        return grid.DEMO_INSTRUCTIONS_DIR
    if hub.is_hub_instructions(config["instructions"]):
        return hub.INSTRUCTIONS_DIR
    return source


def instructions_input(wildcards):
    """The instruction set as an input: the demo's or the download's directory, or the
    user's file or the files of their directory (a replaced file re-prepares the set).
    """
    location = instructions_location()
    if location in (grid.DEMO_INSTRUCTIONS_DIR, hub.INSTRUCTIONS_DIR):
        return location
    root = Path(location).expanduser()
    if root.is_dir():
        return sorted(
            str(p)
            for p in root.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    return str(root)


def instructions_slice(wildcards):
    """What reading the instruction set depends on (not its training overrides)."""
    entry = {k: v for k, v in config["instructions"].items() if k != "training"}
    if entry["source"] == "demo":
        entry["format"] = "json"  # the demo set is one JSON array
    return sorted_slice({**entry, "location": instructions_location()})


def instruction_training_slice(wildcards):
    grid.check_defined(config, wildcards)
    return training_config(config, None, wildcards.model)


def instruction_pretrained_location(wildcards):
    """The weights an instruction tuning starts from (a scratch model's: built on `origin`)."""
    return pretrained_location(wildcards.origin, wildcards.model)


def instruction_pretrained_input(wildcards):
    return model_input(wildcards.origin, wildcards.model)


def instructed_model_dir(wildcards):
    """The instruction-tuned model of an instruction variant or of its evaluation."""
    run = grid.Run(
        wildcards.task,
        wildcards.model,
        wildcards.method,
        int(wildcards.size),
        int(wildcards.seed),
    )
    return grid.path(grid.INSTRUCT_MODEL_DIR, grid.instruction_run(config, run))


def is_instruction(method):
    return method in grid.instruction_methods(config)


def is_adapter(method):
    from bioprobe import methods

    entry = config["methods"].get(method)
    return entry is not None and methods.get(entry["kind"]).is_adapter


def adapter_base_input(wildcards):
    """Adapters apply to the pretrained model: evaluating or dumping them reads it too."""
    return pretrained_input(wildcards) if is_adapter(wildcards.method) else []


def adapter_base_location(wildcards):
    if is_adapter(wildcards.method):
        return pretrained_location(wildcards.task, wildcards.model)
    return None


def training_threads(wildcards):
    """Half the cores of a local run: thread scaling is sublinear, so two trainings side by
    side get more done than one with every core (bench/RESULTS.md). Without --cores (a cluster
    executor) 2; the GPU and SLURM profiles set their own with set-threads."""
    cores = workflow.resource_settings.cores
    return max(1, cores // 2) if isinstance(cores, int) else 2


def finetune_threads(wildcards):
    """`training_threads`, at least one a process (training.processes: on a CPU the processes
    share the job's threads)."""
    return max(training_threads(wildcards), finetune_processes(wildcards))


def finetune_processes(wildcards):
    """A fine-tuning job's processes (training.processes; one for an adapter method under
    strategy fsdp), one per GPU: its `gpu` resource."""
    grid.check_defined(config, wildcards)
    training = training_config(config, wildcards.task, wildcards.model)
    return job_processes(
        training["processes"], training["strategy"], is_adapter(wildcards.method)
    )


# --- inputs ---


def task_source_files(wildcards):
    """The raw split files of a task that reads local files (none for a Hub dataset id)."""
    grid.check_defined(config, wildcards)
    task = config["tasks"][wildcards.task]
    if hub.is_hub_dataset(task):
        return {"hub": hub.DATASET_DIR.format(task=wildcards.task)}
    root = Path(task["path"])
    if not root.exists() and (task["format"] == "hf" or MISSING_DATA):
        return []
    return {split: str(root / name) for split, name in task["splits"].items()}


def is_scratch(model):
    return config["models"][model]["source"] == "scratch"


def pretrained_dir(task, model):
    return grid.PRETRAINED_DIR.format(task=task, model=model)


@functools.cache
def resolved_model(model):
    """The `models.<id>` entry resolved once: its source exists and, for a local or package
    model, its directory holds a tokenizer and complete safetensors files."""
    return resolve_model(model, config["models"][model])


@functools.cache
def is_hub_model(model):
    return resolved_model(model).kind == "hub"


def pretrained_location(task, model):
    """Where the published (size 0) weights of a model are loaded from."""
    if is_scratch(model):
        return pretrained_dir(task, model)
    if is_hub_model(model):
        return hub.MODEL_DIR.format(model=model)
    return resolved_model(model).location


def pretrained_input(wildcards):
    grid.check_defined(config, wildcards)
    return model_input(wildcards.task, wildcards.model)


def model_input(task, model):
    """The published weights as an input: a scratch model built on `task`, a Hub download;
    nothing for a local or package model (its files_digest param reruns its jobs)."""
    if is_scratch(model):
        return pretrained_dir(task, model)
    if is_hub_model(model):
        return hub.MODEL_DIR.format(model=model)
    return []


@functools.cache
def model_files_digest(model):
    """The checksum of a local or package model's files (None for scratch and Hub models)."""
    from bioprobe.models import model_digest

    spec = resolved_model(model)
    return model_digest(spec.location) if spec.kind in ("local", "package") else None


def check_models():
    """Before any job: every model resolves (see resolved_model), and every task's
    max_length fits its position embeddings where the model's config can be read now (a
    scratch entry, a local or package directory, a downloaded or cached Hub model). The
    jobs check again.
    """
    from bioprobe.methods import check_model_supported
    from bioprobe.models import check_max_length

    for model in sorted(config["models"]):
        spec = resolved_model(model)
        downloaded = Path(hub.MODEL_DIR.format(model=model))
        is_downloaded = spec.kind == "hub" and (downloaded / "config.json").is_file()
        where = downloaded if is_downloaded else None
        for task in sorted(config["tasks"]):
            length = training_config(config, task, model)["max_length"]
            key = training_key(config, task, model, "max_length")
            check_max_length(spec, length, key=key, location=where)
            # the family is known now for a scratch entry, or a config.json found locally
            if spec.family:
                task_type = config["tasks"][task]["type"]
                family = {"model_type": spec.family}
                check_model_supported(config["methods"], family, task_type, spec.key)


# A model that cannot load right is one error naming its config key, before any job is planned.
check_models()


def hub_model_slice(wildcards):
    """What a model download depends on (not the training settings of the entry)."""
    entry = config["models"][wildcards.model]
    return sorted_slice(
        {
            "source": entry["source"],
            "revision": entry.get("revision"),
            "allow_pickle": bool(entry.get("allow_pickle", False)),
        }
    )


def hub_dataset_slice(wildcards):
    task = config["tasks"][wildcards.task]
    return sorted_slice(
        {
            "path": task["path"],
            "hub_revision": task.get("hub_revision"),
            "splits": task["splits"],
        }
    )


def task_data(wildcards):
    task = wildcards.task
    return {
        "labels": grid.LABELS_JSON.format(task=task),
        "train": grid.split_jsonl("train", task),
        "validation": grid.split_jsonl("validation", task),
        "test": grid.split_jsonl("test", task),
    }


def eval_files(template=grid.EVAL_JSON):
    """Every scored run's evaluation JSON (or its file of another `template`)."""
    return [grid.path(template, run) for run in grid.eval_runs(config)]


# --- analysis variants: pretrained, random-init (size 0) and every fine-tuned run ---


def variant_runs():
    """Every model the analyses read: fine-tuned, instruction-tuned, pretrained, random-init."""
    runs = [*grid.finetune_runs(config), *grid.instruction_variants(config)]
    for task in config["tasks"]:
        for model in config["models"]:
            for seed in config["seeds"]:
                runs.append(grid.Run(task, model, grid.PRETRAINED, 0, seed))
                if config["random_init"]:
                    runs.append(grid.Run(task, model, grid.RANDOM_INIT, 0, seed))
    return sorted(set(runs))


def erasure_runs():
    """Fine-tuned runs, whose layers are erased (erasure.enabled, its sizes and seeds); an
    instruction-tuned model has no task head whose score could drop."""
    erasure = config["erasure"]
    if not erasure["enabled"]:
        return []
    sizes, seeds = erasure["sizes"], erasure["seeds"]
    return [
        r
        for r in grid.finetune_runs(config)
        if (sizes is None or r.size in sizes) and (seeds is None or r.seed in seeds)
    ]


def sweep_runs():
    """Variants whose linear probe is swept (probe_sweep: enabled, its sizes), of the tasks
    whose type has one (`sweep_probe`)."""
    sweep = config["probe_sweep"]
    if not sweep["enabled"]:
        return []
    sizes = sweep["sizes"]
    return [
        r
        for r in variant_runs()
        if task_type(r.task).sweep_probe and (sizes is None or r.size in sizes)
    ]


def compared_runs():
    """Variants compared against pretrained (attention and representation similarity)."""
    return [r for r in variant_runs() if r.method != grid.PRETRAINED]


def dump_model_input(wildcards):
    if wildcards.method in (grid.PRETRAINED, grid.RANDOM_INIT):
        return pretrained_input(wildcards)
    return dump_model_location(wildcards)


def dump_model_location(wildcards):
    if wildcards.method in (grid.PRETRAINED, grid.RANDOM_INIT):
        return pretrained_location(wildcards.task, wildcards.model)
    if is_instruction(wildcards.method):
        return instructed_model_dir(wildcards)
    return grid.MODEL_DIR.format(**wildcards)


def dump_output(pattern):
    """With keep_dumps: false a dump is temp(): deleted once every job that reads it has run."""
    out = directory(pattern)
    return out if config["keep_dumps"] else temp(out)


def extract_slice(wildcards):
    """Everything a dump depends on, and nothing else (probe kinds do not re-run dumps)."""
    training = training_config(config, wildcards.task, wildcards.model)
    probe = config["probe"]
    splits = {probe["fit_split"], probe["score_split"], config["attention"]["split"]}
    splits.add(config["cka"]["split"])
    return sorted_slice(
        {
            **config["extract"],
            "max_length": training["max_length"],
            "pair_truncation": training["pair_truncation"],
            "splits": sorted(splits),
            "attention_split": config["attention"]["split"],
            "attention_max_examples": config["attention"]["max_examples"],
        }
    )


def probe_slice(wildcards):
    return sorted_slice(config["probe"])


def sweep_probe_slice(wildcards):
    """What a sweep reads of `probe:`: its splits, labels and linear probe."""
    keys = ("fit_split", "score_split", "label_mode", "pair_mode", "linear")
    return sorted_slice({k: config["probe"][k] for k in keys})


def sweep_slice(wildcards):
    """The settings swept (not which variants are: `sizes`, `enabled` plan the jobs)."""
    return sorted_slice({k: config["probe_sweep"][k] for k in ("C", "rank")})


def pretrained_dump(wildcards):
    return grid.DUMP_DIR.format(**{**wildcards, "method": grid.PRETRAINED, "size": 0})


def attention_inputs(wildcards):
    inputs = {"dump": grid.DUMP_DIR.format(**wildcards)}
    if wildcards.method != grid.PRETRAINED:
        inputs["reference"] = pretrained_dump(wildcards)
    return inputs


def analysis_files(template, runs):
    return [grid.path(template, run) for run in runs]


# --- headline metrics: each task's from its type (tasks.get(type).main_metric, probe_metric) ---


def task_type(task):
    return task_types.get(config["tasks"][task]["type"])


def main_metrics():
    """Each task's headline downstream score (figures, summary, correlations)."""
    return {task: task_type(task).main_metric for task in sorted(config["tasks"])}


def probe_metrics():
    """Each task's headline probe score."""
    return {task: task_type(task).probe_metric for task in sorted(config["tasks"])}


def downstream_figure_metrics():
    """The downstream figure's panels per task: the headline metric, the task's BLURB metric
    where it differs (`tasks.<id>.blurb_metric`, else its type's), then its type's others.
    """
    out = {}
    for task in sorted(config["tasks"]):
        kind = task_type(task)
        blurb_metric = config["tasks"][task].get("blurb_metric") or kind.blurb_metric
        out[task] = list(
            dict.fromkeys(
                m for m in (kind.main_metric, blurb_metric, *kind.figure_metrics) if m
            )
        )
    return out


def summary_options(wildcards):
    """The summary and the correlations read each task's headline downstream metric and the
    first configured probe kind's score in the task's probe metric."""
    return {
        "probe": config["probe"]["kinds"][0],
        "main_metrics": main_metrics(),
        "probe_metrics": probe_metrics(),
    }


def mdl_tasks():
    """The tasks with MDL rows (`probe.mdl`, where the task type's targets are classes)."""
    if not config["probe"]["mdl"]:
        return []
    return [task for task in sorted(config["tasks"]) if task_type(task).mdl_probe]


def probe_figure_options(wildcards):
    return {
        "probe": config["probe"]["kinds"][0],
        "metric": probe_metrics(),
        "split": config["probe"]["score_split"],
    }


def probe_sweep_figure_options(wildcards):
    """Each task's probe metric, the default the sweeps pass through (probe.linear.C), and the
    split the probes are scored on."""
    return {
        "metric": probe_metrics(),
        "default_C": config["probe"]["linear"]["C"],
        "split": config["probe"]["score_split"],
    }


def downstream_figure_options(wildcards):
    """Each task's metrics, the bootstrap level (named in the title) and the prompting
    method ids (drawn as levels, not lines over sizes)."""
    confidence = config["statistics"]["bootstrap"]["confidence"]
    return {
        "metrics": downstream_figure_metrics(),
        "confidence": confidence,
        "prompting": grid.prompted_methods(config),
    }


def instruction_figure_options(wildcards):
    """The instruction methods, the first probe kind and each task's probe metric, the
    attention and representation measures drawn (the first configured)."""
    return {
        "instruction_methods": grid.instruction_methods(config),
        "probe": config["probe"]["kinds"][0],
        "metric": probe_metrics(),
        "attention_metric": "cosine",
        "similarity": config["cka"]["metrics"][0],
        "split": config["probe"]["score_split"],
    }


def blurb_slice(wildcards):
    """Each BLURB task's category and official metric (bioprobe.blurb.blurb_tasks)."""
    return sorted_slice(BLURB_TASKS)


# --- the report: every result carries one label (the report lists them as a table); figures sit
# in their analysis' category, tables in "Tables" as a pair of the TSV and its HTML rendering
# (the report's format toggle switches between the two) ---


def report_tables():
    """The collected tables the report holds, each as TSV and HTML."""
    names = [
        "downstream",
        "probes",
        "attention_similarity",
        "representation_similarity",
        "internal_measures",
        "correlations",
        "summary",
        "chance",
    ]
    names += ["blurb"] if BLURB_TASKS else []
    names += ["probe_sweep"] if sweep_runs() else []
    return names + ["erasure"] if erasure_runs() else names


def table_caption(wildcards):
    """The caption file of a collected table (report/<name>_table.rst)."""
    stem = {"attention_similarity": "attention"}.get(wildcards.name, wildcards.name)
    return str(Path(workflow.basedir) / "report" / f"{stem}_table.rst")


def table_report(name, caption):
    """A collected TSV flagged for the report: under Tables, its format toggle at TSV."""
    return report(
        grid.table(name),
        category="Tables",
        caption=caption,
        labels={"table": name, "format": "TSV"},
    )


def figure_report(path, category, caption, label):
    return report(path, category=category, caption=caption, labels={"figure": label})


# --- chance levels: from each task's units in its first model's pretrained dump ---


def chance_dumps():
    model, seed = sorted(config["models"])[0], config["seeds"][0]
    return [
        grid.path(grid.DUMP_DIR, grid.Run(task, model, grid.PRETRAINED, 0, seed))
        for task in sorted(config["tasks"])
    ]


def chance_splits():
    """The probes' score split and the downstream figure's (test)."""
    return sorted({config["probe"]["score_split"], "test"})


# --- attention examples: one fine-tuned variant per task and model against pretrained ---


def example_run(task, model):
    """The variant whose attention examples are drawn: the first method, the largest
    training size, the first seed (the largest change fine-tuning made, reproducibly).
    """
    method = grid.training_methods(config)[0]
    size = max(s for s in config["sizes"] if s > 0)
    return grid.Run(task, model, method, size, config["seeds"][0])


def example_dumps(wildcards):
    run = example_run(wildcards.task, wildcards.model)
    pretrained = grid.Run(run.task, run.model, grid.PRETRAINED, 0, run.seed)
    return {
        "pretrained": grid.path(grid.DUMP_DIR, pretrained),
        "finetuned": grid.path(grid.DUMP_DIR, run),
    }


def example_variant(wildcards):
    run = example_run(wildcards.task, wildcards.model)
    return f"{run.method} {run.size}% seed {run.seed}"


def report_targets():
    """What the report adds to the pipeline's targets: the tables as HTML, the chance levels
    and, where there is a fine-tuned variant, the attention examples and head views."""
    targets = [grid.table(name, "html") for name in report_tables()]
    fine_tuned = any(s > 0 for s in config["sizes"]) and grid.training_methods(config)
    if fine_tuned and config["attention"]["max_examples"] > 0:
        pairs = [
            (t, m) for t in sorted(config["tasks"]) for m in sorted(config["models"])
        ]
        for task, model in pairs:
            targets.append(grid.figure(f"attention_examples/{task}/{model}"))
            targets.append(grid.figure(f"attention_view/{task}/{model}", "html"))
    return targets


def model_shape(model):
    """Layers, width and heads of a model where its config can be read now (a scratch entry,
    a local or downloaded config.json, the Hub cache); None otherwise."""
    from bioprobe.analysis.disk import ModelShape, model_shape as shape_of
    from bioprobe.models import read_model_config

    spec = resolved_model(model)
    if spec.kind == "scratch":
        s = spec.scratch
        return ModelShape(s["num_layers"], s["hidden_size"], s["num_heads"])
    downloaded = Path(hub.MODEL_DIR.format(model=model))
    where = downloaded if (downloaded / "config.json").is_file() else None
    model_config = read_model_config(spec, where)
    return shape_of(model_config) if model_config else None


def dump_disk_estimate():
    """The disk the grid's dumps will take (bioprobe.analysis.disk), printed at planning."""
    from collections import Counter

    from bioprobe.analysis.disk import estimate_config

    counts = Counter((r.task, r.model) for r in variant_runs())
    shapes = {m: model_shape(m) for m in config["models"]}
    return estimate_config(config, counts, shapes, grid.TASK_DIR)


# Before a run starts (and in a dry run), the dumps' disk: a user sees it before a full disk.
if workflow.is_main_process:
    print(f"bioprobe: {dump_disk_estimate().summary()}", file=sys.stderr)
