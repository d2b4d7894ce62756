"""The multilabel task type (HoC): reading label sets, the multi-label head, BLURB's
per-document micro-F1 and the one-vs-rest probe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bioprobe import tasks
from bioprobe.config import validate_config
from bioprobe.data import prepare_task
from bioprobe.data.readers import LabelCheck, read_hf, read_tsv
from bioprobe.data.subsample import subset_order
from bioprobe.errors import ConfigError, InputError
from bioprobe.metrics import merge_by_document, multilabel_scores
from bioprobe.probing.multilabel import MultiLabelProbeData, probe_multilabel
from bioprobe.probing.rows import control_seeds
from bioprobe.settings import ProbeSettings

HOC_FIELDS = {"id": "index", "text": "sentence"}
HOC_ID = r"^(.+)_s\d+$"
HEADER = "labels\tsentence\tindex\n"
ROWS = [
    "0_0,1_1,2_0,3_1\tPD - L1 was up - regulated .\t111_s0\n",
    "0_0,1_0,2_0,3_0\tCells were cultured .\t111_s1\n",
    "0_1,1_0,2_0,3_0\tInvasion increased .\t222_s0\n",
]
MULTILABEL = tasks.get("multilabel")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def hoc_task(path: Path) -> dict:
    """A HoC-format multilabel task over train.tsv, dev.tsv and test.tsv in `path`."""
    return {
        "type": "multilabel",
        "format": "tsv",
        "path": str(path),
        "splits": {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        "fields": HOC_FIELDS,
        "document_id": HOC_ID,
    }


def read(path: Path, **cfg) -> list[dict]:
    return read_tsv(path, "multilabel", HOC_FIELDS, task_cfg=cfg)


# --- reading ---


def test_hoc_index_value_cells_name_the_present_labels_by_index(tmp_path):
    records = read(write(tmp_path, "train.tsv", HEADER + "".join(ROWS)), document_id=HOC_ID)
    assert [r["labels"] for r in records] == [["1", "3"], [], ["0"]]
    assert [r["document"] for r in records] == ["111", "111", "222"]
    assert records[0] == {
        "id": "111_s0",
        "text": "PD - L1 was up - regulated .",
        "labels": ["1", "3"],
        "document": "111",
    }


def test_configured_labels_name_the_indices_and_an_index_beyond_them_is_an_error(tmp_path):
    names = ["invasion", "immune", "energetics", "immortality"]
    path = write(tmp_path, "train.tsv", HEADER + "".join(ROWS))
    assert read(path, labels=names)[0]["labels"] == ["immune", "immortality"]
    with pytest.raises(InputError) as info:
        read(path, labels=names[:3])
    assert str(info.value).startswith(f"{path}:2: label index 3 has no name")


def test_comma_separated_names_and_a_blank_cell(tmp_path):
    text = HEADER + "invasion,immune\tA .\ta\n\tB .\tb\nimmune\tC .\tc\n"
    records = read(write(tmp_path, "train.tsv", text))
    assert [r["labels"] for r in records] == [["invasion", "immune"], [], ["immune"]]
    assert [r["document"] for r in records] == ["a", "b", "c"]  # no document_id: each its own


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("0_1,0_0", "label index appears twice"),
        ("immune,,invasion", "empty label name"),
        ("immune,immune", "label 'immune' listed twice"),
    ],
)
def test_a_malformed_label_cell_names_file_and_line(tmp_path, cell, message):
    path = write(tmp_path, "dev.tsv", HEADER + ROWS[0] + f"{cell}\tText .\t333_s0\n")
    with pytest.raises(InputError, match=message) as info:
        read(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_a_label_outside_the_set_names_file_and_line(tmp_path):
    path = write(tmp_path, "test.tsv", HEADER + "immune\tA .\ta\nangiogenesis\tB .\tb\n")
    with pytest.raises(InputError) as info:
        read_tsv(path, "multilabel", HOC_FIELDS, labels=["immune", "invasion"])
    assert str(info.value).startswith(f"{path}:3: unknown label 'angiogenesis'")


def test_an_id_outside_the_document_pattern_names_its_line(tmp_path):
    path = write(tmp_path, "dev.tsv", HEADER + ROWS[0] + "0_1\tText .\t333-s0\n")
    with pytest.raises(InputError, match=r"dev.tsv:3: id '333-s0' does not match"):
        read(path, document_id=HOC_ID)


@pytest.mark.parametrize(
    ("pattern", "message"), [("(unclosed", "not a regular expression"), (r"^\d+$", "one group")]
)
def test_a_bad_document_pattern_is_a_config_error_naming_the_key(pattern, message):
    task = {"type": "multilabel", "format": "tsv", "path": "x", "document_id": pattern}
    task["splits"] = {"train": "a", "validation": "b", "test": "c"}
    config = {"tasks": {"hoc": task}, "models": {"m": {"source": "scratch", "scratch": {}}}}
    config["models"]["m"]["scratch"] = {"family": "bert"}
    with pytest.raises(ConfigError, match=rf"tasks.hoc.document_id.*{message}"):
        validate_config(config)


def test_hf_rows_read_class_ids_through_the_class_label_names(tmp_path):
    import datasets

    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "labels": datasets.Sequence(datasets.ClassLabel(names=["immune", "invasion"])),
        }
    )
    data = {"text": ["one", "two", "three"], "labels": [[1], [], [0, 1]]}
    datasets.Dataset.from_dict(data, features=features).save_to_disk(str(tmp_path / "train"))
    records = read_hf(tmp_path, "train", "multilabel", {})
    assert [r["labels"] for r in records] == [["invasion"], [], ["immune", "invasion"]]


def test_prepare_takes_the_label_set_from_train_in_index_order(tmp_path):
    rows = [f"{k}_1,{(k + 1) % 12}_0\tSentence {k} .\t{k}_s0\n" for k in (10, 2, 0, 1)]
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        write(tmp_path, name, HEADER + "".join(rows))
    task = hoc_task(tmp_path)
    meta = prepare_task(task, tmp_path / "out", "hoc")
    assert meta["labels"] == ["0", "1", "2", "10"]
    record = json.loads((tmp_path / "out" / "train.jsonl").read_text().splitlines()[0])
    assert record == {"document": "10", "id": "10_s0", "labels": ["10"], "text": "Sentence 10 ."}


def test_strata_are_the_sorted_label_sets():
    records = [{"labels": ["b", "a"]}, {"labels": []}, {"labels": ["a"]}, {"labels": ["a", "b"]}]
    assert [MULTILABEL.stratum(r) for r in records] == [("a", "b"), (), ("a",), ("a", "b")]
    assert sorted(subset_order(records, "multilabel", seed=0)) == [0, 1, 2, 3]


def test_record_checks_every_label():
    check = LabelCheck(["a"], "the configured labels")
    with pytest.raises(ValueError, match="unknown label 'b'"):
        MULTILABEL.record({"text": "x", "labels": ["a", "b"]}, HOC_FIELDS | {"id": None,
                          "labels": "labels"}, "f", check, {}, None)  # fmt: skip


# --- metrics ---


def linkbert_eval_hoc(true_list, pred_list, id_list) -> float:
    """LinkBERT's `src/seqcls/utils_hoc.py` `eval_hoc` (michiyasunaga/LinkBERT), restated:
    per-document sets keyed by the id before its first `_`, then micro P/R/F1 over the cells."""
    data: dict[str, tuple[set, set]] = {}
    for true, pred, key in zip(true_list, pred_list, id_list, strict=True):
        gold_set, pred_set = data.setdefault(key.split("_")[0], (set(), set()))
        gold_set.update(j for j, v in enumerate(true) if v == 1)
        pred_set.update(j for j, v in enumerate(pred) if v == 1)
    tp = sum(len(g & p) for g, p in data.values())
    n_pred = sum(len(p) for _, p in data.values())
    n_gold = sum(len(g) for g, _ in data.values())
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def test_blurb_hoc_score_merges_sentences_per_abstract_by_hand():
    # abstract A: gold {0} + {1}, predicted {} + {0}; abstract B: gold {} + {2}, predicted {2} + {}
    gold = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]])
    pred = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    ids = ["A_s0", "A_s1", "B_s0", "B_s1"]
    scores = multilabel_scores(gold, pred, ["A", "A", "B", "B"])
    # merged: A gold {0,1} pred {0}, B gold {2} pred {2}: tp 2, predicted 2, gold 3
    assert scores["document_precision"] == 1.0
    assert scores["document_recall"] == pytest.approx(2 / 3)
    assert scores["document_micro_f1"] == pytest.approx(0.8)
    assert scores["document_micro_f1"] == pytest.approx(linkbert_eval_hoc(gold, pred, ids))
    # per sentence nothing is right
    assert scores["micro_f1"] == 0.0 and scores["accuracy"] == 0.0
    merged_gold, merged_pred = merge_by_document(gold, pred, ["A", "A", "B", "B"])
    assert merged_gold.tolist() == [[1, 1, 0], [0, 0, 1]]
    assert merged_pred.tolist() == [[1, 0, 0], [0, 0, 1]]


def test_document_score_matches_linkbert_on_random_sentences():
    rng = np.random.default_rng(0)
    gold = (rng.random((200, 10)) < 0.15).astype(int)
    pred = np.where(rng.random((200, 10)) < 0.8, gold, 1 - gold)
    docs = [f"{d}" for d in rng.integers(0, 40, 200)]
    ids = [f"{d}_s{i}" for i, d in enumerate(docs)]
    ours = multilabel_scores(gold, pred, docs)["document_micro_f1"]
    assert ours == pytest.approx(linkbert_eval_hoc(gold, pred, ids))


def test_per_example_scores_match_scikit_learn():
    from sklearn.metrics import f1_score

    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    scores = multilabel_scores(gold, pred)
    assert scores["micro_f1"] == pytest.approx(f1_score(gold, pred, average="micro"))
    assert scores["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert scores["accuracy"] == pytest.approx(1 / 3)
    assert scores["document_micro_f1"] == scores["micro_f1"]  # no documents: each its own


def test_score_uses_the_records_documents_and_predicted_label_ids():
    labels = ["a", "b", "c"]
    records = [
        {"id": "1_s0", "labels": ["a"], "document": "1"},
        {"id": "1_s1", "labels": ["b"], "document": "1"},
        {"id": "2_s0", "labels": [], "document": "2"},
    ]
    scores = MULTILABEL.score(labels, records, [[1], [0], []])
    assert scores["document_micro_f1"] == 1.0 and scores["micro_f1"] == 0.0
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, -0.1, -2.0]])
    assert MULTILABEL.batch_predictions(logits, None) == [[0, 2], []]
    assert MULTILABEL.logits_for_metrics(logits, None).tolist() == [[1, 0, 1], [0, 0, 0]]
    assert MULTILABEL.single_prediction(labels, [[], [], []]) == "no label"
    assert MULTILABEL.single_prediction(labels, [[0, 2], [0, 2]]) == "a, c"
    assert MULTILABEL.single_prediction(labels, [[0], [1]]) is None


# --- head and features ---


def test_head_is_multi_label_and_features_are_float_multi_hot(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = ["a", "b", "c"]
    kwargs = MULTILABEL.head_kwargs(labels)
    assert kwargs["problem_type"] == "multi_label_classification"
    assert kwargs["num_labels"] == 3 and kwargs["id2label"] == {0: "a", 1: "b", 2: "c"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, **kwargs)
    records = [
        {"id": "x", "text": "Aspirin reduces fever .", "labels": ["c", "a"], "document": "x"},
        {"id": "y", "text": "The p53 gene .", "labels": [], "document": "y"},
    ]

    class Encoding:
        max_length = 32

    fs = MULTILABEL.build_features(records, tokenizer, labels, Encoding())
    assert [f["labels"] for f in fs.features] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    feats = [{k: v for k, v in f.items() if k != "length"} for f in fs.features]
    batch = MULTILABEL.collator(tokenizer, None)(feats)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (2, 3)
    with torch.no_grad():
        out = model(**batch)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["labels"])
    assert torch.isclose(out.loss, bce)


# --- probe ---


def _separable(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Features [2, n, 12]: layer 1's first three dimensions decide three labels (> 0.3),
    layer 0 is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, n, 12)).astype(np.float32)
    return x, (x[1, :, :3] > 0.3).astype(int)


def test_one_vs_rest_probe_separates_the_labels_and_its_control_does_not():
    fit = MultiLabelProbeData(*_separable(0, 400), label_names=["a", "b", "c"])
    score = MultiLabelProbeData(*_separable(1, 300), label_names=["a", "b", "c"])
    rows = probe_multilabel(fit, score, {"C": 10.0, "max_iter": 300}, seed=2)
    value = {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}
    assert value[1, "task", "micro_f1"] > 0.9
    assert value[1, "task", "macro_f1"] > 0.9
    assert value[0, "task", "micro_f1"] < 0.6
    assert value[1, "control", "micro_f1"] < 0.6
    assert value[1, "task", "selectivity_micro_f1"] > 0.4
    assert value[1, "task", "selectivity"] == pytest.approx(
        value[1, "task", "accuracy"] - value[1, "control", "accuracy"]
    )
    # several control draws: the control rows are the mean over the draws' shuffles
    hyper = {"C": 10.0, "max_iter": 300}
    drawn = probe_multilabel(fit, score, hyper, seed=2, control_draws=2)
    singles = [probe_multilabel(fit, score, hyper, seed=s) for s in control_seeds(2, 2).values()]
    control = {(r["layer"], r["metric"]): r["value"] for r in drawn if r["target"] == "control"}
    for (layer, metric), v in control.items():
        one = [
            next(r["value"] for r in rows if (r["layer"], r["target"], r["metric"]) == key)
            for rows, key in ((s, (layer, "control", metric)) for s in singles)
        ]
        assert v == pytest.approx(np.mean(one), abs=2e-3)


def test_a_label_constant_in_the_fit_split_is_predicted_constant():
    x, y = _separable(3, 200)
    y[:, 2] = 0  # never present where the probe is fitted
    fit = MultiLabelProbeData(x, y, label_names=["a", "b", "c"])
    rows = probe_multilabel(fit, fit, {}, targets=["task"])
    assert {r["target"] for r in rows} == {"task"}
    assert all(np.isfinite(r["value"]) for r in rows)


def test_probe_hooks_read_the_dump_units_and_the_linear_settings():
    x, y = _separable(4, 150)
    names = ["a", "b", "c"]
    units = {"labels": [[names[k] for k in np.flatnonzero(row)] for row in y], "ids": []}
    data = MULTILABEL.probe_data(x, units, {"labels": names})
    assert (data.targets == y).all()
    settings = ProbeSettings.from_config({"linear": {"C": 1.0, "max_iter": 100}})
    rows = MULTILABEL.probe(data, data, "linear", settings, seed=0, threads=1)
    assert {"selectivity", "selectivity_micro_f1", "selectivity_macro_f1"} <= {
        r["metric"] for r in rows
    }
    with pytest.raises(ValueError, match="0/1"):
        MultiLabelProbeData(x, y * 2, label_names=names)


# --- fine-tuning learns label sets ---

#: a hallmark-like label per keyword; a sentence holds none, one or two of them
KEYWORDS = {"0": "angiogenesis", "1": "apoptosis", "2": "metastasis"}
FILLERS = [
    "the cohort was followed for five years",
    "samples were stained and imaged",
    "expression was measured by western blot",
    "mice were treated with the inhibitor",
]


def _keyword_rows(seed: int, n: int, doc_prefix: str) -> str:
    """HoC-format rows whose labels are exactly the keywords their sentence mentions."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        present = sorted(k for k in KEYWORDS if rng.random() < 0.35)
        words = [KEYWORDS[k] for k in present] + [FILLERS[rng.integers(len(FILLERS))]]
        rng.shuffle(words)
        sentence = " and ".join(words).capitalize() + " ."
        cells = ",".join(f"{k}_{int(k in present)}" for k in KEYWORDS)
        lines.append(f"{cells}\t{sentence}\t{doc_prefix}{i // 4}_s{i % 4}\n")
    return HEADER + "".join(lines)


