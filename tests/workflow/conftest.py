"""Helpers to run the real workflow (`snakemake` as a subprocess) in a scratch directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bioprobe.data import demo

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"

# A tiny grid: both task types on the demo corpus, a scratch encoder and a scratch decoder.
#: scratch LLaMA (decoder) and T5 (encoder-decoder) for the large-model families' and the
#: prompting workflow tests; LLaMA's vocabulary holds 256 byte-fallback tokens besides its pieces
LLM_SCRATCH = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64}
LLM_MODELS = {
    "tiny-llama": {
        "source": "scratch",
        "scratch": {"family": "llama", **LLM_SCRATCH, "vocab_size": 600},
    },
    "tiny-t5": {
        "source": "scratch",
        "scratch": {"family": "t5", **LLM_SCRATCH, "vocab_size": 400},
    },
}
#: zero- and few-shot prompting; random weights generate no newline, so a short answer keeps
#: the NER and PICO generation cheap
PROMPTING = {
    "zero-shot": {"kind": "prompting", "max_new_tokens": 8},
    "few-shot-2": {"kind": "prompting", "shots": 2, "max_new_tokens": 8},
}
TINY_CONFIG = {
    "tasks": {
        "demo-ner": demo.task_config("ner", "resources/demo/ner"),
        "demo-nli": demo.task_config("pair", "resources/demo/nli"),
    },
    "models": {
        "tiny-bert": {
            "source": "scratch",
            "scratch": {
                "family": "bert",
                "hidden_size": 32,
                "num_layers": 2,
                "num_heads": 2,
                "intermediate_size": 64,
                "vocab_size": 500,
            },
        },
        "tiny-gpt2": {
            "source": "scratch",
            "scratch": {
                "family": "gpt2",
                "hidden_size": 32,
                "num_layers": 2,
                "num_heads": 2,
                "intermediate_size": 64,
                "vocab_size": 500,
            },
        },
    },
    "sizes": [0, 50],
    "seeds": [1],
    # checkpoints every 4 steps so that a job killed half-way has one to resume from; no
    # best-checkpoint selection, so the final weights depend on every step after the resume
    "training": {
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 1.0e-3,
        "max_length": 96,
        "save_steps": 4,
        "select_best": False,
    },
    "attention": {"max_examples": 8},
}
# The shared tiny run also sweeps its probes (off by default; the other grids leave it off).
TINY_RUN_CONFIG = {**TINY_CONFIG, "probe_sweep": {"enabled": True}}


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The repository's workflow on `workdir`'s config.yaml, with `workdir` as working directory."""
    return [
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]


def snakemake(
    workdir: Path, *args: str, timeout: int = 1200, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the repository's workflow with `workdir` as working directory.

    Snakemake runs in a session of its own, so a test may kill its whole process group.
    """
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, **(env or {})}
    return subprocess.run(
        snakemake_command(workdir, *args),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def table(workdir: Path, name: str) -> pd.DataFrame:
    """A collected table of a run (results/tables/<name>.tsv)."""
    return pd.read_csv(workdir / "results" / "tables" / f"{name}.tsv", sep="\t")


#: the demo NER and NLI corpora of the LLM-family grids: small enough for tiny models to
#: train, score and prompt in a few minutes
DEMO_CORPUS_SIZES = {"n_train": 80, "n_validation": 40, "n_test": 40}


def run_on_demo_corpora(workdir: Path, config: dict, targets: list[str]) -> Path:
    """The demo NER and NLI corpora written to raw/ner and raw/nli, `config` run to
    `targets` on two cores; a failed run fails the caller with the run's output."""
    demo.write_demo_ner(workdir / "raw" / "ner", **DEMO_CORPUS_SIZES)
    demo.write_demo_nli(workdir / "raw" / "nli", **DEMO_CORPUS_SIZES)
    write_config(workdir, config)
    result = snakemake(workdir, "--cores", "2", *targets)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The job-count table of a dry run (`rule count` lines), {} when nothing is to be done."""
    counts: dict[str, int] = {}
    lines = result.stdout.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("job ")) + 2
    except StopIteration:
        return counts
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny grid run to completion once; tests read or extend it."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    write_config(workdir, TINY_RUN_CONFIG)
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir
