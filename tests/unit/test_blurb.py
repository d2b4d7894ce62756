"""The BLURB score against hand-computed values: which tasks count, the category means, the
macro-average over categories, and the coverage a partial run states."""

from __future__ import annotations

import pandas as pd
import pytest

from bioprobe import tasks
from bioprobe.blurb import CATEGORIES, blurb_table, blurb_tasks, coverage_note
from bioprobe.config import validate_config
from bioprobe.errors import ConfigError
from bioprobe.pipeline.tables import BLURB_COLUMNS

SPLITS = {"train": "a", "validation": "b", "test": "c"}


def task(kind: str, **extra) -> dict:
    fmt = "bio-tsv" if kind == "ner" else "pairs-jsonl"
    return {"type": kind, "format": fmt, "path": "data", "splits": SPLITS, **extra}


def config(**task_entries) -> dict:
    return validate_config({"tasks": task_entries, "models": {"m": {"source": "bert-base-cased"}}})


@pytest.fixture
def spec() -> dict:
    """Two NER datasets, a pair task counted as relation extraction by its macro-F1, a QA pair
    task, an NLI pair task (no category: left out) and an NER task left out with false."""
    return blurb_tasks(
        config(
            ner1=task("ner"),
            ner2=task("ner"),
            rel=task("pair", blurb="relation extraction", blurb_metric="macro_f1"),
            qa=task("pair", blurb="question answering"),
            nli=task("pair"),
            skipped=task("ner", blurb=False),
        )
    )


def downstream(scores: dict[tuple[str, str, int], float]) -> pd.DataFrame:
    """Test-split rows of model m, full fine-tuning at 100 %, from {(task, metric, seed): value};
    each run also has a validation row and another metric, which must not count."""
    rows = []
    for (task_id, metric, seed), value in scores.items():
        key = {"task": task_id, "model": "m", "method": "full", "size": 100, "seed": seed}
        rows += [
            {**key, "split": "test", "metric": metric, "value": value},
            {**key, "split": "test", "metric": "other", "value": -1.0},
            {**key, "split": "validation", "metric": metric, "value": -1.0},
        ]
    return pd.DataFrame(rows)


SCORES = {
    ("ner1", "entity_f1", 1): 0.8,
    ("ner2", "entity_f1", 1): 0.6,
    ("rel", "macro_f1", 1): 0.5,
    ("qa", "accuracy", 1): 0.9,
    ("nli", "accuracy", 1): 0.1,
    ("skipped", "entity_f1", 1): 0.0,
}


def test_blurb_tasks_defaults_overrides_and_left_out(spec):
    assert spec == {
        "ner1": {"category": "named entity recognition", "metric": "entity_f1"},
        "ner2": {"category": "named entity recognition", "metric": "entity_f1"},
        "qa": {"category": "question answering", "metric": "accuracy"},
        "rel": {"category": "relation extraction", "metric": "macro_f1"},
    }


def test_unknown_category_names_the_key():
    with pytest.raises(ConfigError, match=r"tasks\.qa\.blurb.*'QA' is not a BLURB category"):
        blurb_tasks(config(qa=task("pair", blurb="QA")))
    with pytest.raises(ConfigError, match=r"tasks\.qa\.blurb"):  # the schema: no `true`
        config(qa=task("pair", blurb=True))


def test_a_type_without_blurb_metric_needs_one(monkeypatch):
    monkeypatch.setattr(tasks.get("pair"), "blurb_metric", None)
    with pytest.raises(ConfigError, match=r"tasks\.qa\.blurb_metric.*no official BLURB metric"):
        blurb_tasks(config(qa=task("pair", blurb="question answering")))
    fixed = config(qa=task("pair", blurb="question answering", blurb_metric="macro_f1"))
    assert blurb_tasks(fixed)["qa"]["metric"] == "macro_f1"


