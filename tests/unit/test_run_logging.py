"""What a fine-tuning job tells its user: a warning when the model predicts one class only, and
a `report_to` logger the Trainer could not import refused at planning."""

import logging
from types import SimpleNamespace

import pytest

from bioprobe import config, tasks
from bioprobe.config import validate_config
from bioprobe.errors import ConfigError
from bioprobe.training import evaluate


@pytest.mark.parametrize(
    ("task_type", "labels", "predicted", "only"),
    [
        ("ner", ["O", "B-Disease", "I-Disease"], [[0, 0], [0]], "O"),
        ("ner", ["O", "B-Disease", "I-Disease"], [[0, 1], [0]], None),
        ("pair", ["yes", "no"], [1, 1, 1], "no"),
        ("pair", ["yes", "no"], [1, 0, 1], None),
        ("pair", ["yes", "no"], [], None),
    ],
)
def test_single_prediction(task_type, labels, predicted, only):
    assert tasks.get(task_type).single_prediction(labels, predicted) == only


def test_a_model_that_predicts_only_o_is_warned_about(caplog):
    task = SimpleNamespace(type=tasks.get("ner"), labels=["O", "B-X", "I-X"])
    with caplog.at_level(logging.WARNING, logger="bioprobe.evaluate"):
        evaluate.warn_single_prediction(task, "validation", [[0, 0, 0], [0]])
        evaluate.warn_single_prediction(task, "test", [[0, 1, 2], [0]])
    assert [r.getMessage() for r in caplog.records] == [
        "validation: the model predicts 'O' for every word: it has not learned the task "
        "(more training data, more epochs or a higher learning rate may help)"
    ]


def _config(**training):
    return {
        "tasks": {
            "t": {
                "type": "ner",
                "format": "bio-tsv",
                "path": "x",
                "splits": dict.fromkeys(("train", "validation", "test"), "a.tsv"),
            }
        },
        "models": {"m": {"source": "x", "training": training}},
    }


def test_report_to_a_logger_that_is_not_installed_names_the_key(monkeypatch):
    monkeypatch.setitem(config.REPORTERS, "tensorboard", "no_such_package_for_bioprobe")
    with pytest.raises(ConfigError) as info:
        validate_config(_config(report_to="tensorboard"))
    assert info.value.key == "models.m.training.report_to"
    assert "pip install no_such_package_for_bioprobe" in str(info.value)


def test_report_to_none_is_the_default():
    assert validate_config(_config())["training"]["report_to"] == "none"
