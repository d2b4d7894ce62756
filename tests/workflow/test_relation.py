"""The relation task type end to end through `snakemake`: a GAD-style corpus written by the
demo, a tiny scratch encoder and decoder, full fine-tuning and LoRA with model selection on
BLURB's positive-class micro-F1, and every analysis stage on the entity-pooled dumps."""

import copy
import json

import numpy as np
import pytest

from bioprobe.data.demo import task_config, write_demo_relation

from .conftest import TINY_CONFIG, snakemake, table, write_config

pytestmark = pytest.mark.workflow

TASK = "demo-relation"
MODELS = sorted(TINY_CONFIG["models"])
CONFIG = {
    "tasks": {TASK: task_config("relation", "raw/relation")},
    "models": copy.deepcopy(TINY_CONFIG["models"]),
    "methods": {"full": {}, "lora": {"r": 2}},
    "sizes": [0, 50],
    "seeds": [1],
    # selection on the validation split: the Trainer reads `positive_micro_f1` every epoch
    "training": {
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 1.0e-3,
        "max_length": 64,
        "select_best": True,
    },
    "attention": {"max_examples": 8},
}
FINE_TUNED = {"full", "lora"}
VARIANTS = {"pretrained", "random-init", *FINE_TUNED}
#: the representation-similarity figures are named after their measures
FIGURES = [
    "downstream",
    "probes",
    "attention_by_layer",
    "correlations",
    "cka",
    "procrustes",
    "svcca",
]


@pytest.fixture(scope="module")
def relation_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("relation-run")
    write_demo_relation(workdir / "raw" / "relation", n_train=160, n_validation=64, n_test=64)
    write_config(workdir, CONFIG)
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def test_downstream_scores_carry_the_blurb_relation_metric(relation_run):
    down = table(relation_run, "downstream")
    test = down[(down.task == TASK) & (down.split == "test")]
    for metric in ("positive_micro_f1", "positive_precision", "positive_recall", "macro_f1"):
        got = test[test.metric == metric]
        assert set(got.model) == set(MODELS)
        assert set(got.method) == {"pretrained", *FINE_TUNED}
        assert got.value.between(0, 1).all()
    metrics = json.loads(
        (relation_run / "results" / "models" / TASK / "tiny-bert" / "full" / "size50" / "seed1")
        .joinpath("train_metrics.json")
        .read_text()
    )
    assert "best_validation_positive_micro_f1" in metrics


def test_probes_cka_and_attention_cover_every_variant(relation_run):
    probes = table(relation_run, "probes")
    probes = probes[probes.task == TASK]
    for model in MODELS:
        for method in VARIANTS:
            p = probes[(probes.model == model) & (probes.method == method)]
            f1 = p[p.metric == "positive_micro_f1"]
            assert set(f1.target) == {"task", "control"} and set(f1.layer) == {0, 1, 2}
            assert f1.value.between(0, 1).all()
            assert (p.metric == "selectivity_positive_micro_f1").sum() == 3
    similarity = table(relation_run, "representation_similarity")
    cka = similarity[similarity.metric == "cka"]
    attention = table(relation_run, "attention_similarity")
    for model in MODELS:
        for method in VARIANTS - {"pretrained"}:
            c = cka[(cka.task == TASK) & (cka.model == model) & (cka.method == method)]
            assert list(c.layer) == [0, 1, 2] and c.value.between(-1e-6, 1 + 1e-6).all()
            a = attention[
                (attention.task == TASK) & (attention.model == model) & (attention.method == method)
            ]
            assert {"cosine", "js_divergence", "entropy"} <= set(a.metric)
            assert a.value.notna().all()


def test_dumps_hold_two_entity_vectors_per_sentence(relation_run):
    dump = relation_run / "results" / "dumps" / TASK / "tiny-gpt2" / "full" / "size50" / "seed1"
    meta = json.loads((dump / "meta.json").read_text())
    assert meta["settings"]["relation_pooling"] == "entity"
    assert meta["splits"]["test"]["placeholder_fallbacks"] == 0
    hidden = np.load(dump / "test.hidden.npy", mmap_mode="r")
    assert hidden.shape == (3, 64, 2 * 32) and np.isfinite(hidden).all()


def test_figures_are_drawn(relation_run):
    for name in FIGURES:
        for ext in ("png", "pdf"):
            path = relation_run / "results" / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
