"""The similarity and multilabel task types end to end through `snakemake`: a BIOSSES-style and
a HoC-style corpus written by the demo (BLURB's TSV layouts), a tiny scratch encoder and
decoder, full fine-tuning and LoRA, and every analysis stage on their dumps."""

import copy
import json
import math

import numpy as np
import pytest

from bioprobe.data.demo import task_config, write_demo_multilabel, write_demo_similarity

from .conftest import TINY_CONFIG, snakemake, table, write_config

pytestmark = pytest.mark.workflow

SIM, HOC = "demo-sim", "demo-hoc"
MODELS = sorted(TINY_CONFIG["models"])
CONFIG = {
    "tasks": {
        SIM: task_config("similarity", "raw/similarity"),
        HOC: task_config("multilabel", "raw/multilabel"),
    },
    "models": copy.deepcopy(TINY_CONFIG["models"]),
    "methods": {"full": {}, "lora": {"r": 2}},
    "sizes": [0, 50],
    "seeds": [1],
    # model selection every epoch: Pearson (similarity) and per-example micro-F1 (multilabel)
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
TABLES = ["downstream", "probes", "representation_similarity", "attention_similarity"]
#: the type's downstream metrics, its probe metric and selectivity rows
DOWNSTREAM = {
    SIM: {"pearson", "spearman", "mse", "r2"},
    HOC: {"document_micro_f1", "document_precision", "document_recall", "micro_f1", "macro_f1"},
}
PROBE = {SIM: ("pearson", "selectivity_pearson"), HOC: ("micro_f1", "selectivity_micro_f1")}


@pytest.fixture(scope="module")
def blurb_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("blurb-types-run")
    write_demo_similarity(workdir / "raw" / "similarity", n_train=64, n_validation=24, n_test=24)
    write_demo_multilabel(workdir / "raw" / "multilabel", n_train=12, n_validation=6, n_test=6)
    write_config(workdir, CONFIG)
    targets = [f"results/tables/{name}.tsv" for name in TABLES]
    result = snakemake(workdir, "--cores", "2", *targets)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def test_prepared_tasks_say_what_they_hold(blurb_run):
    data = blurb_run / "results" / "data"
    sim = json.loads((data / SIM / "labels.json").read_text())
    assert sim["task_type"] == "similarity" and sim["labels"] == [] and sim["target"] == "score"
    hoc = json.loads((data / HOC / "labels.json").read_text())
    assert hoc["task_type"] == "multilabel" and len(hoc["labels"]) == 10
    record = json.loads((data / HOC / "test.jsonl").read_text().splitlines()[0])
    assert record["id"].startswith(record["document"] + "_s")


@pytest.mark.parametrize("task", [SIM, HOC])
def test_downstream_scores_carry_the_blurb_metrics(blurb_run, task):
    down = table(blurb_run, "downstream")
    test = down[(down.task == task) & (down.split == "test")]
    for metric in DOWNSTREAM[task]:
        got = test[test.metric == metric]
        assert set(got.model) == set(MODELS), metric
        assert set(got.method) == {"pretrained", *FINE_TUNED}, metric
        assert got.value.notna().all()
    run = blurb_run / "results" / "models" / task / "tiny-bert" / "full" / "size50" / "seed1"
    metrics = json.loads((run / "train_metrics.json").read_text())
    selection = "pearson" if task == SIM else "micro_f1"
    assert metrics[f"best_validation_{selection}"] is not None


@pytest.mark.parametrize("task", [SIM, HOC])
def test_probes_cka_and_attention_cover_every_variant(blurb_run, task):
    probes = table(blurb_run, "probes")
    probes = probes[probes.task == task]
    metric, selectivity = PROBE[task]
    for model in MODELS:
        for method in VARIANTS:
            p = probes[(probes.model == model) & (probes.method == method)]
            score = p[p.metric == metric]
            assert set(score.target) == {"task", "control"} and set(score.layer) == {0, 1, 2}
            assert score.value.between(-1, 1).all()
            assert (p.metric == selectivity).sum() == 3
    similarity = table(blurb_run, "representation_similarity")
    attention = table(blurb_run, "attention_similarity")
    for model in MODELS:
        for method in VARIANTS - {"pretrained"}:
            s = similarity[
                (similarity.task == task)
                & (similarity.model == model)
                & (similarity.method == method)
            ]
            assert set(s.metric) == {"cka", "procrustes", "svcca"}
            for metric, top in (("cka", 1.0), ("procrustes", math.pi / 2), ("svcca", 1.0)):
                c = s[s.metric == metric]
                assert list(c.layer) == [0, 1, 2]
                # a multilabel encoder's layer 0 is the [CLS] embedding, the same for every
                # text: no measure is defined there (NaN); the decoder's last token and the
                # pair means vary
                constant = task == HOC and model == "tiny-bert"
                assert c.value.iloc[:1].isna().all() == constant
                assert c.value.iloc[1:].between(-1e-6, top + 1e-6).all()
            a = attention[
                (attention.task == task) & (attention.model == model) & (attention.method == method)
            ]
            assert {"cosine", "js_divergence", "entropy"} <= set(a.metric)
            assert a.value.notna().all()


def test_dumps_hold_one_vector_per_unit(blurb_run):
    dumps = blurb_run / "results" / "dumps"
    sim = dumps / SIM / "tiny-gpt2" / "lora" / "size50" / "seed1"
    assert np.load(sim / "test.separate.npy", mmap_mode="r").shape == (3, 24, 2 * 32)
    assert np.load(sim / "test.hidden.npy", mmap_mode="r").shape == (3, 24, 32)
    units = json.loads((sim / "test.units.json").read_text())
    assert len(units["scores"]) == 24 and all(isinstance(s, float) for s in units["scores"])
    hoc = dumps / HOC / "tiny-bert" / "full" / "size50" / "seed1"
    n_test = json.loads((blurb_run / "results" / "data" / HOC / "labels.json").read_text())
    hidden = np.load(hoc / "test.hidden.npy", mmap_mode="r")
    assert hidden.shape == (3, n_test["counts"]["test"], 32) and np.isfinite(hidden).all()
    assert not (hoc / "test.separate.npy").exists()  # one text: nothing to encode apart
