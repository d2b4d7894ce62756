"""`snakemake --profile profiles/slurm` against a real SLURM cluster (tests/slurm/cluster.py).

The profile is used as shipped; the command line only overrides what a CI run must change
(the first status check after 1 s instead of 40, at most 3 jobs at once on a 2-core machine,
the scheduler's logs of successful jobs kept so the tests can read them). Evidence comes from
the scheduler's own records: `scontrol show job` (slurmctld keeps finished jobs for MinJobAge)
and the job-completion log.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from snakemake.utils import available_cpu_count

from tests.workflow.conftest import (
    ROOT,
    TINY_CONFIG,
    planned_jobs,
    snakemake,
    snakemake_command,
)

pytestmark = pytest.mark.slurm

# One task, one scratch model, one fine-tuned size: every kind of job once (GPU and CPU rules,
# grouped analysis jobs, the tables group), as small as that gets.
SLURM_CONFIG = {
    **TINY_CONFIG,
    "tasks": {"demo-ner": TINY_CONFIG["tasks"]["demo-ner"]},
    "models": {"tiny-bert": TINY_CONFIG["models"]["tiny-bert"]},
    "sizes": [50],
    "random_init": False,
}
TABLES = [
    "downstream",
    "probes",
    "attention_similarity",
    "representation_similarity",
    "summary",
]
TARGETS = [f"results/tables/{name}.tsv" for name in TABLES]
GPU_RULES = {"finetune", "extract"}
LOCAL_RULES = {"demo_ner_data", "demo_nli_data", "download_model", "download_dataset"}
CI_OVERRIDES = [
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--jobs",
    "3",
    "--slurm-keep-successful-logs",
]


def write(workdir: Path, config: dict) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_on_slurm(cluster, workdir: Path, *args: str, limit: int = 900):
    """The workflow through the SLURM profile; `timeout -k` because Snakemake catches SIGTERM."""
    env = cluster.env
    env["PATH"] = f"{env['PATH']}:{Path(sys.executable).parent}"
    cmd = [
        "timeout",
        "-k",
        "15",
        str(limit),
        *snakemake_command(
            workdir, "--profile", str(ROOT / "profiles" / "slurm"), *CI_OVERRIDES, *args
        ),
    ]
    result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode not in (124, 137), "snakemake timed out:\n" + output[-5000:]
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, output[-5000:]
    jobs = [j for j in cluster.jobs() if j.get("JobName") == run_id.group(1)]
    return result, output, jobs


def rules_in(job: dict[str, str]) -> Counter:
    """The rules a SLURM job ran, from its own stdout (the job-level Snakemake's log)."""
    text = Path(job["StdOut"]).read_text()
    return Counter(re.findall(r"^rule (\w+):$", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same config run locally and on SLURM, each job with the same number of threads:
    float reductions round differently with the thread count (a fine-tuned model trained on 2
    threads differs in its last bits from one trained on 4, on CPUs whose kernels split the
    sums by thread, e.g. AVX2), and this test is about where jobs run, not about that.

    A SLURM job's own Snakemake runs with `--cores all` and scales each job's threads down to
    the CPUs it can use (here the node's: no cgroups, no CPU binding), whatever the profile's
    set-threads asked; the local run gets the same cap."""
    local = tmp_path_factory.mktemp("local-run")
    write(local, SLURM_CONFIG)
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    threads = profile["set-threads"]
    usable = available_cpu_count()  # what `--cores all` gives a SLURM job here
    cores = ["--cores", str(min(max(threads.values()), usable))]
    same_threads = ["--set-threads", *(f"{rule}={n}" for rule, n in threads.items())]
    # the targets between options: --configfile and --set-threads take every word after them
    local_result = snakemake(local, *cores, *TARGETS, *same_threads, timeout=900)
    assert local_result.returncode == 0, local_result.stderr[-4000:]
    remote = tmp_path_factory.mktemp("slurm-run")
    write(remote, SLURM_CONFIG)
    result, output, jobs = run_on_slurm(cluster, remote, *TARGETS)
    assert result.returncode == 0, output[-6000:]
    return {"local": local, "local_result": local_result, "remote": remote, "jobs": jobs}


def test_every_non_local_job_ran_as_a_slurm_job(runs, cluster):
    jobs = runs["jobs"]
    assert jobs, "the scheduler has no record of this run"
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert {j["ExitCode"] for j in jobs} == {"0:0"}
    ran_on_slurm = sum((rules_in(j) for j in jobs), Counter())
    local = runs["local_result"]  # its job-stats table: Snakemake logs to stderr
    expected = Counter(planned_jobs(SimpleNamespace(stdout=local.stdout + local.stderr)))
    assert expected, local.stderr[-3000:]
    for rule in LOCAL_RULES:
        expected.pop(rule, None)
    assert ran_on_slurm == expected
    # the job-completion log (slurmctld's own, no slurmdbd) agrees
    completed = {c["JobId"] for c in cluster.completions() if c["JobState"] == "COMPLETED"}
    assert {j["JobId"] for j in jobs} <= completed


def test_analysis_and_table_jobs_are_grouped(runs):
    comments = [j["Comment"] for j in runs["jobs"]]
    analysis = [c for c in comments if c.startswith("rule_analysis")]
    tables = [c for c in comments if c.startswith("rule_tables")]
    # 2 variants x (probe, attention, representation similarity) in groups of up to 4 variants'
    # jobs; one tables job
    assert analysis and len(analysis) < 5
    assert len(tables) == 1
    assert not [c for c in comments if re.match(r"rule_(probe|representation|collect|plot)", c)]


def test_gpu_rules_ask_for_a_gpu_and_cpu_rules_do_not(runs):
    seen = set()
    for job in runs["jobs"]:
        rules = set(rules_in(job))
        seen |= rules
        if rules & GPU_RULES:
            assert rules <= GPU_RULES
            assert job.get("TresPerJob") == "gres:gpu:1", job
            assert job["MinMemoryNode"] == "32000M"  # the profile's mem_mb, attempt 1
            assert job["NumCPUs"] == "4"  # the profile's set-threads
        else:
            assert "gpu" not in job.get("TresPerJob", "") + job.get("TresPerNode", ""), job
    assert seen >= GPU_RULES | {"probe", "prepare_task"}


def test_outputs_match_a_local_run(runs):
    for name in TABLES:
        local = pd.read_csv(runs["local"] / "results" / "tables" / f"{name}.tsv", sep="\t")
        remote = pd.read_csv(runs["remote"] / "results" / "tables" / f"{name}.tsv", sep="\t")
        assert len(local) > 0, name
        pd.testing.assert_frame_equal(remote, local, rtol=1e-5, obj=name)


BAD_TAG_LINE = 6


def test_a_failing_job_is_retried_then_the_run_fails_naming_it(cluster, tmp_path):
    """Data that pass planning (the files exist) but break at run time: a tag that is not
    IOB2. The job fails on every attempt (the profile's retries: 2, so 3 attempts with growing
    memory and time), the run exits non-zero naming the rule and its log, and no output of the
    failed job is left behind."""
    data = tmp_path / "corpus"
    data.mkdir()
    good = "Aspirin\tB-Chemical\nreduces\tO\nfever\tO\n\n"
    (data / "train.tsv").write_text(good + "Cisplatin\tB-Chemical\nhurts\tX-Disease\n\n")
    (data / "devel.tsv").write_text(good)
    (data / "test.tsv").write_text(good)
    config = {
        **SLURM_CONFIG,
        "tasks": {"broken-ner": {**SLURM_CONFIG["tasks"]["demo-ner"], "path": str(data)}},
    }
    workdir = tmp_path / "run"
    write(workdir, config)
    result, output, jobs = run_on_slurm(cluster, workdir, limit=600)
    assert result.returncode != 0
    assert "Error in rule prepare_task" in output
    log = "logs/prepare_task/broken-ner.log"
    assert log in output
    assert f"train.tsv:{BAD_TAG_LINE}" in (workdir / log).read_text()
    assert "is not IOB2" in output  # --show-failed-logs (profiles/default) prints it

    attempts = [j for j in jobs if j["Comment"] == "rule_prepare_task_wildcards_broken-ner"]
    assert [j["JobState"] for j in attempts] == ["FAILED"] * 3
    assert [j["MinMemoryNode"] for j in attempts] == ["4000M", "8000M", "12000M"]
    assert [j["TimeLimit"] for j in attempts] == ["01:00:00", "02:00:00", "03:00:00"]
    assert len(jobs) == 3  # nothing downstream was submitted
    failed = {c["JobId"] for c in cluster.completions() if c["JobState"] == "FAILED"}
    assert {j["JobId"] for j in attempts} <= failed

    data_dir = workdir / "results" / "data" / "broken-ner"
    assert not data_dir.exists() or not any(data_dir.iterdir())
