"""Fine-tuning methods end to end through `snakemake`: LoRA, prompt tuning and P-tuning on a
tiny decoder for both task types, every analysis stage, adapters saved small, and a method's
hyper-parameter change re-running that method's jobs only.

The run extends a copy of the session's tiny full-fine-tuning run (only the adapters train).
"""

import copy
import json
import shutil

import pytest

from bioprobe.methods import bitsandbytes_installed, cuda_available

from .conftest import TINY_CONFIG, planned_jobs, snakemake, table, write_config

pytestmark = pytest.mark.workflow

MODEL = "tiny-gpt2"  # a decoder: its sequence head needs the last real token under prompts
ADAPTERS = ["lora", "p-tuning", "prompt-tuning"]
METHODS_CONFIG = copy.deepcopy(TINY_CONFIG)
METHODS_CONFIG["models"] = {MODEL: TINY_CONFIG["models"][MODEL]}
METHODS_CONFIG["methods"] = {
    "full": {},
    "lora": {"r": 2},  # the tiny model's matrices are 32 wide: r 2 is the usual ratio
    "prompt-tuning": {"num_virtual_tokens": 4},
    "p-tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
}
# erasure of a merged LoRA model is a plain model's (tests/unit/test_erasure.py); the tiny
# run erases its full fine-tuning (test_workflow.py): not again here, for CI time
METHODS_CONFIG["erasure"] = {"enabled": False}
TASKS = sorted(METHODS_CONFIG["tasks"])


@pytest.fixture(scope="session")
def methods_run(tiny_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("methods-run") / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # keeps mtimes: full runs are not redone
    write_config(workdir, METHODS_CONFIG)
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "rule finetune" in result.stdout + result.stderr
    return workdir


def model_dir(workdir, task, method):
    return workdir / "results" / "models" / task / MODEL / method / "size50" / "seed1"


def test_every_method_is_scored_and_analysed_on_both_task_types(methods_run):
    downstream = table(methods_run, "downstream")
    test = downstream[downstream.split == "test"]
    for task, metric in (("demo-ner", "entity_f1"), ("demo-nli", "macro_f1")):
        got = test[(test.task == task) & (test.metric == metric)]
        assert set(got.method) == {"pretrained", "full", *ADAPTERS}
    probes = table(methods_run, "probes")
    attention = table(methods_run, "attention_similarity")
    similarity = table(methods_run, "representation_similarity")
    cka = similarity[similarity.metric == "cka"]
    for task in TASKS:
        for method in ADAPTERS:
            p = probes[(probes.task == task) & (probes.method == method)]
            assert set(p.layer) == {0, 1, 2} and p.value.notna().all()
            a = attention[(attention.task == task) & (attention.method == method)]
            assert {"cosine", "js_divergence", "entropy"} <= set(a.metric)
            assert set(a.layer) == {1, 2} and set(a["head"]) == {1, 2}
            assert a.value.notna().all()
            c = cka[(cka.task == task) & (cka.method == method)]
            assert list(c.layer) == [0, 1, 2] and c.value.between(0, 1 + 1e-6).all()


def test_prompt_dumps_keep_the_real_tokens_only(methods_run):
    dumps = methods_run / "results" / "dumps" / "demo-ner" / MODEL
    pretrained = json.loads((dumps / "pretrained" / "size0" / "seed1" / "meta.json").read_text())
    for method in ("prompt-tuning", "p-tuning"):
        meta = json.loads((dumps / method / "size50" / "seed1" / "meta.json").read_text())
        assert meta["settings"]["virtual_tokens"] == 4
        assert meta["attention"]["lengths"] == pretrained["attention"]["lengths"]
        assert meta["splits"] == pretrained["splits"]


def test_adapters_are_saved_as_small_adapters(methods_run):
    for task in TASKS:
        full = model_dir(methods_run, task, "full")
        full_bytes = (full / "model.safetensors").stat().st_size
        full_metrics = json.loads((full / "train_metrics.json").read_text())
        assert full_metrics["parameters_trainable"] == full_metrics["parameters_total"]
        for method, fraction in (("lora", 0.2), ("prompt-tuning", 0.05), ("p-tuning", 0.05)):
            out = model_dir(methods_run, task, method)
            assert not (out / "model.safetensors").exists()
            size = (out / "adapter_model.safetensors").stat().st_size
            assert size < fraction * full_bytes, (method, size, full_bytes)
            metrics = json.loads((out / "train_metrics.json").read_text())
            assert metrics["method"]["kind"] == method
            assert 0 < metrics["parameters_trainable"] < 0.5 * metrics["parameters_total"]
            assert metrics["train_runtime_s"] > 0 and metrics["peak_rss_mb"] > 0


def test_a_method_setting_reruns_that_method_only(methods_run):
    result = snakemake(methods_run, "-n", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result) == {}, result.stdout[-3000:]
    changed = copy.deepcopy(METHODS_CONFIG)
    changed["methods"]["lora"]["r"] = 4
    write_config(methods_run, changed)
    try:
        result = snakemake(methods_run, "-n", "--cores", "2")
    finally:
        write_config(methods_run, METHODS_CONFIG)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    # fine-tuned runs are scored inside finetune; evaluate (size 0) does not depend on a method
    per_task = {"finetune", "extract", "probe", "attention_similarity"}
    per_task.add("representation_similarity")
    assert {rule: jobs.get(rule) for rule in per_task} == dict.fromkeys(per_task, len(TASKS))
    assert "evaluate" not in jobs
    planned = [
        path.strip(",")
        for line in result.stdout.splitlines()
        if line.strip().startswith("output: ")
        for path in line.split()[1:]
    ]
    models = {path.split("/")[4] for path in planned if path.startswith("results/models/")}
    assert models == {"lora"}, planned


@pytest.mark.skipif(
    cuda_available() and bitsandbytes_installed(), reason="this machine can run qlora"
)
def test_qlora_without_cuda_fails_at_validation(tmp_path):
    config = copy.deepcopy(METHODS_CONFIG)
    config["methods"] = {"full": {}, "qlora": {}}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", "--cores", "2")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config key 'methods.qlora'" in output
    assert "CUDA" in output and "bitsandbytes" in output
    assert not (tmp_path / "results").exists()
