"""The strict schema: defaults filled, one clear error naming the key, slices order-independent."""

from pathlib import Path

import pytest
import yaml

from bioprobe.config import sorted_slice, training_config, validate_config
from bioprobe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def minimal(**extra):
    cfg = {
        "tasks": {
            "ner": {
                "type": "ner",
                "format": "bio-tsv",
                "path": "data",
                "splits": {"train": "a.tsv", "validation": "b.tsv", "test": "c.tsv"},
            }
        },
        "models": {"m": {"source": "bert-base-cased"}},
    }
    cfg.update(extra)
    return cfg


def test_defaults_are_filled_from_the_schema():
    cfg = validate_config(minimal())
    assert cfg["sizes"] == [0, 10, 30, 50, 100]
    assert cfg["seeds"] == [1]
    assert cfg["methods"] == {"full": {}}
    assert cfg["training"]["epochs"] == 3
    assert cfg["training"]["learning_rate"] == 2e-5
    assert cfg["tasks"]["ner"]["label_scheme"] == "bio"
    assert cfg["tasks"]["ner"]["fields"]["text_a"] == "text_a"
    assert cfg["models"]["m"]["trust_remote_code"] is False
    assert cfg["models"]["m"]["allow_pickle"] is False


def test_input_is_not_mutated():
    cfg = minimal()
    validate_config(cfg)
    assert "sizes" not in cfg


@pytest.mark.parametrize(
    ("patch", "key", "words"),
    [
        ({"sizs": [0]}, "sizs", "did you mean 'sizes'"),
        ({"sizes": [0, 101]}, "sizes.1", "maximum of 100"),
        ({"sizes": [-1]}, "sizes.0", "minimum of 0"),
        ({"seeds": ["one"]}, "seeds.0", "not of type 'integer'"),
        ({"training": {"epochs": "three"}}, "training.epochs", "not of type 'number'"),
        ({"training": {"learning_rat": 1}}, "training.learning_rat", "learning_rate"),
        ({"models": {"Bad_Id": {"source": "x"}}}, "models", "ids must match"),
        ({"models": {"m": {"source": "scratch"}}}, "models.m", "scratch:"),
        ({"models": {"m": {"source": "x", "scratch": {"family": "gpt2"}}}}, "models.m.scratch", ""),
        (
            {"models": {"m": {"source": "x", "training": {"batch_size": 0}}}},
            "models.m.training.batch_size",
            "minimum",
        ),
        ({"methods": {"fulll": {}}}, "methods.fulll", "did you mean 'full'"),
        ({"models": {}}, "models", "non-empty"),
    ],
)
def test_each_mistake_is_one_error_naming_the_key(patch, key, words):
    with pytest.raises(ConfigError) as err:
        validate_config(minimal(**patch))
    assert err.value.key == key
    assert words in str(err.value)
    assert f"config key '{key}'" in str(err.value)


def test_task_errors_name_the_task_key():
    cfg = minimal()
    cfg["tasks"]["ner"]["format"] = "csv"
    with pytest.raises(ConfigError, match=r"config key 'tasks\.ner\.format'"):
        validate_config(cfg)
    cfg = minimal()
    del cfg["tasks"]["ner"]["splits"]["test"]
    with pytest.raises(ConfigError, match=r"tasks\.ner\.splits.*'test' is a required property"):
        validate_config(cfg)


@pytest.mark.parametrize("name", ["config.yaml", "configs/paper.yaml"])
def test_shipped_configs_validate(name):
    cfg = validate_config(yaml.safe_load((ROOT / name).read_text()))
    assert cfg["tasks"] and cfg["models"]


def test_training_overrides_task_then_model():
    cfg = minimal(training={"learning_rate": 1e-5, "epochs": 2})
    cfg["tasks"]["ner"]["training"] = {"learning_rate": 3e-5, "batch_size": 8}
    cfg["models"]["m"]["training"] = {"learning_rate": 1e-4}
    merged = training_config(validate_config(cfg), "ner", "m")
    assert merged["learning_rate"] == 1e-4
    assert merged["batch_size"] == 8
    assert merged["epochs"] == 2
    assert list(merged) == sorted(merged)


def test_sorted_slice_ignores_key_order():
    a = {"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": 3}}
    b = {"a": {"c": 3, "d": [{"y": 2, "z": 1}]}, "b": 1}
    assert repr(sorted_slice(a)) == repr(sorted_slice(b))
