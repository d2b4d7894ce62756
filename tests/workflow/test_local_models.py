"""A model of your own (`source: /path/to/dir`) in the real workflow: replacing one of its files
re-runs its jobs, and a directory that cannot give right results stops the workflow before any
job, with one error naming the config key."""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path

import pytest

from bioprobe.data import demo
from bioprobe.models import build_scratch

from .conftest import TINY_CONFIG, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

SCRATCH = {**TINY_CONFIG["models"]["tiny-bert"]["scratch"], "max_position": 128}
RUN = "demo-ner/mine/pretrained/size0/seed1"
TARGETS = ["results/tables/downstream.tsv", f"results/dumps/{RUN}"]
MODEL_JOBS = {"finetune": 1, "evaluate": 1, "extract": 1}


def build_model(out: Path, seed: int) -> Path:
    """A tiny BERT saved as a model directory of one's own (config, tokenizer, weights)."""
    rng = random.Random(0)
    corpus = [" ".join(demo.ner_sentence(rng, "train")[0]) for _ in range(200)]
    build_scratch(SCRATCH, corpus, out, seed=seed)
    return out


def local_config(model: Path, **training) -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["tasks"] = {"demo-ner": config["tasks"]["demo-ner"]}
    config["models"] = {"mine": {"source": str(model)}}
    config["training"].update(training)
    config["random_init"] = False
    return config


def run(workdir: Path, *args: str):
    # the digest cache of the model's files, kept out of the home directory
    env = {"XDG_CACHE_HOME": str(workdir / "cache")}
    return snakemake(workdir, *args, *TARGETS, env=env)


def test_replacing_a_local_models_weights_reruns_its_jobs(tmp_path):
    """Before: the model directory was no input of any job, so nothing re-ran."""
    model = build_model(tmp_path / "model", seed=0)
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_config(workdir, local_config(model))
    result = run(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert planned_jobs(run(workdir, "-n")) == {}

    weights = model / "model.safetensors"
    weights.touch()  # the same bytes (a reinstalled package, a copy): nothing to redo
    assert planned_jobs(run(workdir, "-n")) == {}

    other = build_model(tmp_path / "retrained", seed=1)
    shutil.copyfile(other / "model.safetensors", weights)  # same size, other weights
    planned = planned_jobs(run(workdir, "-n"))
    assert {rule: planned.get(rule) for rule in MODEL_JOBS} == MODEL_JOBS, planned


def _without_tokenizer(model: Path) -> tuple[dict, str]:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model / name).unlink()
    return local_config(model), "config key 'models.mine.source': "


def _truncated(model: Path) -> tuple[dict, str]:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return local_config(model), f"config key 'models.mine.source': {weights}: "


def _too_long(model: Path) -> tuple[dict, str]:
    return local_config(model, max_length=512), "config key 'training.max_length': 512 tokens"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_without_tokenizer, "has no tokenizer files"),
        (_truncated, "truncated"),
        (_too_long, "cover 128 (max_position_embeddings 128)"),
    ],
    ids=["no-tokenizer", "truncated-weights", "max-length"],
)
def test_a_model_that_cannot_give_right_results_stops_before_any_job(tmp_path, make, says):
    config, starts = make(build_model(tmp_path / "model", seed=0))
    write_config(tmp_path, config)
    result = run(tmp_path, "--cores", "2")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    line = next((x for x in output.splitlines() if x.startswith(starts)), None)
    assert line is not None and says in line, output[-3000:]
    assert not (tmp_path / "results").exists()