def test_fine_tuning_learns_keyword_labels_through_the_multi_label_head(tmp_path, minilm_dir):
    """The whole fine-tuning path (subsets, Trainer, BCE head, the 0.5 threshold, the
    per-document score) on a task MiniLM can learn from 96 sentences: each label is a keyword."""
    from bioprobe.data import load_split, write_subsets
    from bioprobe.models import resolve_model
    from bioprobe.pipeline.jobs import job_at
    from bioprobe.settings import TrainingSettings
    from bioprobe.training.finetune import finetune

    for split, (seed, n) in {"train": (0, 96), "dev": (1, 32), "test": (2, 64)}.items():
        write(tmp_path, f"{split}.tsv", _keyword_rows(seed, n, f"{split}"))
    cfg = hoc_task(tmp_path)
    config = validate_config({"tasks": {"kw": cfg}, "models": {"m": {"source": str(minilm_dir)}}})
    prepare_task(config["tasks"]["kw"], tmp_path / "data", "kw")
    write_subsets(load_split(tmp_path / "data", "train"), "multilabel", 1, tmp_path / "sub.json")
    training = {"epochs": 4, "learning_rate": 1.0e-4, "batch_size": 8, "max_length": 32}
    result = finetune(
        job_at(tmp_path / "data", resolve_model("m", config["models"]["m"]), 1),
        subset_file=tmp_path / "sub.json",
        size=100,
        training=TrainingSettings.from_config({**training, "select_best": False}),
        out_dir=tmp_path / "model",
        checkpoint_dir=tmp_path / "ckpt",
        score_splits=("test",),
    )
    scores = result["evaluation"]["scores"]["test"]
    assert scores["micro_f1"] >= 0.9, scores
    assert scores["document_micro_f1"] >= 0.9, scores
