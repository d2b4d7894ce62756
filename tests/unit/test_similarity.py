"""The similarity task type (BIOSSES): reading scores, the regression head, Pearson, the ridge
probe and its control."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from bioprobe import tasks
from bioprobe.config import validate_config
from bioprobe.data import prepare_task
from bioprobe.data.readers import read_hf, read_pairs_jsonl, read_tsv
from bioprobe.data.subsample import subset_order
from bioprobe.errors import ConfigError, InputError
from bioprobe.metrics import regression_scores
from bioprobe.probing.ridge import RegressionProbeData, fit_layers_ridge, probe_regression
from bioprobe.probing.rows import control_seeds
from bioprobe.settings import ProbeSettings

BIOSSES_FIELDS = {"id": "pair_id", "text_a": "sent1", "text_b": "sent2"}
HEADER = "pair_id\tsent1\tsent2\tscore\n"
ROWS = [
    "78\tGATA2 knockdown kills KRAS mutant cells\tGATA2 knockdown reduced RHO activity\t2.2\n",
    "45\tMLL-AF9 cells expressed Hox a7\tHox a9 is a target of MLL fusions\t3.2\n",
    "88\tCentrosomes grow before mitotic entry\tmiR-146a promotes proliferation\t0.0\n",
]
SIMILARITY = tasks.get("similarity")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path) -> list[dict]:
    return read_tsv(path, "similarity", BIOSSES_FIELDS)


# --- reading ---


def test_blurb_biosses_tsv_reads_scores_as_floats(tmp_path):
    records = read(write(tmp_path, "train.tsv", HEADER + "".join(ROWS)))
    assert [r["id"] for r in records] == ["78", "45", "88"]
    assert [r["score"] for r in records] == [2.2, 3.2, 0.0]
    assert records[0]["text_a"] == "GATA2 knockdown kills KRAS mutant cells"
    assert set(records[0]) == {"id", "text_a", "text_b", "score"}


@pytest.mark.parametrize("bad", ["n/a", "", "nan", "inf"])
def test_a_score_that_is_not_a_finite_number_names_file_and_line(tmp_path, bad):
    path = write(tmp_path, "dev.tsv", HEADER + ROWS[0] + ROWS[1].replace("3.2", bad))
    with pytest.raises(InputError) as info:
        read(path)
    assert str(info.value).startswith(f"{path}:3: score")
    assert "number" in str(info.value)


def test_a_header_without_the_score_column_is_named(tmp_path):
    path = write(tmp_path, "dev.tsv", "pair_id\tsent1\tsent2\tsim\n" + ROWS[0])
    with pytest.raises(InputError, match=r"no column 'score'"):
        read(path)


def test_pairs_jsonl_reads_scores_as_numbers_or_text(tmp_path):
    rows = [
        {"a": "first sentence", "b": "second sentence", "sim": 1.5},
        {"a": "third sentence", "b": "fourth sentence", "sim": "4"},
    ]
    path = write(tmp_path, "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    fields = {"text_a": "a", "text_b": "b", "score": "sim"}
    records = read_pairs_jsonl(path, fields, task_type="similarity")
    assert [r["score"] for r in records] == [1.5, 4.0]
    path.write_text(json.dumps({**rows[0], "sim": True}) + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:1: score must be a number, found bool"):
        read_pairs_jsonl(path, fields, task_type="similarity")


def test_hf_rows_read_scores(tmp_path):
    import datasets

    data = {"text_a": ["one", "two"], "text_b": ["uno", "dos"], "score": [0.5, 3.75]}
    datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "train"))
    records = read_hf(tmp_path, "train", "similarity", {})
    assert [r["score"] for r in records] == [0.5, 3.75]
    assert records[0]["id"] == "train-000000"


def test_prepare_writes_no_label_set_and_a_configured_label_set_is_an_error(tmp_path):
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        write(tmp_path, name, HEADER + "".join(ROWS))
    task = {
        "type": "similarity",
        "format": "tsv",
        "path": str(tmp_path),
        "splits": {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        "fields": BIOSSES_FIELDS,
    }
    meta = prepare_task(task, tmp_path / "out", "biosses")
    assert meta["labels"] == [] and meta["target"] == "score"
    saved = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert saved["labels"] == [] and saved["task_type"] == "similarity"
    config = {"tasks": {"biosses": {**task, "labels": ["low", "high"]}}, "models": {}}
    config["models"] = {"m": {"source": "scratch", "scratch": {"family": "bert"}}}
    with pytest.raises(ConfigError, match=r"tasks.biosses.labels.*no label set"):
        validate_config(config)


def test_strata_are_integer_score_bins_and_every_prefix_spreads_over_them():
    records = [{"score": s} for s in (0.0, 0.4, 1.0, 1.8, 2.2, 2.6, 3.0, 3.4, 4.0, 0.2)]
    assert [SIMILARITY.stratum(r) for r in records[:3]] == [("0",), ("0",), ("1",)]
    assert SIMILARITY.stratum({"score": 4.0}) == ("4",)
    order = subset_order(records, "similarity", seed=3)
    first_four = {SIMILARITY.stratum(records[i]) for i in order[:4]}
    assert len(first_four) == 4  # the 0 bin holds 3 of 10: the first prefixes mix the bins


# --- head, features, scores ---


def test_head_is_one_regression_output(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert SIMILARITY.head_kwargs([]) == {"num_labels": 1, "problem_type": "regression"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, **SIMILARITY.head_kwargs([])
    )
    records = [
        {"id": "a", "text_a": "Aspirin reduces fever .", "text_b": "Insulin binds .", "score": 1.2},
        {"id": "b", "text_a": "The p53 gene .", "text_b": "The BRCA1 mutation .", "score": 3.6},
    ]
    fs = SIMILARITY.build_features(records, tokenizer, [], ProbeLike(max_length=32))
    assert [f["labels"] for f in fs.features] == [1.2, 3.6]
    batch = SIMILARITY.collator(tokenizer, None)([
        {k: v for k, v in f.items() if k != "length"} for f in fs.features
    ])  # fmt: skip
    assert batch["labels"].dtype == torch.float32
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (2, 1)
    expected = torch.nn.functional.mse_loss(out.logits.squeeze(-1), batch["labels"])
    assert torch.isclose(out.loss, expected)
    assert SIMILARITY.batch_predictions(out.logits, batch["labels"]) == pytest.approx(
        out.logits[:, 0].tolist()
    )


class ProbeLike:
    """The encoding settings `build_features` reads."""

    def __init__(self, max_length: int):
        self.max_length = max_length
        self.pair_truncation = "longest_first"


def test_regression_scores_match_scipy_and_a_constant_prediction_scores_zero():
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 4, 30)
    pred = gold + rng.normal(0, 1, 30)
    scores = regression_scores(gold, pred)
    assert scores["pearson"] == pytest.approx(stats.pearsonr(gold, pred).statistic)
    assert scores["spearman"] == pytest.approx(stats.spearmanr(gold, pred).statistic)
    assert scores["mse"] == pytest.approx(np.mean((gold - pred) ** 2))
    assert scores["r2"] == pytest.approx(
        1 - np.sum((gold - pred) ** 2) / np.sum((gold - gold.mean()) ** 2)
    )
    assert regression_scores(gold, np.full(30, 2.0))["pearson"] == 0.0
    with pytest.raises(ValueError, match="two scores"):
        regression_scores([1.0], [1.0])


def test_score_and_compute_metrics_report_pearson():
    records = [{"id": str(i), "score": s} for i, s in enumerate((0.0, 1.0, 2.0, 4.0))]
    scores = SIMILARITY.score([], records, [0.1, 0.9, 2.5, 3.0])
    assert scores["pearson"] == pytest.approx(stats.pearsonr([0, 1, 2, 4], [0.1, 0.9, 2.5, 3.0])[0])
    logits = torch.tensor([[0.5], [1.5]])
    assert SIMILARITY.logits_for_metrics(logits, None).tolist() == [0.5, 1.5]

    class EvalPred:
        label_ids = np.array([0.0, 1.0, 3.0])
        predictions = np.array([0.2, 0.8, 2.0])

    assert SIMILARITY.compute_metrics([])(EvalPred())["pearson"] > 0.9


# --- probe ---


def _signal(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Features [3, n, 16] whose layer 2 holds the scores linearly (plus noise); layers 0 and 1
    are noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, n, 16)).astype(np.float32)
    y = x[2] @ np.linspace(-1, 1, 16) + 0.3 * rng.normal(size=n)
    return x.astype(np.float16), y


def test_ridge_probe_recovers_a_linear_signal_and_its_control_does_not():
    fit = RegressionProbeData(*_signal(0, 300))
    score = RegressionProbeData(*_signal(1, 200))
    rows = probe_regression(fit, score, seed=4)
    value = {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}
    assert value[2, "task", "pearson"] > 0.95
    assert value[2, "task", "r2"] > 0.9
    assert abs(value[0, "task", "pearson"]) < 0.2  # noise layers carry nothing
    assert abs(value[2, "control", "pearson"]) < 0.2
    assert value[2, "task", "selectivity_pearson"] > 0.75
    assert value[2, "task", "selectivity"] == value[2, "task", "selectivity_pearson"]
    assert value[2, "task", "alpha"] < value[2, "control", "alpha"]  # the control shrinks
    assert {r["probe"] for r in rows} == {"linear"}
    # several control draws: the control rows are the mean over the draws' shuffles
    drawn = probe_regression(fit, score, seed=4, control_draws=3)
    singles = [probe_regression(fit, score, seed=s) for s in control_seeds(4, 3).values()]
    got = {(r["layer"], r["metric"]): r["value"] for r in drawn if r["target"] == "control"}
    for (layer, metric), v in got.items():
        one = [
            next(r["value"] for r in rows if (r["layer"], r["target"], r["metric"]) == key)
            for rows, key in ((s, (layer, "control", metric)) for s in singles)
        ]
        assert v == pytest.approx(np.mean(one))


def test_ridge_matches_scikit_learn_ridge_on_standardised_features():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    x, y = _signal(2, 80)
    xe, _ = _signal(3, 20)
    pred, alpha = fit_layers_ridge(x, y[None], xe, alphas=[10.0])
    scaler = StandardScaler().fit(x[1].astype(np.float64))
    ridge = Ridge(alpha=10.0).fit(scaler.transform(x[1].astype(np.float64)), y)
    expected = ridge.predict(scaler.transform(xe[1].astype(np.float64)))
    assert np.allclose(pred[0, 1], expected, atol=1e-8)
    assert (alpha == 10.0).all()


def test_probe_hook_reads_the_dump_units_and_the_configured_alphas():
    x, y = _signal(5, 120)
    data = SIMILARITY.probe_data(x, {"scores": y.tolist(), "ids": []}, {"labels": []})
    settings = ProbeSettings.from_config({"control": False, "ridge": {"alphas": [3.0]}})
    rows = SIMILARITY.probe(data, data, "linear", settings, seed=1, threads=1)
    assert {r["target"] for r in rows} == {"task"}
    assert {r["value"] for r in rows if r["metric"] == "alpha"} == {3.0}
    with pytest.raises(ValueError, match="targets have shape"):
        RegressionProbeData(x, y[:-1])
