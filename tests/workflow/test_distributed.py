"""One fine-tuning job on two processes (torchrun, gloo on the CPU) trains as one process does.

Library level, like test_families: a tiny scratch BERT (dropout off, so that the only
randomness is the data order) on the demo NLI pairs. `batch_size` is the batch of an optimiser
step over all processes, so two processes take 1 example each where one takes 2: the same
effective batch, the same examples in every step. Equal trajectories show
- the data order: the length-grouped sampler groups by the batch of all processes. (Its
  megabatches hold min(50, n / 4b) batches of b: 416 examples tell b = 2 from b = 1 apart,
  fewer than 400 would not);
- the loss scale: each micro-batch's mean, averaged over the processes;
- the gradient all-reduce; and equal weights, that rank 0 saved one model from the whole of it.

On a CPU, strategy fsdp trains as DDP (accelerate shards on GPUs only): the FSDP case runs where
two or more GPUs are (NCCL; fp32, so that the tolerances hold), and is skipped here. A machine
with one GPU cannot run two processes: the module is skipped there.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bioprobe.config import validate_config
from bioprobe.data import prepare_task, write_subsets
from bioprobe.data.demo import task_config, write_demo_nli
from bioprobe.data.prepare import corpus_text, load_split
from bioprobe.errors import BioprobeError
from bioprobe.models import build_scratch, resolve_model
from bioprobe.pipeline.jobs import job_at
from bioprobe.settings import TrainingSettings
from bioprobe.training.finetune import finetune
from bioprobe.training.launch import launch_dir

from .conftest import TINY_CONFIG, snakemake, write_config
from .test_families import SCRATCH as FAMILY_SCRATCH

GPUS = torch.cuda.device_count()
pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(GPUS == 1, reason="two processes need two GPUs, or none (the CPU)"),
]

SCRATCH = {"family": "bert", **FAMILY_SCRATCH}  # test_families' tiny shape
TRAINING = {
    "epochs": 1,
    "batch_size": 2,
    "learning_rate": 1e-3,
    "max_length": 64,
    "logging_steps": 16,
    "select_best": True,  # distributed evaluation each epoch, then the best checkpoint loaded
    "precision": "fp32",  # on GPUs too (bf16 would need tolerances of its own)
}
# float32 sums in another order (each process reduces its half of the batch, the all-reduce
# adds the halves) are all that separates the runs: measured over 208 steps on the CPU, losses
# agree to 2.2e-7 (relative) and weights to 1.1e-6. What this guards against is
# far larger: the Trainer's loss scaled by the process count doubled every loss (and
# gradient); a data order grouped by one process's batch moved the losses by up to 6e-3.
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 2e-5


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    write_demo_nli(root / "raw", n_train=416, n_validation=32, n_test=32)
    config = validate_config(
        {
            "tasks": {"t": {**task_config("pair"), "path": str(root / "raw")}},
            "models": {"m": {"source": "x"}},
        }
    )
    prepare_task(config["tasks"]["t"], root / "data", "t")
    write_subsets(load_split(root / "data", "train"), "pair", 1, root / "subset.json")
    build_scratch(SCRATCH, corpus_text(root / "data" / "train.jsonl"), root / "base", seed=0)
    model_config = json.loads((root / "base" / "config.json").read_text())
    model_config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (root / "base" / "config.json").write_text(json.dumps(model_config))
    return root


def _finetune(root, name, **training):
    spec = resolve_model("m", {"source": "scratch", "scratch": SCRATCH})
    metrics = finetune(
        job_at(root / "data", spec, 1, location=root / "base"),
        subset_file=root / "subset.json",
        size=100,
        training=TrainingSettings(**{**TRAINING, **training}),
        out_dir=root / name,
        checkpoint_dir=root / f"{name}-checkpoints",
        score_splits=("validation", "test"),
    )
    return metrics, root / name


def _losses(run):
    state = json.loads((run / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.fixture(scope="module")
def one_process(prepared):
    return _finetune(prepared, "one")


@pytest.mark.parametrize(
    "strategy",
    [
        "ddp",
        pytest.param(
            "fsdp", marks=pytest.mark.skipif(GPUS < 2, reason="FSDP shards over GPUs only")
        ),
    ],
)
def test_two_processes_train_as_one(prepared, one_process, strategy, capfd):
    one, one_dir = one_process
    two, two_dir = _finetune(prepared, f"two-{strategy}", processes=2, strategy=strategy)

    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["global_steps"] == one["global_steps"] == 208
    assert two["train_examples"] == one["train_examples"] == 416
    assert len(_losses(two_dir)) == 13
    assert _losses(two_dir) == pytest.approx(_losses(one_dir), rel=LOSS_RTOL)
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=LOSS_RTOL)
    assert two["best_validation_macro_f1"] == pytest.approx(one["best_validation_macro_f1"])
    # rank 0 scored the whole model: the same predictions, example by example
    assert two["evaluation"]["predictions"] == one["evaluation"]["predictions"]
    assert two["evaluation"]["scores"] == one["evaluation"]["scores"]
    assert two["parameters_total"] == one["parameters_total"]

    ours, theirs = (
        load_file(two_dir / "model.safetensors"),
        load_file(one_dir / "model.safetensors"),
    )
    assert sorted(ours) == sorted(theirs)
    worst = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    assert worst <= WEIGHT_ATOL, worst

    # one model, saved once, as the single-process path saves it; nothing left behind
    assert sorted(p.name for p in two_dir.iterdir()) == sorted(p.name for p in one_dir.iterdir())
    assert json.loads((two_dir / "train_metrics.json").read_text())["processes"] == 2
    assert not launch_dir(prepared / f"two-{strategy}-checkpoints").exists()
    assert not (prepared / f"two-{strategy}-checkpoints").exists()
    # the job's output holds rank 0's progress, once: no second rank's lines
    out = capfd.readouterr()
    progress = (out.out + out.err).count("step 208/208 (100%)")
    assert progress == 1, out


def _torchrun_children() -> list[int]:
    """The torchrun processes this test process started (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        ppid = int(re.search(r"PPid:\s+(\d+)", status).group(1))
        if ppid == os.getpid() and b"torch.distributed.run" in command:
            found.append(int(entry.name))
    return found


def test_a_killed_run_resumes_where_it_stopped(prepared, one_process):
    """A job of two processes killed after a checkpoint resumes from it (the ranks agree on
    which: rank 0 prepares the checkpoint directory first) and ends with the weights of the
    one-process run that was never interrupted."""
    name = "killed"
    checkpoints = prepared / f"{name}-checkpoints"
    # no selection: one epoch's best checkpoint is its last, as in the one-process run
    settings = {"processes": 2, "save_steps": 50, "select_best": False}
    killed: list[BaseException] = []

    def run():
        try:
            _finetune(prepared, name, **settings)
        except BaseException as exc:  # the launch fails once torchrun is killed
            killed.append(exc)

    first = threading.Thread(target=run)
    first.start()
    while not (checkpoints / "checkpoint-100" / "trainer_state.json").exists():
        assert first.is_alive(), killed
        time.sleep(0.2)
    for pid in _torchrun_children():
        os.kill(pid, signal.SIGTERM)  # torchrun stops its ranks: a job cut short
    first.join(timeout=120)
    assert killed and "fine-tuning on 2 processes failed" in str(killed[0])
    assert not (prepared / name).exists()

    metrics, run_dir = _finetune(prepared, name, **settings)
    assert metrics["resumed_from"] in {"checkpoint-100", "checkpoint-150", "checkpoint-200"}
    ours = load_file(run_dir / "model.safetensors")
    theirs = load_file(one_process[1] / "model.safetensors")
    worst = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    assert worst <= WEIGHT_ATOL, worst


def test_a_failing_rank_fails_the_job_in_one_line(prepared, tmp_path):
    spec = resolve_model("m", {"source": "scratch", "scratch": SCRATCH})
    with pytest.raises(BioprobeError) as failed:
        finetune(
            job_at(prepared / "data", spec, 1, location=tmp_path / "no-such-model"),
            subset_file=prepared / "subset.json",
            size=100,
            training=TrainingSettings(**{**TRAINING, "processes": 2}),
            out_dir=tmp_path / "out",
            checkpoint_dir=tmp_path / "checkpoints",
        )
    message = str(failed.value)
    assert message.startswith("fine-tuning on 2 processes failed: rank "), message
    assert "no-such-model" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    # every rank's log kept for the post-mortem
    logs = launch_dir(tmp_path / "checkpoints")
    assert {"rank0.log", "rank1.log", "torchrun.log"} <= {p.name for p in logs.iterdir()}


def _planned_finetune_gpus(stdout: str) -> dict[tuple[str, str], set[int]]:
    """{(model, method): the `gpu` resources of its planned finetune jobs} from a dry run."""
    gpus: dict[tuple[str, str], set[int]] = {}
    for block in stdout.split("rule finetune:")[1:]:
        model = re.search(r"wildcards: .*model=([\w-]+)", block).group(1)
        method = re.search(r"wildcards: .*method=([\w-]+)", block).group(1)
        gpu = int(re.search(r"resources: .*\bgpu=(\d+)", block).group(1))
        gpus.setdefault((model, method), set()).add(gpu)
    return gpus


def test_plan_gives_a_multi_process_model_one_gpu_per_process(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["models"]["tiny-bert"]["training"] = {"processes": 2, "strategy": "fsdp"}
    config["methods"] = {"full": {}, "lora": {}}
    write_config(tmp_path, config)
    planned = snakemake(tmp_path, "-n", "--cores", "4", timeout=300)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert _planned_finetune_gpus(planned.stdout) == {
        ("tiny-bert", "full"): {2},
        ("tiny-bert", "lora"): {1},  # fsdp shards full fine-tuning; adapters fit one GPU
        ("tiny-gpt2", "full"): {1},
        ("tiny-gpt2", "lora"): {1},
    }

    # a GPU limit below the processes: Snakemake would cap the job's gpu at it silently
    capped = snakemake(tmp_path, "-n", "--cores", "4", "--resources", "gpu=1", timeout=300)
    assert capped.returncode != 0
    assert (
        "config key 'models.tiny-bert.training.processes': 2 processes, one per GPU, but this "
        "run offers 1 GPU(s)" in capped.stdout + capped.stderr
    )
