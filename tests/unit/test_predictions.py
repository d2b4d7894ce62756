"""A run's predictions file (bioprobe.predictions): written beside the evaluation JSON, it alone
gives back every score of it, and the test scores' bootstrap intervals reach downstream.tsv."""

from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from bioprobe.config import validate_config
from bioprobe.data import demo, prepare_task
from bioprobe.io import read_json, read_jsonl
from bioprobe.models import resolve_model
from bioprobe.pipeline.jobs import job_at
from bioprobe.pipeline.tables import DOWNSTREAM_COLUMNS, collect_downstream
from bioprobe.predictions import rescore, score_intervals
from bioprobe.settings import BootstrapSettings, TrainingSettings
from bioprobe.training.evaluate import evaluate, write_evaluation

KEY = {"task": "t", "model": "tiny", "method": "pretrained", "size": 0, "seed": 1}
SIZES = {"n_train": 12, "n_validation": 8, "n_test": 24}


@pytest.fixture(scope="module", params=sorted(demo.CORPORA))
def scored(request, tmp_path_factory, tiny_bert_dir):
    """A demo corpus of each task type scored by the tiny BERT with a seeded untrained head
    (the `evaluate` job), its evaluation JSON and predictions file written."""
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    demo.write_corpus(kind, root / "raw", **SIZES)
    config = validate_config(
        {"tasks": {"t": demo.task_config(demo.CORPORA[kind]["type"], str(root / "raw"))},
         "models": {"tiny": {"source": str(tiny_bert_dir)}}}
    )  # fmt: skip
    prepare_task(config["tasks"]["t"], root / "data", "t")
    job = job_at(root / "data", resolve_model("tiny", config["models"]["tiny"]), 1)
    result = evaluate(job, TrainingSettings(max_length=24))
    write_evaluation(root / "eval.json", root / "predictions.json", KEY, result)
    return kind, root


def test_the_predictions_file_alone_gives_back_every_score(scored):
    kind, root = scored
    evaluation, predictions = read_json(root / "eval.json"), read_json(root / "predictions.json")
    assert "predictions" not in evaluation  # a file of its own
    assert {k: predictions[k] for k in KEY} == KEY
    assert set(predictions["splits"]) == {"validation", "test"}
    test = predictions["splits"]["test"]
    records = read_jsonl(root / "data" / "test.jsonl")
    assert [r["index"] for r in test] == list(range(len(records)))
    assert [r["id"] for r in test] == [r["id"] for r in records]
    assert rescore(root / "predictions.json") == evaluation["scores"]
    # and by hand, from the rows alone, for the headline score
    scores = evaluation["scores"]["test"]
    gold, pred = [r["gold"] for r in test], [r["predicted"] for r in test]
    if kind == "ner":
        assert [len(g) for g in gold] == [len(r["tokens"]) for r in records]
        expected = f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0)
        assert scores["entity_f1"] == pytest.approx(expected)
    elif kind in ("nli", "relation"):
        assert scores["accuracy"] == pytest.approx(np.mean(np.array(gold) == np.array(pred)))
    elif kind == "similarity":
        assert scores["pearson"] == pytest.approx(np.corrcoef(gold, pred)[0, 1])
    elif kind == "multilabel":
        exact = [set(g) == set(p) for g, p in zip(gold, pred, strict=True)]
        assert scores["accuracy"] == pytest.approx(np.mean(exact))
        assert all(r["document"] for r in test)


def test_test_scores_get_intervals_in_the_downstream_table(scored):
    _, root = scored
    settings = BootstrapSettings(resamples=200, seed=3)
    df = collect_downstream([root / "eval.json"], [root / "predictions.json"], settings)
    assert list(df.columns) == DOWNSTREAM_COLUMNS
    test, validation = df[df["split"] == "test"], df[df["split"] == "validation"]
    assert validation[["ci_low", "ci_high"]].isna().all(axis=None)  # model selection only
    assert test[["ci_low", "ci_high"]].notna().all(axis=None)  # every test score has one
    intervals = score_intervals(root / "predictions.json", settings)
    for row in test.itertuples():
        assert (row.ci_low, row.ci_high) == pytest.approx(intervals[row.metric])
        assert row.ci_low <= row.ci_high
    # without predictions files the table still has the columns, with NaN intervals
    bare = collect_downstream([root / "eval.json"])
    assert list(bare.columns) == DOWNSTREAM_COLUMNS and bare["ci_low"].isna().all()
    assert bare["value"].tolist() == df["value"].tolist()
