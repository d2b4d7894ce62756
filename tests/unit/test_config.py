"""The strict schema: defaults filled, one clear error naming the key, slices order-independent."""

from pathlib import Path

import pytest
import yaml

from bioprobe.config import read_config_file, sorted_slice, training_config, validate_config
from bioprobe.errors import ConfigError
from bioprobe.settings import TrainingSettings

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
    assert cfg["methods"] == {"full": {"kind": "full", "learning_rate": None}}
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


def test_the_papers_training_recipe_validates_and_reaches_the_trainer(tmp_path):
    from bioprobe.training.finetune import training_arguments

    paper = {"batch_size": 4, "lr_scheduler": "constant", "warmup_ratio": 0, "max_grad_norm": None}
    cfg = validate_config(minimal(training=paper))
    args = training_arguments(
        TrainingSettings.from_config(training_config(cfg, "ner", "m")), 1, tmp_path, "ner"
    )
    assert args.lr_scheduler_type.value == "constant_with_warmup" and args.warmup_steps == 0
    assert args.max_grad_norm == 0  # the Trainer then skips clipping and the norm
    assert args.per_device_train_batch_size == 4
    default = training_arguments(
        TrainingSettings.from_config(training_config(validate_config(minimal()), "ner", "m")),
        1,
        tmp_path,
        "ner",
    )
    assert default.lr_scheduler_type.value == "linear" and default.max_grad_norm == 1.0
    with pytest.raises(ConfigError, match="lr_scheduler"):
        validate_config(minimal(training={"lr_scheduler": "cyclic"}))
    with pytest.raises(ConfigError, match="warmup_ratio"):
        validate_config(minimal(training={"warmup_ratio": 1}))  # the Trainer reads 1 as one step


def test_auto_precision_follows_the_hardware(monkeypatch):
    import torch

    from bioprobe.training import finetune

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(finetune, "cpu_computes_bf16", lambda: True)
    assert finetune.precision_flags("auto") == {"bf16": True, "fp16": False}
    assert finetune.precision_flags("auto", hidden_size=384) == {"bf16": True, "fp16": False}
    # a 64-wide model trains faster in fp32 on a CPU: autocast's casts outweigh the products
    assert finetune.precision_flags("auto", hidden_size=64) == {"bf16": False, "fp16": False}
    assert finetune.precision_flags("bf16", hidden_size=64) == {"bf16": True, "fp16": False}
    monkeypatch.setattr(finetune, "cpu_computes_bf16", lambda: False)
    assert finetune.precision_flags("auto") == {"bf16": False, "fp16": False}
    assert finetune.precision_flags("fp32") == {"bf16": False, "fp16": False}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert finetune.precision_flags("auto") == {"bf16": False, "fp16": True}
    assert finetune.precision_flags("auto", hidden_size=64) == {"bf16": False, "fp16": True}


# --- config files: one error naming the file (and, for YAML, the line and column) ---


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "config file '{f}' not found (in "),
        ("", "config file '{f}' is empty"),
        ("# comments only\n\n", "config file '{f}' is empty"),
        (
            "tasks:\n  t:\n    path: data/ner: x\n",
            "config file '{f}', line 3, column 19: not valid YAML (mapping values are not allowed",
        ),
        (
            "models: [a, b\nsizes: [0]\n",
            "config file '{f}', line 2, column 6: not valid YAML (expected ',' or ']', but got"
            " ':'; while parsing a flow sequence from line 1, column 9)",
        ),
        (
            "tasks:\n\tt: {}\n",
            "config file '{f}', line 2, column 1: not valid YAML (found character",
        ),
        ("- tasks\n", "config file '{f}': the top level must be a mapping of config keys"),
        ("just words\n", "config file '{f}': the top level must be a mapping"),
        (b"tasks: caf\xe9\n", "config file '{f}': not UTF-8 text"),
    ],
    ids=["missing", "empty", "comments", "colon", "unclosed", "tab", "list", "scalar", "latin1"],
)
def test_a_broken_config_file_is_one_error_naming_the_file(tmp_path, content, says):
    path = tmp_path / "my config.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    message = str(info.value)
    assert message.startswith(says.format(f=path)), message
    assert "\n" not in message and info.value.__cause__ is None


def test_a_config_file_directory_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"is a directory, not a file"):
        read_config_file(tmp_path)


@pytest.mark.parametrize("name", ["config.yaml", "configs/paper.yaml"])
def test_shipped_config_files_read_as_yaml_does(name):
    assert read_config_file(ROOT / name) == yaml.safe_load((ROOT / name).read_text())


# --- semantic checks: what the schema cannot say, known before any job ---


@pytest.mark.parametrize(
    ("task_type", "fmt", "able"),
    [("pair", "bio-tsv", "hf, pairs-jsonl, tsv"), ("ner", "pairs-jsonl", "bio-tsv, hf")],
)
def test_a_format_that_cannot_hold_the_task_type_is_refused(task_type, fmt, able):
    cfg = minimal()
    cfg["tasks"]["ner"].update(type=task_type, format=fmt)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert info.value.key == "tasks.ner.format"
    assert str(info.value) == (
        f"config key 'tasks.ner.format': format {fmt!r} cannot hold a {task_type!r} task"
        f" (formats for {task_type!r}: {able})"
    )


def test_every_format_the_registry_pairs_with_a_type_validates():
    from bioprobe import tasks

    for fmt, types in tasks.formats().items():
        for task_type in types:
            cfg = minimal()
            cfg["tasks"]["ner"].update(type=task_type, format=fmt)
            if task_type == "relation":  # the one key a relation task must add: its negative
                cfg["tasks"]["ner"]["negative_label"] = "0"
            assert validate_config(cfg)["tasks"]["ner"]["format"] == fmt


def test_an_unusable_label_set_is_refused_before_any_job():
    cfg = minimal()
    cfg["tasks"]["ner"]["labels"] = ["B-Disease", "I-Disease"]
    with pytest.raises(ConfigError, match=r"^config key 'tasks.ner.labels': .*must contain 'O'"):
        validate_config(cfg)
    cfg["tasks"]["ner"]["labels"] = ["O", "B-Disease", "I-Disease"]
    assert validate_config(cfg)["tasks"]["ner"]["labels"] == ["O", "B-Disease", "I-Disease"]


def test_erasure_sizes_and_seeds_must_be_trained_ones():
    erasure = validate_config(minimal(sizes=[0, 10, 50]))["erasure"]
    assert erasure["sizes"] is None and erasure["seeds"] is None  # all
    validate_config(minimal(sizes=[0, 10, 50], erasure={"sizes": [50], "seeds": [1]}))
    with pytest.raises(ConfigError, match=r"'erasure.sizes': size 30 is not a fine-tuned size"):
        validate_config(minimal(sizes=[0, 10, 50], erasure={"sizes": [30]}))
    with pytest.raises(ConfigError, match=r"'erasure.seeds': seed 7 is not one of `seeds`"):
        validate_config(minimal(seeds=[1, 2], erasure={"seeds": [7]}))
