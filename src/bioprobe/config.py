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

from bioprobe.errors import ConfigError
from bioprobe.methods import check_method_ids, normalise_methods

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


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


def _check_semantics(config: dict) -> None:
    check_method_ids(config["methods"])
    for model_id, model in config["models"].items():
        if model["source"] == "scratch" and "scratch" not in model:
            raise ConfigError("source 'scratch' needs a 'scratch:' block", f"models.{model_id}")
        if model["source"] != "scratch" and "scratch" in model:
            raise ConfigError(
                "a 'scratch:' block only applies to source: scratch", f"models.{model_id}.scratch"
            )


def sorted_slice(value: Any) -> Any:
    """Recursively key-sorted copy: the params trigger must not depend on YAML key order."""
    if isinstance(value, Mapping):
        return {k: sorted_slice(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [sorted_slice(v) for v in value]
    return value


def training_config(config: Mapping[str, Any], task: str, model: str) -> dict:
    """Effective training hyper-parameters: defaults < task overrides < model overrides."""
    merged = dict(config["training"])
    merged.update(config["tasks"][task].get("training", {}))
    merged.update(config["models"][model].get("training", {}))
    return sorted_slice(merged)
