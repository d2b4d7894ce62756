"""Config validation against the strict schema, with defaults filled in, and the per-rule slices.

Validation happens at DAG time (from rules/common.smk) so a wrong key or type is one clear error
before any job starts. Slices are key-sorted so that Snakemake's params trigger re-runs exactly
the stages whose slice changed, whatever the key order in the YAML.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from bioprobe import tasks
from bioprobe.errors import ConfigError
from bioprobe.methods import check_method_ids, normalise_methods

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
#: the workflow's config when no --configfile is given (relative to the working directory)
DEFAULT_CONFIG_FILE = "config.yaml"


def read_config_file(path: str | Path) -> dict:
    """The top-level mapping of a YAML (or JSON) config file.

    A missing, unreadable, empty or invalid file is one ConfigError naming the file, and for a
    YAML error its line and column, before anything reads a key.
    """
    name = f"config file '{path}'"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name} not found (in {Path.cwd()})") from None
    except IsADirectoryError:
        raise ConfigError(f"{name} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{name} cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}{_yaml_problem(exc)}") from None
    if data is None:
        raise ConfigError(f"{name} is empty")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}: the top level must be a mapping of config keys (tasks:, models:, ...),"
            f" not a {type(data).__name__}"
        )
    return data


def _at(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`, line L, column C: not valid YAML (problem; context from line L, column C)`."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem or mark is None:
        return f": not valid YAML ({' '.join(str(exc).split())})"
    detail = problem
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        detail += f"; {context} from {_at(context_mark)}"
    return f", {_at(mark)}: not valid YAML ({' '.join(detail.split())})"


def _with_defaults(validator_class):
    """A validator that fills `default:` values of missing properties before validating them."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "$ref" in sub and "default" not in sub:
                    sub = validator._resolver.lookup(sub["$ref"]).contents
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFiller = _with_defaults(Draft202012Validator)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _explain(error) -> ConfigError:
    """Turn the most specific jsonschema error into one sentence naming the config key."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = sorted(set(error.instance) - set(allowed))
        if allowed and extra:
            bad = extra[0]
            close = difflib.get_close_matches(bad, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(allowed)}"
            return ConfigError(f"unknown key{hint}", _key([*path, bad]))
    if "propertyNames" in error.schema_path:
        return ConfigError(
            f"ids must match [a-z0-9][a-z0-9-]* (got {error.instance!r})", _key(path)
        )
    return ConfigError(error.message, _key(path))


def validate_config(config: Mapping[str, Any], schema: dict | None = None) -> dict:
    """Return a validated deep copy of `config` with every default filled in.

    Raises ConfigError naming the first offending key (deepest first, so the message points at
    the real mistake rather than at its enclosing block).
    """
    schema = schema if schema is not None else load_schema()
    data = copy.deepcopy(dict(config))
    normalise_methods(data)  # `lora: {}` means kind lora: the schema picks branches by kind
    errors = sorted(
        _DefaultFiller(schema).iter_errors(data),
        # a malformed id first, then the deepest error: it points at the real mistake
        key=lambda e: (
            "propertyNames" not in e.schema_path,
            -len(e.absolute_path),
            list(map(str, e.absolute_path)),
        ),
    )
    if errors:
        raise _explain(errors[0])
    _check_semantics(data)
    return data


#: `training.report_to` values and the package each needs
REPORTERS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def _check_semantics(config: dict) -> None:
    from bioprobe import prompting

    check_method_ids(config["methods"])
    prompting.check_config(config)
    _check_report_to(config)
    _check_erasure_runs(config)
    _check_instructions(config)
    for task_id, task in config["tasks"].items():
        _check_task(task_id, task)
    for model_id, model in config["models"].items():
        if model["source"] == "scratch" and "scratch" not in model:
            raise ConfigError("source 'scratch' needs a 'scratch:' block", f"models.{model_id}")
        if model["source"] != "scratch" and "scratch" in model:
            raise ConfigError(
                "a 'scratch:' block only applies to source: scratch", f"models.{model_id}.scratch"
            )


def _check_instructions(config: dict) -> None:
    """The instruction set of the instruction methods is the demo, a path or a Hub id."""
    from bioprobe.hub import is_hub_path
    from bioprobe.pipeline.grid import instruction_methods

    if not instruction_methods(config):
        return
    for model in config["models"]:  # sft trains in one process (no torchrun path)
        if training_config(config, None, model)["processes"] > 1:
            raise ConfigError(
                f"instruction tuning of {model!r} would run in several processes, but it trains "
                "in one (a LoRA of a 7-8B model fits one GPU): set 1 here, or tune this model in "
                "a config of its own",
                training_key(config, None, model, "processes"),
            )
    source = config["instructions"]["source"]
    if source == "demo" or Path(source).expanduser().exists():
        return
    if not is_hub_path(source):
        raise ConfigError(
            f"{source!r} does not exist (and is not a Hub dataset id): give 'demo', an "
            "instruction file or directory, or a Hub id",
            "instructions.source",
        )


def _check_erasure_runs(config: dict) -> None:
    """An erasure size or seed that is not trained would silently erase nothing."""
    trained = {s for s in config["sizes"] if s > 0}
    missing = sorted(set(config["erasure"]["sizes"] or ()) - trained)
    if missing:
        raise ConfigError(
            f"size {missing[0]} is not a fine-tuned size of `sizes` ({sorted(trained)})",
            "erasure.sizes",
        )
    missing = sorted(set(config["erasure"]["seeds"] or ()) - set(config["seeds"]))
    if missing:
        raise ConfigError(
            f"seed {missing[0]} is not one of `seeds` ({sorted(config['seeds'])})",
            "erasure.seeds",
        )


def _check_report_to(config: dict) -> None:
    """A logger the Trainer cannot import would fail every fine-tuning job after planning."""
    import importlib.util

    levels = [("training", config["training"])] + [
        (f"{group}.{key}.training", entry.get("training") or {})
        for group in ("tasks", "models")
        for key, entry in config[group].items()
    ]
    for where, training in levels:
        package = REPORTERS.get(training.get("report_to", "none"))
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"report_to {training['report_to']!r} needs the {package} package, which is not "
                f"installed: pip install {package} (or report_to: none)",
                f"{where}.report_to",
            )


def _check_task(task_id: str, task: dict) -> None:
    """What the schema cannot say about a task and its type's plug-in can: a format that cannot
    hold the type, the type's own checks, an explicit label set it cannot use (prepare_task
    checks the same again, for a notebook that calls it directly)."""
    holds = tasks.formats().get(task["format"], ())
    if task["type"] not in holds:
        able = sorted(fmt for fmt, types in tasks.formats().items() if task["type"] in types)
        raise ConfigError(
            f"format {task['format']!r} cannot hold a {task['type']!r} task"
            f" (formats for {task['type']!r}: {', '.join(able)})",
            f"tasks.{task_id}.format",
        )
    task_type = tasks.get(task["type"])
    task_type.check_config(task, task_id)
    if task.get("labels"):
        task_type.config_labels(task, f"tasks.{task_id}.labels")


def sorted_slice(value: Any) -> Any:
    """Recursively key-sorted copy: the params trigger must not depend on YAML key order."""
    if isinstance(value, Mapping):
        return {k: sorted_slice(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [sorted_slice(v) for v in value]
    return value


def _training_levels(
    config: Mapping[str, Any], task: str | None, model: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """Where training hyper-parameters come from, each with its config key prefix, the last
    that sets one winning. `task` None: instruction tuning (`instructions.training`)."""
    if task is None:
        middle = ("instructions.training", config.get("instructions", {}).get("training") or {})
    else:
        middle = (f"tasks.{task}.training", config["tasks"][task].get("training") or {})
    return [
        ("training", config["training"]),
        middle,
        (f"models.{model}.training", config["models"][model].get("training") or {}),
    ]


def training_config(config: Mapping[str, Any], task: str | None, model: str) -> dict:
    """Effective training hyper-parameters: defaults < task (or instruction set) overrides <
    model overrides."""
    merged: dict[str, Any] = {}
    for _, block in _training_levels(config, task, model):
        merged.update(block)
    return sorted_slice(merged)


def training_key(config: Mapping[str, Any], task: str | None, model: str, name: str) -> str:
    """The config key that sets training hyper-parameter `name` for a task and model (the
    level `training_config` takes it from), e.g. `models.minilm.training.max_length`."""
    levels = _training_levels(config, task, model)
    prefix = next((key for key, block in reversed(levels) if name in block), levels[0][0])
    return f"{prefix}.{name}"