def test_categories_averaged_then_macro_over_categories(spec):
    t = blurb_table(downstream(SCORES), spec)
    assert list(t.columns) == BLURB_COLUMNS
    get = t.set_index(["level", "name"])
    # datasets: each task's official metric; nli (no category) and skipped (false) left out
    assert sorted(t.loc[t["level"] == "dataset", "name"]) == ["ner1", "ner2", "qa", "rel"]
    assert get.loc[("dataset", "rel"), "metric"] == "macro_f1"
    assert get.loc[("dataset", "rel"), "category"] == "relation extraction"
    ner = get.loc[("category", "named entity recognition")]
    assert ner["value"] == pytest.approx(0.7) and ner["n"] == 2
    assert ner["coverage"] == "2/2 datasets"
    blurb = get.loc[("blurb", "BLURB")]
    # (0.7 + 0.5 + 0.9) / 3, not the mean over the four datasets (0.7)
    assert blurb["value"] == pytest.approx(0.7)
    assert blurb["n"] == 3 and blurb["metric"] == "macro_mean"
    assert blurb["coverage"] == (
        "3/6 categories (missing: PICO, sentence similarity, document classification)"
    )
    assert t["level"].iloc[0] == "blurb"  # the score first, then categories, then datasets


def test_macro_average_is_not_the_dataset_mean(spec):
    scores = {**SCORES, ("ner2", "entity_f1", 1): 1.0}  # NER mean 0.9; four-dataset mean 0.8
    t = blurb_table(downstream(scores), spec).set_index(["level", "name"])
    assert t.loc[("blurb", "BLURB"), "value"] == pytest.approx((0.9 + 0.5 + 0.9) / 3)


def test_per_seed_and_a_missing_dataset_stated(spec):
    seed2 = {(t, m, 2): v + 0.1 for (t, m, _), v in SCORES.items() if t != "ner2"}
    t = blurb_table(downstream({**SCORES, **seed2}), spec)
    two = t[t["seed"] == 2].set_index(["level", "name"])
    ner = two.loc[("category", "named entity recognition")]
    assert ner["value"] == pytest.approx(0.9) and ner["n"] == 1
    assert ner["coverage"] == "1/2 datasets (missing: ner2)"
    blurb = two.loc[("blurb", "BLURB")]
    assert blurb["value"] == pytest.approx((0.9 + 0.6 + 1.0) / 3)
    assert blurb["coverage"].endswith("; incomplete: named entity recognition")
    one = t[t["seed"] == 1].set_index(["level", "name"])
    assert one.loc[("blurb", "BLURB"), "value"] == pytest.approx(0.7)


def test_missing_metric_names_the_key(spec):
    scores = {k: v for k, v in SCORES.items() if k[0] != "rel"}
    scores[("rel", "accuracy", 1)] = 0.5
    with pytest.raises(ConfigError, match=r"tasks\.rel\.blurb_metric.*no 'macro_f1' scores"):
        blurb_table(downstream(scores), spec)


def test_no_scores_at_all(spec):
    with pytest.raises(
        ValueError, match=r"no BLURB task \(ner1, ner2, qa, rel\) has scores on the dev"
    ):
        blurb_table(downstream(SCORES), spec, split="dev")
    with pytest.raises(ValueError, match="no task counts towards BLURB"):
        blurb_table(downstream(SCORES), {})


def test_coverage_note():
    assert coverage_note(CATEGORIES) == "6/6 categories"
    assert coverage_note(["PICO"], ["PICO"]) == (
        "1/6 categories (missing: named entity recognition, relation extraction, sentence"
        " similarity, document classification, question answering); incomplete: PICO"
    )


def test_blurb_keys_do_not_reach_the_task_slice():
    """How a task counts towards BLURB must not re-prepare its data: rules/common.smk drops
    bioprobe.blurb.CONFIG_KEYS from task_slice, so they must be every BLURB key of the schema."""
    from bioprobe.blurb import CONFIG_KEYS

    entry = config(qa=task("pair", blurb="question answering"))["tasks"]["qa"]
    assert {k for k in entry if k.startswith("blurb")} == set(CONFIG_KEYS)
