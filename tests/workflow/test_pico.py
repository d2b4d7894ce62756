"""PICO and NER's `single` label scheme end to end through `snakemake`: a written EBM-NLP-like
corpus (BLURB's layout, IO tags) and the demo NER corpus with every type merged into ENTITY, a
tiny scratch BERT, full fine-tuning and LoRA, best-checkpoint selection on PICO's word-level
macro-F1, and every table carrying the rows of each task's metric."""

import copy
import json

import pandas as pd
import pytest

from bioprobe.data import demo

from .conftest import TINY_CONFIG, snakemake, table, write_config

pytestmark = pytest.mark.workflow

MODEL = "tiny-bert"
PICO_DIR = "data/pico"
CONFIG = {
    "tasks": {
        "demo-pico": demo.task_config("pico", PICO_DIR),
        "demo-ner-single": {
            **demo.task_config("ner", "resources/demo/ner"),
            "label_scheme": "single",
        },
    },
    "models": {MODEL: TINY_CONFIG["models"][MODEL]},
    "methods": {"full": {}, "lora": {"r": 2}},
    "sizes": [0, 50],
    "seeds": [1],
    # select_best: the Trainer keeps the checkpoint with the best validation selection metric
    "training": {**copy.deepcopy(TINY_CONFIG["training"]), "select_best": True, "save_steps": None},
    # bio: PICO must probe its types all the same; the single scheme's B-/I- give entity F1
    "probe": {"label_mode": "bio"},
    "attention": {"max_examples": 8},
}
VARIANTS = {("pretrained", 0), ("random-init", 0), ("full", 50), ("lora", 50)}
#: the tables asked for (figures and the report read them; they are other tests' concern)
TABLES = ("downstream", "probes", "representation_similarity")


@pytest.fixture(scope="module")
def pico_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pico-run")
    demo.write_demo_pico(workdir / PICO_DIR, n_train=60, n_validation=20, n_test=20)
    write_config(workdir, CONFIG)
    targets = [f"results/tables/{name}.tsv" for name in TABLES]
    result = snakemake(workdir, "--cores", "2", *targets)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def variants(df: pd.DataFrame) -> set:
    return set(zip(df.method, df["size"], strict=True))


def test_pico_is_scored_by_word_macro_f1_for_every_method(pico_run):
    down = table(pico_run, "downstream")
    pico = down[(down.task == "demo-pico") & (down.split == "test")]
    for metric in ("word_macro_f1", "word_f1/PAR", "word_f1/INT", "word_f1/OUT", "span_macro_f1"):
        rows = pico[pico.metric == metric]
        assert variants(rows) == VARIANTS - {("random-init", 0)}, metric
        assert rows.value.between(0, 1).all()
    assert not pico.metric.str.startswith("entity").any()
    trained = pico[(pico.metric == "word_macro_f1") & (pico.method == "full")].value.item()
    assert trained > 0  # the all-O baseline scores 0


def test_the_best_checkpoint_is_chosen_on_word_macro_f1(pico_run):
    run = pico_run / "results" / "models" / "demo-pico" / MODEL / "full" / "size50" / "seed1"
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert 0 <= metrics["best_validation_word_macro_f1"] <= 1
    labels = json.loads((pico_run / "results" / "data" / "demo-pico" / "labels.json").read_text())
    assert labels["labels"] == ["O", "I-INT", "I-OUT", "I-PAR"]
    assert labels["label_scheme"] == "io"


def test_single_scheme_scores_one_entity_type(pico_run):
    down = table(pico_run, "downstream")
    ner = down[(down.task == "demo-ner-single") & (down.split == "test")]
    assert variants(ner[ner.metric == "entity_f1"]) == VARIANTS - {("random-init", 0)}
    per_type = {m for m in ner.metric if m.startswith("entity_f1/")}
    assert per_type <= {"entity_f1/ENTITY"}  # never Disease or Chemical
    labels = json.loads(
        (pico_run / "results" / "data" / "demo-ner-single" / "labels.json").read_text()
    )
    assert labels["labels"] == ["O", "B-ENTITY", "I-ENTITY"]


def test_probes_carry_pico_metric_and_its_selectivity(pico_run):
    probes = table(pico_run, "probes")
    pico = probes[probes.task == "demo-pico"]
    for metric, targets in (
        ("token_macro_f1", {"task", "control"}),
        ("selectivity_token_macro_f1", {"task"}),
    ):
        rows = pico[pico.metric == metric]
        assert variants(rows) == VARIANTS, metric
        assert set(rows.layer) == {0, 1, 2} and set(rows.target) == targets
        assert rows.value.notna().all()
    assert not pico.metric.str.startswith("entity").any()  # label_mode bio, IO tags: types
    ner = probes[probes.task == "demo-ner-single"]
    assert "entity_f1" in set(ner.metric)  # the single scheme keeps B-/I-


def test_cka_compares_every_trained_variant(pico_run):
    similarity = table(pico_run, "representation_similarity")
    assert set(similarity.metric) == {"cka", "procrustes", "svcca"}
    cka = similarity[similarity.metric == "cka"]
    for task in CONFIG["tasks"]:
        rows = cka[cka.task == task]
        assert variants(rows) == VARIANTS - {("pretrained", 0)}
        assert set(rows.layer) == {0, 1, 2} and rows.value.between(0, 1 + 1e-6).all()
