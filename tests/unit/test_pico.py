"""PICO (EBM-NLP as BLURB ships it) and NER's `single` label scheme: IO tags read with their
`-DOCSTART- (PMID)` lines, a B- tag named by file and line, BLURB's word-level macro-F1 by hand
and against scikit-learn, LinkBERT's span-level macro-F1 against seqeval's default mode, the
Trainer's and `score`'s metrics, the probes, the demo corpus and the config."""

from __future__ import annotations

import random
from itertools import chain
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from seqeval.metrics import classification_report
from sklearn.metrics import f1_score

from bioprobe import tasks
from bioprobe.config import validate_config
from bioprobe.data import demo, load_split, prepare_task
from bioprobe.data.readers import convert_tag, read_bio_tsv
from bioprobe.errors import ConfigError, InputError
from bioprobe.metrics import pico_scores
from bioprobe.probing import ProbeData
from bioprobe.settings import ProbeSettings

PICO = tasks.get("pico")
LABELS = ["O", "I-INT", "I-OUT", "I-PAR"]
TYPES = ["INT", "OUT", "PAR"]
SPLITS = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}

# BLURB's layout: `-DOCSTART- (PMID)`, a blank line, sentences separated by blank lines
EBM = (
    "-DOCSTART- (10037531)\n"
    "\n"
    "Xylitol\tI-INT\n"
    "for\tO\n"
    "acute\tI-PAR\n"
    "otitis\tI-PAR\n"
    ".\tO\n"
    "\n"
    "-DOCSTART- (10052279)\n"
    "\n"
    "Pre-operative\tI-INT\n"
    "rehabilitation\tI-INT\n"
    "\n"
    "Mortality\tI-OUT\n"
    "fell\tO\n"
    "\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pico_task(root: Path, train: str = EBM, dev: str = EBM, test: str = EBM, **cfg) -> dict:
    for name, text in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", test)):
        write(root / name, text)
    return {"type": "pico", "format": "bio-tsv", "path": str(root), "splits": SPLITS, **cfg}


def config(task: dict) -> dict:
    return {"tasks": {"t": task}, "models": {"m": {"source": "bert-base-cased"}}}


# --- reading ---


def test_ebm_layout_reads_sentences_without_docstart_lines(tmp_path):
    records = read_bio_tsv(write(tmp_path / "dev.tsv", EBM), "io", split="validation")
    assert [r["tokens"] for r in records] == [
        ["Xylitol", "for", "acute", "otitis", "."],
        ["Pre-operative", "rehabilitation"],
        ["Mortality", "fell"],
    ]
    assert records[0]["tags"] == ["I-INT", "O", "I-PAR", "I-PAR", "O"]
    assert records[2]["id"] == "validation-000002"


def test_prepare_keeps_io_tags_and_writes_the_io_scheme(tmp_path):
    meta = prepare_task(pico_task(tmp_path / "raw"), tmp_path / "out", "ebm")
    assert meta == {
        "task_type": "pico",
        "labels": LABELS,
        "label_scheme": "io",
        "entity_types": TYPES,
        "counts": {"train": 3, "validation": 3, "test": 3},
    }
    assert load_split(tmp_path / "out", "test")[1]["tags"] == ["I-INT", "I-INT"]


@pytest.mark.parametrize("split", ["train.tsv", "test.tsv"])
def test_a_b_tag_names_its_file_and_line(tmp_path, split):
    bad = EBM.replace("otitis\tI-PAR", "otitis\tB-PAR")
    task = pico_task(tmp_path / "raw", **{split.removesuffix(".tsv"): bad})
    with pytest.raises(InputError) as info:
        prepare_task(task, tmp_path / "out", "ebm")
    message = str(info.value)
    assert f"{split}:6" in message and "'B-PAR'" in message and "IO" in message


def test_stratum_is_the_set_of_types_present():
    record = {"tokens": ["a", "b", "c"], "tags": ["I-PAR", "O", "I-INT"]}
    assert PICO.stratum(record) == ("INT", "PAR")


# --- NER's single scheme ---


@pytest.mark.parametrize(
    ("tag", "single"),
    [("O", "O"), ("B-protein", "B-ENTITY"), ("I-cell_line", "I-ENTITY"), ("I-DNA", "I-ENTITY")],
)
def test_single_scheme_merges_every_type(tag, single):
    assert convert_tag(tag, "single") == single


def test_single_scheme_prepares_one_entity_type(tmp_path):
    text = "IL-2\tB-protein\ngene\tI-protein\nin\tO\nT\tB-cell_type\ncells\tI-cell_type\n\n"
    root = tmp_path / "raw"
    for name in ("train.tsv", "devel.tsv", "test.tsv"):
        write(root / name, text)
    task = {
        "type": "ner",
        "format": "bio-tsv",
        "path": str(root),
        "splits": {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"},
        "label_scheme": "single",
    }
    meta = prepare_task(task, tmp_path / "out", "jnlpba")
    assert meta["labels"] == ["O", "B-ENTITY", "I-ENTITY"]
    assert meta["label_scheme"] == "single" and meta["entity_types"] == ["ENTITY"]
    tags = load_split(tmp_path / "out", "train")[0]["tags"]
    assert tags == ["B-ENTITY", "I-ENTITY", "O", "B-ENTITY", "I-ENTITY"]


def test_single_scheme_collapses_explicit_labels(tmp_path):
    task = {
        "type": "ner",
        "format": "bio-tsv",
        "path": "x",
        "splits": {"train": "a", "validation": "b", "test": "c"},
        "label_scheme": "single",
        "labels": ["O", "B-DNA", "I-DNA", "B-RNA", "I-RNA"],
    }
    cfg = validate_config(config(task))["tasks"]["t"]
    assert tasks.get("ner").config_labels(cfg, "k") == ["O", "B-ENTITY", "I-ENTITY"]


# --- config ---


def test_pico_config_validates_with_its_defaults(tmp_path):
    cfg = validate_config(config(pico_task(tmp_path)))["tasks"]["t"]
    assert cfg["label_scheme"] == "bio"  # the schema's default: tags as written


def test_pico_rejects_a_label_scheme():
    task = {"type": "pico", "format": "bio-tsv", "path": "x", "splits": SPLITS}
    task["label_scheme"] = "type"
    with pytest.raises(ConfigError, match=r"tasks\.t\.label_scheme.*IO"):
        validate_config(config(task))


def test_pico_rejects_a_b_tag_among_explicit_labels():
    task = {"type": "pico", "format": "bio-tsv", "path": "x", "splits": SPLITS}
    task["labels"] = ["O", "I-PAR", "B-PAR"]
    with pytest.raises(ConfigError, match=r"tasks\.t\.labels.*'B-PAR'"):
        validate_config(config(task))


def test_pico_cannot_be_read_from_a_pair_format():
    task = {"type": "pico", "format": "pairs-jsonl", "path": "x", "splits": SPLITS}
    with pytest.raises(ConfigError, match=r"tasks\.t\.format"):
        validate_config(config(task))


# --- the metric ---


def test_word_and_span_macro_f1_by_hand():
    gold = [["I-PAR", "I-PAR", "O", "I-INT"], ["I-OUT", "O"]]
    pred = [["I-PAR", "O", "O", "I-OUT"], ["I-OUT", "I-OUT"]]
    s = pico_scores(gold, pred, TYPES)
    # words: PAR tp 1, gold 2, pred 1 -> 2/3; INT tp 0 -> 0; OUT tp 1, gold 1, pred 3 -> 1/2
    assert s["word_f1/PAR"] == pytest.approx(2 / 3)
    assert s["word_f1/INT"] == 0.0
    assert s["word_f1/OUT"] == pytest.approx(1 / 2)
    assert s["word_macro_f1"] == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    # spans (runs of one type): no predicted span matches a gold one exactly
    assert s["span_macro_f1"] == 0.0
    exact = pico_scores(gold, gold, TYPES)
    assert exact["word_macro_f1"] == exact["span_macro_f1"] == 1.0


def test_spans_are_runs_of_one_type():
    gold = [["I-PAR", "I-PAR", "O", "I-PAR", "I-INT"]]  # PAR spans (0-1), (3); INT (4)
    pred = [["I-PAR", "I-PAR", "I-PAR", "I-PAR", "I-INT"]]  # one PAR span (0-3); INT (4)
    s = pico_scores(gold, pred, ["INT", "PAR"])
    assert s["span_f1/INT"] == 1.0 and s["span_f1/PAR"] == 0.0
    assert s["word_f1/PAR"] == pytest.approx(2 * 3 / (3 + 4))


def random_tags(rng: random.Random, n_sentences: int, weights) -> list[list[str]]:
    return [rng.choices(LABELS, weights=weights, k=rng.randint(1, 12)) for _ in range(n_sentences)]


@pytest.mark.parametrize("seed", range(5))
def test_word_macro_f1_is_sklearns_macro_f1_over_p_i_o(seed):
    rng = random.Random(seed)
    gold = random_tags(rng, 40, [6, 1, 2, 1])
    pred = [[t if rng.random() < 0.6 else rng.choice(LABELS) for t in s] for s in gold]
    # a class never predicted (seed 0), or in neither gold nor predictions (seed 1), counts as 0
    drop = {0: ("I-INT", [pred]), 1: ("I-PAR", [gold, pred])}.get(seed)
    if drop:
        for seqs in drop[1]:
            seqs[:] = [["O" if t == drop[0] else t for t in s] for s in seqs]
    flat_gold, flat_pred = list(chain.from_iterable(gold)), list(chain.from_iterable(pred))
    for classes in (["I-PAR", "I-INT", "I-OUT"], ["I-OUT", "I-INT", "I-PAR"]):
        expected = f1_score(flat_gold, flat_pred, labels=classes, average="macro", zero_division=0)
        assert pico_scores(gold, pred, TYPES)["word_macro_f1"] == pytest.approx(expected)
    per_class = f1_score(flat_gold, flat_pred, labels=LABELS[1:], average=None, zero_division=0)
    for label, value in zip(LABELS[1:], per_class, strict=True):
        assert pico_scores(gold, pred, TYPES)[f"word_f1/{label[2:]}"] == pytest.approx(value)


@pytest.mark.parametrize("seed", range(3))
def test_span_macro_f1_is_linkberts_seqeval_macro(seed):
    """LinkBERT: seqeval's default mode on the IO tags, the mean of each type's F1."""
    rng = random.Random(seed)
    gold = random_tags(rng, 40, [4, 1, 1, 1])
    pred = [[t if rng.random() < 0.8 else rng.choice(LABELS) for t in s] for s in gold]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    linkbert = np.mean([report[t]["f1-score"] for t in TYPES])
    assert pico_scores(gold, pred, TYPES)["span_macro_f1"] == pytest.approx(linkbert)


def test_the_all_o_baseline_scores_zero():
    gold = [["I-PAR", "O", "I-INT"], ["I-OUT"]]
    pred = [["O"] * 3, ["O"]]
    s = pico_scores(gold, pred, TYPES)
    assert s["word_macro_f1"] == 0.0 and s["span_macro_f1"] == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        pico_scores([["O", "O"]], [["O"]], TYPES)


# --- the task type's scores ---


def test_score_predicts_o_for_truncated_words():
    records = [{"id": "a", "tokens": ["x", "y", "z"], "tags": ["I-PAR", "I-PAR", "I-OUT"]}]
    scores = PICO.score(LABELS, records, [[3, 3]])  # z was cut off: predicted O
    assert scores["word_f1/PAR"] == 1.0 and scores["word_f1/OUT"] == 0.0
    assert scores["word_macro_f1"] == pytest.approx(1 / 3)
    assert "entity_f1" not in scores


def test_trainer_metrics_read_first_sub_tokens_only():
    gold = np.array([[-100, 3, -100, 0, 2, -100], [-100, 1, 1, -100, -100, -100]])
    pred = np.array([[0, 3, 1, 0, 2, 0], [2, 1, 0, 2, 2, 2]])
    scores = PICO.compute_metrics(LABELS)(SimpleNamespace(predictions=pred, label_ids=gold))
    assert scores["word_f1/PAR"] == scores["word_f1/OUT"] == 1.0
    assert scores["word_f1/INT"] == pytest.approx(2 / 3)
    assert scores[PICO.selection_metric] == pytest.approx((1 + 1 + 2 / 3) / 3)


def test_metric_hooks():
    assert PICO.main_metric == PICO.selection_metric == PICO.blurb_metric == "word_macro_f1"
    assert PICO.blurb_category == "PICO"
    assert tasks.REGISTRY["pico"] is PICO
    assert "pico" in tasks.formats()["bio-tsv"] and "pico" in tasks.formats()["hf"]


# --- probes ---


def pico_probe_data(seed: int, n_sent: int, n_layers: int = 3, h: int = 16) -> ProbeData:
    """Word rows with IO tags; the last layer encodes the tag, layer 0 is noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, n_sent)
    tags = rng.integers(0, len(LABELS), int(lengths.sum()))
    centers = np.random.default_rng(99).normal(size=(len(LABELS), h)) * 3
    layers = [
        centers[tags] * (layer / (n_layers - 1)) + rng.normal(size=(len(tags), h))
        for layer in range(n_layers)
    ]
    feats = np.stack(layers).astype(np.float32)
    words = [f"w{i}" for i in rng.integers(0, 30, len(tags))]
    return ProbeData(feats, tags, LABELS, sentence_lengths=lengths, word_types=words)


@pytest.mark.parametrize("label_mode", ["bio", "type"])
def test_probes_score_types_whatever_the_label_mode(label_mode):
    fit, score = pico_probe_data(0, 80), pico_probe_data(1, 60)
    settings = ProbeSettings(label_mode=label_mode, linear={"C": 1.0})
    rows = PICO.probe(fit, score, "linear", settings, seed=0, threads=1)
    value = {(r["layer"], r["target"], r["metric"]): r["value"] for r in rows}
    assert not any(m.startswith("entity") for (_, _, m) in value)  # no strict IOB2 on IO runs
    assert value[(2, "task", "token_macro_f1")] > 0.9 > value[(0, "task", "token_macro_f1")]
    for layer in range(3):
        assert value[(layer, "task", "selectivity_token_macro_f1")] == pytest.approx(
            value[(layer, "task", "token_macro_f1")] - value[(layer, "control", "token_macro_f1")]
        )
    other = "type" if label_mode == "bio" else "bio"
    settings = ProbeSettings(label_mode=other, linear={"C": 1.0})
    again = PICO.probe(fit, score, "linear", settings, seed=0, threads=1)
    assert again == rows  # IO tags and types are one to one


def test_probes_without_control_have_no_selectivity():
    fit, score = pico_probe_data(0, 40), pico_probe_data(1, 30)
    rows = PICO.probe(fit, score, "linear", ProbeSettings(control=False), seed=0, threads=1)
    assert {r["target"] for r in rows} == {"task"}
    assert not any(r["metric"].startswith("selectivity") for r in rows)


# --- the demo corpus ---


def test_demo_pico_is_blurbs_layout_and_deterministic(tmp_path):
    paths = demo.write_demo_pico(tmp_path / "a", seed=3, n_train=6, n_validation=3, n_test=2)
    again = demo.write_demo_pico(tmp_path / "b", seed=3, n_train=6, n_validation=3, n_test=2)
    assert all(paths[s].read_bytes() == again[s].read_bytes() for s in paths)
    pmids = []
    for split, n in (("train", 6), ("validation", 3), ("test", 2)):
        lines = paths[split].read_text(encoding="utf-8").split("\n")
        starts = [i for i, line in enumerate(lines) if line.startswith("-DOCSTART-")]
        assert len(starts) == n and starts[0] == 0
        assert all(lines[i + 1] == "" for i in starts)  # BLURB: a blank line after each
        pmids += [lines[i].removeprefix("-DOCSTART- (").removesuffix(")") for i in starts]
        tags = {line.split("\t")[1] for line in lines if "\t" in line}
        assert tags == set(LABELS)
    assert len(set(pmids)) == len(pmids) and all(p.isdigit() and len(p) == 8 for p in pmids)


def test_demo_pico_prepares_and_keeps_train_only_spans_out_of_test(tmp_path):
    raw = tmp_path / "raw"
    demo.write_corpus("pico", raw, n_train=30, n_validation=10, n_test=10)
    meta = prepare_task(demo.task_config("pico", str(raw)), tmp_path / "out", "pico")
    assert meta["labels"] == LABELS and meta["counts"]["train"] > 30
    test_text = " ".join(" ".join(r["tokens"]) for r in load_split(tmp_path / "out", "test"))
    for pools in demo.PICO_SPANS.values():
        assert not any(f" {span} " in f" {test_text} " for span in pools["train"])
